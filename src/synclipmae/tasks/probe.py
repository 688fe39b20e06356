"""Probes on frozen tokens.

- closed-form ridge regression (default: exact, fast, deterministic), used by the disentanglement table
  for regression targets (R^2), one-hot classification (accuracy) and binary scores (AUC);
- emotion / action probes (DESIGN §2 downstream 2, §6): `fit_probe` (linear or a small MLP) on
  time-averaged tokens, the metrics `accuracy`, `macro_f1`, `mean_average_precision`, and
  `probe_examples`, which runs labelled video files through the model to OUT/probe.json (`synclipmae probe`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from synclipmae.version import __version__
from synclipmae.data.datasets import DataError, hash_split, where
from synclipmae.errors import one_line
from synclipmae.media.decode import MediaError
from synclipmae.report import pyplot, save_figure
from synclipmae.media.pipeline import FaceError
from synclipmae.tasks.features import extract, longest_track

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


# ====================================================================================================
# Emotion and action probes on time-averaged tokens (DESIGN §2, downstream 2; §6 metrics)
#
#   fit_probe        features [N, D] + labels -> class scores of the test rows
#   accuracy, macro_f1, mean_average_precision, confusion_matrix, plot_confusion   (plain numpy)
#   probe_examples   labelled video files -> features -> probe -> probe.json + confusion.png
# ====================================================================================================

HEADS = ("linear", "mlp")
TOKENS = ("z_id", "z_voc", "z_amb", "a")   # what a probe may read: the prompt tokens and the audio token a_t
DEFAULT_TOKENS = ("z_voc", "z_amb")          # default (DESIGN §2): the motion tokens
MLP_HIDDEN = 256        # default: the MLP head's one hidden layer
MLP_EPOCHS = 100        # default: passes over the training rows
MLP_BATCH = 256         # default: rows per AdamW step
MLP_LR = 1e-3           # default: AdamW learning rate (constant)
MLP_WEIGHT_DECAY = 0.05  # default: AdamW weight decay


def _mlp_scores(x_train, y_train, x_test, n_out: int, multilabel: bool, seed: int) -> np.ndarray:
    xt, xs = _standardise(x_train.astype(np.float64), x_test.astype(np.float64))
    xt, xs = torch.from_numpy(xt[:, :-1]).float(), torch.from_numpy(xs[:, :-1]).float()  # (N, D): no bias column
    y = torch.from_numpy(np.asarray(y_train)).float() if multilabel else torch.from_numpy(np.asarray(y_train)).long()
    with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(xt.shape[1], MLP_HIDDEN), nn.GELU(), nn.Linear(MLP_HIDDEN, n_out))
        g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=MLP_LR, weight_decay=MLP_WEIGHT_DECAY)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    net.train()
    for _ in range(MLP_EPOCHS):
        order = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), MLP_BATCH):
            idx = order[i:i + MLP_BATCH]
            loss = loss_fn(net(xt[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        logits = net(xs)
        return (torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1)).double().numpy()


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, kind: str = "linear",
              multilabel: bool = False, seed: int = 0, n_classes: int | None = None) -> np.ndarray:
    """Train a probe on (x_train, y_train) and score x_test: float [M, C], higher = more likely; for
    single labels the prediction is the argmax.

    x float [N, D] (time-averaged tokens); y_train int [N] class ids (single label; n_classes defaults
    to max + 1) or {0, 1} [N, C] (multilabel).
    kind "linear" (default): closed-form ridge regression on one-hot / multi-hot targets (one-vs-rest
        least squares, `ridge_predict`): exact, no learning rate or epochs to tune, deterministic, and
        the same probe as the disentanglement table, so the numbers compare. Its scores are not
        probabilities, which accuracy, F1 and mAP (a ranking metric) do not need.
    kind "mlp": one hidden layer (MLP_HIDDEN, GELU) trained with AdamW on cross-entropy (multilabel:
        per-class binary cross-entropy), seeded by `seed` (initialisation and batch order); returns
        probabilities."""
    if kind not in HEADS:
        raise ValueError(f"kind must be one of {HEADS}, got {kind!r}")
    y_train = np.asarray(y_train)
    if multilabel:
        targets = y_train.reshape(len(y_train), -1).astype(np.float64)
        n_out = targets.shape[1]
    else:
        n_out = int(y_train.max()) + 1 if n_classes is None else int(n_classes)
        targets = np.eye(n_out)[y_train.astype(int)]
    if kind == "linear":
        return ridge_predict(x_train, targets, x_test)
    return _mlp_scores(x_train, targets if multilabel else y_train.astype(int), x_test, n_out, multilabel, seed)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of rows whose predicted class is the true one."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """int [C, C]: row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN), over the classes that occur in
    y_true or y_pred (a class never true and never predicted is left out; scikit-learn's convention)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    f1 = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        f1.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1)) if f1 else float("nan")


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class: sum over score thresholds of (recall step) x precision, rows ranked by score
    (tied scores form one threshold; scikit-learn's average_precision_score). nan without positives."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, np.float64)
    if not labels.any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last row of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    precision, recall = tp / (tp + fp), tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Multi-label mAP: the mean of `average_precision` over the classes (columns of y_true {0,1}
    [N, C]) with at least one positive row; nan when none has."""
    aps = [average_precision(y_true[:, c], scores[:, c]) for c in range(y_true.shape[1]) if np.any(y_true[:, c])]
    return float(np.mean(aps)) if aps else float("nan")


def plot_confusion(cm: np.ndarray, classes, png, title: str | None = None):
    """Draw the confusion matrix (rows true, columns predicted; colour = share of the true class's
    rows, text = counts) to `png`. Returns the path."""
    plt = pyplot()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    cm = np.asarray(cm)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 + 0.55 * n), max(3.2, 1.2 + 0.5 * n)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, png, dpi=100)


# ----------------------------------------------------------------------------------------------------
# from labelled video files to probe.json


class ProbeInputError(Exception):
    """A file that gives no features (no face found): one line, starting with the file's name."""


def _file_features(path, model, tokens, backend: str = "auto", pooling: str = "mean") -> np.ndarray:
    """Tokens of one video file pooled over time (`features.pool`; "mean" = the paper's average),
    concatenated in `tokens` order: float32 [F], from the file's longest face track (one speaker per
    clip). Raises MediaError / FaceError / ProbeInputError."""
    track = longest_track(extract(path, model, backend=backend, with_audio="a" in tokens))
    if any(name not in track.tokens for name in tokens):
        raise ProbeInputError(f"{Path(path).name}: no audio stream, so no audio tokens a")
    return track.pooled(tokens, pooling).astype(np.float32)


def probe_examples(examples, model, out_dir, tokens=DEFAULT_TOKENS, head: str = "linear", seed: int = 0,
                   task: str = "emotion", classes=None, multilabel: bool = False, source: str = "",
                   backend: str = "auto", model_name: str | None = None, progress: bool = True,
                   pooling: str = "mean") -> dict:
    """Probe `tokens` of `model` for the labels of `examples` (a reader's `Example` rows); write
    OUT/probe.json (and OUT/confusion.png for single labels) and return the report.

    Rows without a split go to "test" or "train" by `hash_split` of their path as written (20% test;
    deterministic); "val" rows are not used. classes: the class names in order (default: sorted, from
    the train rows, or all rows for multi-label). A single-label test row whose class has no train row,
    or an empty train or test split (also after failed files are dropped), is a DataError. Files that
    fail to decode or show no face are skipped and listed in report["failures"] as {path, error}.
    source: the manifest or dataset root, named in messages."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    tokens = tuple(tokens)
    rows = {"train": [], "test": []}
    for ex in examples:
        split = ex.split or hash_split(str(ex.meta.get("key", ex.path)))
        if split in rows:
            rows[split].append(ex)

    def require_both(why: str = "") -> None:
        for name, part in rows.items():
            if not part:
                raise DataError(f"{source}: empty {name} split{why} ({len(rows['train'])} train rows, "
                                f"{len(rows['test'])} test rows)")

    require_both()
    labels_of = lambda ex: ex.label if isinstance(ex.label, list) else [ex.label]  # noqa: E731
    if classes is None:
        pool = rows["train"] + (rows["test"] if multilabel else [])
        classes = sorted({lab for ex in pool for lab in labels_of(ex)})
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    for ex in rows["train"] + rows["test"]:
        for lab in labels_of(ex):
            if lab not in index:
                extra = "" if multilabel else " (no train row has it)"
                raise DataError(f"{where(ex)}: unknown class {lab!r}{extra}; classes: {', '.join(classes)}")

    cache: dict = {}  # resolved path -> features or the failure's message (in memory, this run only)
    failures = []
    feats = {"train": [], "test": []}
    kept = {"train": [], "test": []}
    todo = [(name, ex) for name in ("train", "test") for ex in rows[name]]
    bar = tqdm(todo, desc=f"probe {task}", unit="file", file=sys.stderr, disable=None if progress else True)
    for name, ex in bar:
        key = str(Path(ex.path).resolve())
        if key not in cache:
            try:
                cache[key] = _file_features(ex.path, model, tokens, backend=backend, pooling=pooling)
            except (MediaError, FaceError, ProbeInputError) as err:
                cache[key] = one_line(err)
            except Exception as err:  # noqa: BLE001 - one bad file never stops the others
                if os.environ.get("SYNCLIPMAE_DEBUG"):
                    raise
                cache[key] = f"{Path(ex.path).name}: {type(err).__name__}: {one_line(err)}"
            if isinstance(cache[key], str):
                failures.append({"path": str(ex.path), "error": cache[key]})
                tqdm.write(f"synclipmae probe: {cache[key]}", file=sys.stderr)
        if not isinstance(cache[key], str):
            feats[name].append(cache[key])
            kept[name].append(ex)
    bar.close()
    rows = kept
    require_both(f" after {len(failures)} files failed")

    def targets(part):
        if multilabel:
            y = np.zeros((len(part), len(classes)), np.int64)
            for i, ex in enumerate(part):
                y[i, [index[lab] for lab in labels_of(ex)]] = 1
            return y
        return np.array([index[ex.label] for ex in part], np.int64)

    x_tr, x_te = np.stack(feats["train"]), np.stack(feats["test"])
    y_tr, y_te = targets(rows["train"]), targets(rows["test"])
    scores = fit_probe(x_tr, y_tr, x_te, kind=head, multilabel=multilabel, seed=seed, n_classes=len(classes))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"task": task, "tokens": list(tokens), "pooling": pooling, "head": head, "classes": classes,
              "multilabel": multilabel, "n_train": len(y_tr), "n_test": len(y_te)}
    if multilabel:
        positive = y_te.any(0)
        if not positive.any():
            raise DataError(f"{source}: no test file has any label, so mAP is undefined")
        aps = [average_precision(y_te[:, c], scores[:, c]) for c in range(len(classes))]
        report["map"] = mean_average_precision(y_te, scores)
        report["ap_per_class"] = {c: (None if np.isnan(ap) else ap) for c, ap in zip(classes, aps)}
        report["chance_map"] = float(y_te[:, positive].mean())
    else:
        pred = scores.argmax(1)
        cm = confusion_matrix(y_te, pred, len(classes))
        report["accuracy"] = accuracy(y_te, pred)
        report["macro_f1"] = macro_f1(y_te, pred)
        report["chance_accuracy"] = float(np.mean(y_te == np.bincount(y_tr, minlength=len(classes)).argmax()))
        report["confusion"] = cm.tolist()
        report["confusion_png"] = str(plot_confusion(cm, classes, out_dir / "confusion.png",
                                                     title=f"{task}: {head} probe on {'+'.join(tokens)}"))
    report.update(seed=seed, source=source, model=model_name, version=__version__, failures=failures,
                  skipped=list(getattr(examples, "skipped", [])))
    path = out_dir / "probe.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    report["path"] = str(path)
    return report
