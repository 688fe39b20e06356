"""Audio encoders: one token a_t per video frame, width D (the visual width, so a_t and z_voc share a space).

- `MelAudioEncoder` (default): log-mel (80 bins, 25 ms / 10 ms) -> 1-D conv stem to the video rate
  -> transformer with banded attention (a_t sees frames t-c..t+c) -> linear to D.
- `Wav2Vec2AudioEncoder` (paper option): a frozen wav2vec 2.0 whose per-layer features are
  concatenated and projected to D; its 50 Hz frames are averaged in pairs to the video rate (default).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synclipmae.config import AudioConfig
from synclipmae.media.audio import log_mel
from synclipmae.models.layers import Block
from synclipmae.timing import TIMING


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
        pad = (400 - 320) // 2  # wav2vec 2.0: 400-sample receptive field, 320-sample stride -> S / 320 frames
        x = F.pad(audio.float(), (pad, pad))
        x = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5)
        with torch.no_grad():
            hidden = self.backbone(x, output_hidden_states=True).hidden_states
        feats = torch.cat(hidden, dim=-1)[:, : 2 * T]                        # (B, 2T, H*(layers+1))
        feats = feats.view(feats.shape[0], T, 2, -1).mean(2)                 # (B, T, ...): 50 Hz -> 25 Hz
        return self.out(feats)


def build_audio_encoder(cfg: AudioConfig, out_dim: int) -> nn.Module:
    if cfg.encoder == "wav2vec2":
        return Wav2Vec2AudioEncoder(cfg, out_dim)
    return MelAudioEncoder(cfg, out_dim)
