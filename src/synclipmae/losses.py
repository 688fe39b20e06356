"""The SyncLipMAE objectives: tensors in, tensors out (DESIGN §2 "Objectives").

Cross-rank gathering is the caller's job (`train.dist.gather_with_grad`); these functions take the
local rows and the gathered columns so one process and many give the same loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = True) -> torch.Tensor:
    """L_rec: MSE over masked patches only.

    pred, target float [N, L, P*P*3]; mask float [N, L] (1 = masked). With `norm_pix` each target
    patch is standardised by its own mean and variance (MAE's norm_pix_loss).
    """
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = (pred - target).pow(2).mean(dim=-1)  # (N, L)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)


def info_nce(v: torch.Tensor, a: torch.Tensor, v_all: torch.Tensor, a_all: torch.Tensor,
             ids: torch.Tensor, ids_all: torch.Tensor, row_offset: int, logit_scale: torch.Tensor,
             exclude_radius: int = 1, same_clip_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """L_con: symmetric InfoNCE between L2-normalised visual and audio embeddings.

    v, a float [n, E] (this rank's frames); v_all, a_all float [N, E] (all ranks, with gradient);
    ids long [n, 2] and ids_all [N, 2]: (clip, frame) of each row, clip ids unique across ranks;
    row i's positive is column row_offset + i. Columns of the same clip within `exclude_radius`
    frames of the row (other than the positive) leave the denominator; with `same_clip_only`, so do
    all columns of other clips (only misaligned frames of the same clip are negatives).
    Returns (loss, top1): the mean of both directions, and the in-batch top-1 accuracy (no grad).
    """
    n = v.shape[0]
    labels = torch.arange(n, device=v.device) + row_offset
    same_clip = ids[:, None, 0] == ids_all[None, :, 0]
    near = (ids[:, None, 1] - ids_all[None, :, 1]).abs() <= exclude_radius
    excluded = (same_clip & near) | (~same_clip if same_clip_only else torch.zeros_like(same_clip))
    excluded[torch.arange(n), labels] = False
    scale = logit_scale.exp()
    logits_v = (scale * v @ a_all.T).masked_fill(excluded, float("-inf"))  # (n, N)
    logits_a = (scale * a @ v_all.T).masked_fill(excluded, float("-inf"))  # (n, N)
    loss = 0.5 * (F.cross_entropy(logits_v, labels) + F.cross_entropy(logits_a, labels))
    with torch.no_grad():
        top1 = 0.5 * ((logits_v.argmax(1) == labels).float().mean() + (logits_a.argmax(1) == labels).float().mean())
    return loss, top1


def frame_contrast(q: torch.Tensor, k: torch.Tensor, frames: torch.Tensor, exclude_radius: int,
                   temperature: float) -> torch.Tensor:
    """L_amb (default, off unless loss.w_amb > 0): each query frame must find its own frame among the
    frames of its clip. q float [B, R, E] (one view of R frames of each clip), k float [B, T, E] (another
    view of all T frames), both L2-normalised; frames long [B, R]: the position in T of each query.
    Frames within `exclude_radius` of the query (other than itself) leave the denominator; logits are
    cosines / `temperature` (loss.amb_temperature). Each clip is its own problem, so ranks need no
    gathering. Returns the mean cross-entropy."""
    logits = torch.einsum("bre,bte->brt", q, k) / temperature                  # (B, R, T)
    offset = (frames[..., None] - torch.arange(k.shape[1], device=k.device)).abs()
    logits = logits.masked_fill((offset <= exclude_radius) & (offset > 0), float("-inf"))
    return F.cross_entropy(logits.flatten(0, 1), frames.flatten())


def cross_cov_penalty(tokens: list[torch.Tensor]) -> torch.Tensor:
    """L_dec: sum over token pairs (p, q) of ||C_pq||_F^2 / D^2, C the cross-covariance of the
    batch-standardised tokens. tokens: K tensors float [N, D]."""
    z = [(t - t.mean(0)) / (t.std(0) + 1e-4) for t in tokens]
    N, D = tokens[0].shape
    total = tokens[0].new_zeros(())
    for i in range(len(z)):
        for j in range(i + 1, len(z)):
            c = z[i].T @ z[j] / max(N - 1, 1)  # (D, D)
            total = total + c.pow(2).sum() / D**2
    return total
