"""Task heads on frozen SyncLipMAE tokens (DESIGN §2 "Downstream interface").

    VSRHead    z_voc sequence [B, T, D] -> per-step character log-probabilities for CTC (lip reading)

The emotion / action probes are in tasks/probe.py; the dubbing generator is models/dubber.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from synclipmae.models.layers import Block, init_weights


@dataclass
class VSRConfig:
    width: int = 192        # default: temporal transformer width
    depth: int = 3          # default: transformer blocks
    heads: int = 4          # default
    kernel: int = 5         # default: temporal convolution before the transformer (frames)
    upsample: int = 2       # default: CTC steps per video frame (a phoneme can last ~1.2 frames)
    dropout: float = 0.1    # default: on the input features and before the output layer
    inputs: str = "z_voc"   # default: what it reads per frame (tasks.vsr.HEAD_INPUTS): z_voc, z_voc+mouth, pixels

    def to_dict(self) -> dict:
        return asdict(self)


def sincos_1d(length: int, dim: int, device=None) -> torch.Tensor:
    """Fixed sine-cosine positions float [length, dim]."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, device=device, dtype=torch.float32) / (dim / 2))
    return torch.cat([torch.sin(pos * omega), torch.cos(pos * omega)], 1)


class VSRHead(nn.Module):
    """z_voc [B, T, D] -> conv over time -> upsample x U -> transformer -> CTC logits [B, T*U, V+1]
    (index 0 is the CTC blank). Inputs are standardised with the training set's statistics."""

    def __init__(self, in_dim: int, vocab_size: int, cfg: VSRConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VSRConfig()
        self.register_buffer("feat_mean", torch.zeros(in_dim))
        self.register_buffer("feat_std", torch.ones(in_dim))
        self.inp = nn.Linear(in_dim, cfg.width)
        self.conv = nn.Conv1d(cfg.width, cfg.width, cfg.kernel, padding=cfg.kernel // 2)
        self.blocks = nn.ModuleList([Block(cfg.width, cfg.heads, 4.0) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, vocab_size + 1)
        self.drop = nn.Dropout(cfg.dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x float [B, T, D] (padded), lengths long [B] -> (log-probs [B, T*U, V+1], lengths*U)."""
        U = self.cfg.upsample
        x = self.drop((x - self.feat_mean) / self.feat_std)
        h = self.inp(x)                                                        # (B, T, W)
        h = h + F.gelu(self.conv(h.transpose(1, 2))).transpose(1, 2)
        h = h.repeat_interleave(U, dim=1)                                      # (B, T*U, W)
        h = h + sincos_1d(h.shape[1], h.shape[2], h.device)
        out_len = lengths * U
        valid = torch.arange(h.shape[1], device=h.device)[None] < out_len[:, None]  # (B, T*U)
        mask = valid[:, None, None, :]                                         # keys that take part
        for block in self.blocks:
            h = block(h, mask=mask)
        return self.out(self.drop(self.norm(h))).log_softmax(-1), out_len

