"""Transformer building blocks in plain torch (no timm): attention via F.scaled_dot_product_attention.

Shape letters (DESIGN §3): N items (clips*frames), L tokens, D width, M memory (condition) tokens.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; self-attention when `memory` is None, else cross-attention to it."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        N, L, D = x.shape
        src = x if memory is None else memory
        q = self.q(x).view(N, L, self.heads, D // self.heads).transpose(1, 2)  # (N, h, L, D/h)
        k, v = self.kv(src).view(N, src.shape[1], 2, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # 2 x (N, h, M, D/h)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, h, L, D/h)
        return self.proj(out.transpose(1, 2).reshape(N, L, D))


class Mlp(nn.Sequential):
    def __init__(self, dim: int, ratio: float):
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, [cross-attention to memory,] MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.cross = cross
        if cross:
            self.norm_x = nn.LayerNorm(dim)
            self.cross_attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x, memory=None, mask=None):
        x = x + self.attn(self.norm1(x), mask=mask)
        if self.cross:
            x = x + self.cross_attn(self.norm_x(x), memory=memory)
        return x + self.mlp(self.norm2(x))


def sincos_pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (MAE). Returns (grid*grid, dim)."""
    def embed_1d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gy, gx = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    emb = np.concatenate([embed_1d(dim // 2, gy), embed_1d(dim // 2, gx)], axis=1)
    return torch.from_numpy(emb).float()


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform linears, zero biases, unit LayerNorms (as in MAE)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv1d):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
