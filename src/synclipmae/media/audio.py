"""Log-mel front end in plain torch (no torchaudio): 25 ms Hann windows every 10 ms, 80 mel bins.

With TIMING's 640 samples per video frame and a 160-sample hop there are exactly 4 mel frames per
video frame, so mel frame 4t..4t+3 covers video frame t.
"""
from __future__ import annotations

import functools
import math

import torch

from synclipmae.timing import TIMING, AVTiming


def _hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0) if isinstance(f, float) else 2595.0 * torch.log10(1.0 + f / 700.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 20.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular HTK-style mel filters, area-normalised. Returns float [n_fft // 2 + 1, n_mels]."""
    f_max = f_max or sample_rate / 2
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_pts = torch.linspace(_hz_to_mel(float(f_min)), _hz_to_mel(float(f_max)), n_mels + 2, dtype=torch.float64)
    hz_pts = 700.0 * (10 ** (mel_pts / 2595.0) - 1.0)
    lower, centre, upper = hz_pts[:-2], hz_pts[1:-1], hz_pts[2:]
    up = (freqs[:, None] - lower) / (centre - lower)
    down = (upper - freqs[:, None]) / (upper - centre)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    fb = fb * (2.0 / (upper - lower))  # equal area (Slaney norm)
    return fb.float()


def log_mel(audio: torch.Tensor, n_mels: int = 80, timing: AVTiming = TIMING) -> torch.Tensor:
    """audio float [B, S] at timing.sample_rate -> log-mel float [B, n_mels, S // mel_hop].

    Frame i is centred at sample i*hop + hop/2 (reflect padding), so mel frames tile the samples
    exactly and `S = T * samples_per_frame` gives `4T` frames.
    """
    hop, win = timing.mel_hop, timing.mel_window
    n_fft = 1 << (win - 1).bit_length()  # 512
    frames_out = audio.shape[-1] // hop
    pad = (n_fft - hop) // 2
    x = torch.nn.functional.pad(audio[:, None, :], (pad, pad + hop), mode="reflect")[:, 0]
    window = torch.hann_window(win, device=audio.device, dtype=audio.dtype)
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=False,
                      return_complex=True)  # (B, n_fft/2+1, frames)
    power = spec.abs().pow(2)[..., :frames_out]
    fb = mel_filterbank(n_mels, n_fft, timing.sample_rate).to(audio.device, audio.dtype)
    mel = torch.einsum("bfn,fm->bmn", power, fb)  # (B, n_mels, frames)
    return torch.log(mel + 1e-6)
