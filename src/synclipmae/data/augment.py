"""Training-time augmentation of real and generated clips: what real uploads do to a face and a voice.

Per clip (the same draw for all of its frames, seeded by the clip's `seed`, so a batch is a pure
function of the data and the step), with probability `AugmentConfig.prob`:

- geometry: the crop is scaled by 1 +- `scale` and moved by +- `shift` of its side (face detectors
  and framing differ between videos); the face and lower-face masks move with it;
- resolution: the frames are shrunk to a side in [`min_side`, S] and enlarged back (small faces in
  large frames, soft focus);
- codec: JPEG at a quality in `jpeg_quality` (recompressed uploads; needs opencv, else skipped);
- audio: a gain of +- `gain_db` (the mel encoder keeps loudness) and white noise at an SNR in `snr_db`.

View B's photometric jitter (in the model) stays on top of this.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from synclipmae.config import AugmentConfig


def _jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    try:
        import cv2
    except ImportError:  # the faces extra is absent: no codec augmentation
        return frames
    out = np.empty_like(frames)
    for i, f in enumerate(frames):
        ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else f
    return out


def augment_clip(clip: dict, rng: np.random.Generator, cfg: AugmentConfig) -> dict:
    """One clip: frames uint8 [T, S, S, 3], audio float32 [T * spf], face_mask / mouth_mask bool
    [T, S, S] (tensors) -> the same keys, augmented."""
    frames = clip["frames"].permute(0, 3, 1, 2).float()                          # (T, 3, S, S)
    masks = torch.stack([clip["face_mask"], clip["mouth_mask"]], 1).float()      # (T, 2, S, S)
    T, _, S, _ = frames.shape
    zoom = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    dx, dy = rng.uniform(-cfg.shift, cfg.shift, size=2) * 2.0                    # in [-1, 1] grid units
    theta = torch.tensor([[zoom, 0.0, dx], [0.0, zoom, dy]], dtype=torch.float32).expand(T, 2, 3)
    grid = F.affine_grid(theta, (T, 3, S, S), align_corners=False)
    frames = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="nearest", padding_mode="zeros", align_corners=False) > 0.5
    side = int(rng.integers(min(cfg.min_side, S), S + 1))
    if side < S:
        small = F.interpolate(frames, size=(side, side), mode="area")
        frames = F.interpolate(small, size=(S, S), mode="bilinear", align_corners=False)
    frames = frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)   # (T, S, S, 3)
    lo, hi = cfg.jpeg_quality
    if hi > 0:
        frames = torch.from_numpy(_jpeg(frames.numpy(), int(rng.integers(lo, hi + 1))))
    audio = clip["audio"].float() * 10.0 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20.0)
    rms = audio.pow(2).mean().sqrt()
    snr = rng.uniform(*cfg.snr_db)
    noise = torch.from_numpy(rng.standard_normal(audio.shape[0]).astype(np.float32))
    audio = audio + noise * rms / 10.0 ** (snr / 20.0)
    return {"frames": frames.contiguous(), "audio": audio, "face_mask": masks[:, 0].contiguous(),
            "mouth_mask": masks[:, 1].contiguous()}


class AugmentedSource:
    """Any source with `.sample(seed, step, batch_size, T, rank, world)`, its clips augmented."""

    def __init__(self, source, cfg: AugmentConfig):
        self.source, self.cfg = source, cfg

    def sample(self, seed: int, step: int, batch_size: int, T: int, rank: int = 0, world: int = 1) -> dict:
        batch = self.source.sample(seed, step, batch_size, T, rank, world)
        keys = ("frames", "audio", "face_mask", "mouth_mask")
        for b in range(batch["frames"].shape[0]):
            rng = np.random.default_rng([int(batch["seed"][b]), 0xA6])
            if rng.random() < self.cfg.prob:
                clip = augment_clip({k: batch[k][b] for k in keys}, rng, self.cfg)
                for k in keys:
                    batch[k][b] = clip[k]
        return batch
