"""Linear probes on frozen tokens: closed-form ridge regression (default: exact, fast, deterministic),
used for regression targets (R^2), one-hot classification (accuracy) and binary scores (AUC)."""
from __future__ import annotations

import numpy as np

RIDGE = 0.01  # default: L2 penalty per training row of the probe, on standardised features


def _standardise(train: np.ndarray, test: np.ndarray):
    mean, std = train.mean(0), train.std(0) + 1e-6
    add_bias = lambda x: np.concatenate([(x - mean) / std, np.ones((len(x), 1))], 1)  # noqa: E731
    return add_bias(train), add_bias(test)


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Fit y = W x + b on the training rows and predict the test rows. x [N, D], y [N] or [N, C]."""
    xt, xs = _standardise(x_train.astype(np.float64), x_test.astype(np.float64))
    reg = ridge * len(xt) * np.eye(xt.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(xt.T @ xt + reg, xt.T @ y_train.astype(np.float64))
    return xs @ w


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination, averaged over target columns; 1 is perfect, 0 is the mean's."""
    y, pred = y.reshape(len(y), -1), pred.reshape(len(pred), -1)
    ss_res = ((y - pred) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0) + 1e-12
    return float(np.mean(1 - ss_res / ss_tot))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); 0.5 is chance."""
    labels = labels.astype(bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    allv = np.concatenate([pos, neg])
    for value in np.unique(allv):  # average ranks of ties
        tie = allv == value
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def classify(x_train, y_train, x_test, n_classes: int) -> np.ndarray:
    """Least-squares one-hot classifier: predicted class ids for x_test."""
    onehot = np.eye(n_classes)[y_train]
    return ridge_predict(x_train, onehot, x_test).argmax(1)
