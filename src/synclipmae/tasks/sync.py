"""Zero-shot audio-visual sync scoring on token sequences (DESIGN §6).

    d_k = mean_t (1 - cos(v_t, a_{t+k}))       for k in [-K, K], over frames valid for every k
    offset = argmin_k d_k;  min_distance = min_k d_k;  confidence = median_k d_k - min_k d_k

Sign: offset > 0 means the audio is late (the sound comes after the lips) by that many frames;
offset_ms = offset * 40 (one video frame at 25 fps). Fixing a video shifts its audio earlier by
offset_ms. v and a are the L2-normalised sync embeddings (`SyncLipMAE.sync_embeddings`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from synclipmae.timing import TIMING

MAX_OFFSET = 15  # default K: offsets searched are -15..15 frames (+-600 ms)


@dataclass
class SyncScore:
    offset_frames: int      # > 0: audio late (sound after lips); < 0: audio early
    offset_ms: float        # offset_frames * 40
    confidence: float       # median_k d_k - min_k d_k; higher = a clearer minimum (SyncNet's "confidence")
    min_distance: float     # min_k d_k in [0, 2]; lower = better match (SyncNet's "min dist", LSE-D-like)
    distances: list         # d_k for k = -K..K (2K+1 values)

    def to_dict(self) -> dict:
        return asdict(self)


def distance_curve(v: torch.Tensor, a: torch.Tensor, max_offset: int = MAX_OFFSET) -> torch.Tensor:
    """v float [W, E] (frames of the scored window), a float [W + 2K, E] with a[K + t] the audio
    token at the time of v[t]. Returns d float [2K + 1], d[K + k] = mean_t (1 - cos(v_t, a_{t+k}))."""
    W, K = v.shape[0], max_offset
    if a.shape[0] != W + 2 * K:
        raise ValueError(f"audio tokens must cover the window plus {K} frames each side: got {a.shape[0]}, need {W + 2 * K}")
    v = torch.nn.functional.normalize(v.float(), dim=-1)
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    windows = a.unfold(0, W, 1).transpose(1, 2)  # (2K+1, W, E): windows[j] = a[j : j+W]
    return 1.0 - (windows * v[None]).sum(-1).mean(-1)


def score_curve(d: torch.Tensor, max_offset: int = MAX_OFFSET) -> SyncScore:
    d = d.detach().cpu().double()
    j = int(torch.argmin(d))
    offset = j - max_offset
    return SyncScore(offset_frames=offset, offset_ms=offset * TIMING.ms_per_frame,
                     confidence=float(d.median() - d.min()), min_distance=float(d.min()),
                     distances=[round(float(x), 6) for x in d])


def score_window(v: torch.Tensor, a: torch.Tensor, max_offset: int = MAX_OFFSET) -> SyncScore:
    """Score a window whose audio stream extends K frames beyond it on both sides (see distance_curve)."""
    return score_curve(distance_curve(v, a, max_offset), max_offset)


def score_track(v: torch.Tensor, a: torch.Tensor, max_offset: int = MAX_OFFSET) -> SyncScore:
    """Score a face track whose video and audio tokens cover the same N frames: v, a float [N, E].
    Frames valid for every offset are t in [K, N - K), so N must exceed 2K."""
    N, K = v.shape[0], max_offset
    if N <= 2 * K:
        raise ValueError(f"a track needs more than {2 * K} frames to score offsets +-{K}; it has {N}")
    return score_window(v[K:N - K], a, max_offset)
