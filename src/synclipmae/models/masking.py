"""Masking and view augmentation: pure tensor functions, seeded by the caller (MAE style).

Masking keeps exactly `keep` patches of every frame by sorting noise: patches with the lowest noise
are kept. Face-aware masking is the same function with a prior subtracted from the noise, and the
lower-face option adds a large constant so the whole mouth region sorts last (masked).
"""
from __future__ import annotations

import torch


def patch_fraction(mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Pixel mask bool [N, H, W] -> fraction of each patch covered, float [N, L] (row-major patches)."""
    N, H, W = mask.shape
    m = mask.float().view(N, H // patch, patch, W // patch, patch)
    return m.mean(dim=(2, 4)).flatten(1)  # (N, L)


def keep_lowest(noise: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the `keep` patches with the lowest noise.

    noise float [N, L] -> ids_keep long [N, keep], mask float [N, L] (1 = masked, 0 = kept),
    ids_restore long [N, L] (undoes the sort: gather(sorted_tokens, ids_restore) is in patch order).
    """
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    mask = torch.ones_like(noise)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return ids_keep, mask, ids_restore


def uniform_view(noise: torch.Tensor, ratio: float, mouth: torch.Tensor | None = None,
                 mask_mouth: torch.Tensor | None = None):
    """View A: uniform random masking of `ratio` of the patches.

    noise [N, L] uniform in [0, 1); mouth [N, L] patch fractions of the lower-face region;
    mask_mouth bool [N]: frames whose whole lower face is masked as well.
    """
    N, L = noise.shape
    keep = max(1, int(round(L * (1 - ratio))))
    if mouth is not None and mask_mouth is not None:
        noise = noise + 2.0 * (mouth > 0).float() * mask_mouth[:, None].float()  # mouth patches sort last
    return keep_lowest(noise, keep)


def face_aware_view(noise: torch.Tensor, ratio: float, face: torch.Tensor, face_bias: float,
                    mouth: torch.Tensor | None = None, mouth_bias: float = 0.0):
    """View B: patches inside the face (and, more so, the lower face) are kept with higher probability."""
    N, L = noise.shape
    keep = max(1, int(round(L * (1 - ratio))))
    noise = noise - face_bias * face
    if mouth is not None:
        noise = noise - mouth_bias * mouth
    return keep_lowest(noise, keep)


def photometric_jitter(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation, hue rotation and channel shift, per frame.

    x float [N, H, W, 3] in [0, 1]; params float [N, 7] in [-1, 1] scaled by the caller's strength:
    (brightness, contrast, saturation, hue, shift_r, shift_g, shift_b). Returns float [N, H, W, 3].
    """
    b, c, s, h = (params[:, i].view(-1, 1, 1, 1) for i in range(4))
    shift = params[:, 4:7].view(-1, 1, 1, 3) * 0.5
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + c) + mean + b * 0.5                        # contrast, brightness
    gray = x.mean(dim=3, keepdim=True)
    x = (x - gray) * (1 + s) + gray                                  # saturation
    angle = h * torch.pi                                             # hue: rotate chroma about the gray axis
    cos, sin = torch.cos(angle), torch.sin(angle)
    k = 1 / 3 ** 0.5
    rotated = x * cos + torch.cross(torch.full_like(x, k), x, dim=3) * sin + k * (x * k).sum(3, keepdim=True) * (1 - cos)
    return (rotated + shift).clamp(0, 1)
