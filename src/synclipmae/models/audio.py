"""Audio encoders: one token a_t per video frame, width D (the visual width, so a_t and z_voc share a space).

- `log_mel`: the front end in plain torch (no torchaudio): 25 ms Hann windows every 10 ms, 80 mel
  bins. With TIMING's 640 samples per video frame and a 160-sample hop there are exactly 4 mel frames
  per video frame, so mel frame 4t..4t+3 covers video frame t.
- `MelAudioEncoder` (default): log-mel -> 1-D conv stem to the video rate -> transformer with banded
  attention (a_t sees frames t-c..t+c) -> linear to D.
- `Wav2Vec2AudioEncoder` (paper option): a frozen wav2vec 2.0 whose per-layer features are
  concatenated and projected to D; its 50 Hz frames (320-sample stride, 2 per video frame at 25 fps)
  are averaged to the video rate (default).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from synclipmae.config import AudioConfig
from synclipmae.models.layers import Block
from synclipmae.timing import TIMING, AVTiming

WAV2VEC2_FIELD, WAV2VEC2_STRIDE = 400, 320  # wav2vec 2.0's receptive field and stride, in 16 kHz samples


# ---------------------------------------------------------------------------------- log-mel front end
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


# ---------------------------------------------------------------------------------- encoders


def banded_mask(n: int, radius: int, device=None) -> torch.Tensor:
    """bool [n, n], True where |i - j| <= radius (the keys query i may attend to)."""
    idx = torch.arange(n, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= radius


class MelAudioEncoder(nn.Module):
    def __init__(self, cfg: AudioConfig, out_dim: int):
        super().__init__()
        self.cfg = cfg
        w, k = cfg.width, TIMING.mels_per_frame
        self.stem = nn.Sequential(
            nn.Conv1d(cfg.n_mels, w, kernel_size=3, padding=1), nn.GELU(),
            nn.Conv1d(w, w, kernel_size=k, stride=k), nn.GELU(),  # 100 Hz -> 25 Hz: one step per video frame
        )
        self.blocks = nn.ModuleList([Block(w, cfg.heads) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, out_dim)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio float [B, S] (S = T * samples_per_frame) -> a float [B, T, D]."""
        mel = log_mel(audio.float(), self.cfg.n_mels)          # (B, n_mels, 4T)
        x = self.stem((mel + 4.0) / 4.0).transpose(1, 2)         # (B, T, w); fixed affine keeps loudness
        mask = banded_mask(x.shape[1], self.cfg.context, x.device)
        for block in self.blocks:
            x = block(x, mask=mask)
        return self.out(self.norm(x))                             # (B, T, D)


class Wav2Vec2AudioEncoder(nn.Module):
    """Frozen wav2vec 2.0 (transformers) from a local directory, hub id, or a `Wav2Vec2Config` object."""

    def __init__(self, cfg: AudioConfig, out_dim: int, source=None):
        super().__init__()
        try:
            from transformers import Wav2Vec2Config, Wav2Vec2Model
        except ImportError as err:
            raise ImportError("the wav2vec2 audio encoder needs the 'wav2vec' extra: pip install 'synclipmae[wav2vec]'") from err
        source = source if source is not None else cfg.wav2vec2
        if isinstance(source, Wav2Vec2Config):
            self.backbone = Wav2Vec2Model(source)
        elif source:
            self.backbone = Wav2Vec2Model.from_pretrained(source)
        else:
            raise ValueError("model.audio.wav2vec2 must name a local directory or hub id of a wav2vec 2.0 model")
        self.backbone.requires_grad_(False).eval()
        hidden = self.backbone.config.hidden_size * (self.backbone.config.num_hidden_layers + 1)
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, out_dim))

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: dropout off whatever the mode
        return self

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """audio float [B, S] -> a float [B, T, D]."""
        T = audio.shape[1] // TIMING.samples_per_frame
        per = TIMING.samples_per_frame // WAV2VEC2_STRIDE                  # 2 wav2vec frames per video frame
        pad = (WAV2VEC2_FIELD - WAV2VEC2_STRIDE) // 2                        # -> S / stride frames
        x = F.pad(audio.float(), (pad, pad))
        x = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5)
        with torch.no_grad():
            hidden = self.backbone(x, output_hidden_states=True).hidden_states
        feats = torch.cat(hidden, dim=-1)[:, : per * T]                      # (B, 2T, H*(layers+1))
        feats = feats.view(feats.shape[0], T, per, -1).mean(2)               # (B, T, ...): 50 Hz -> 25 Hz
        return self.out(feats)


def build_audio_encoder(cfg: AudioConfig, out_dim: int) -> nn.Module:
    if cfg.encoder == "wav2vec2":
        return Wav2Vec2AudioEncoder(cfg, out_dim)
    return MelAudioEncoder(cfg, out_dim)
