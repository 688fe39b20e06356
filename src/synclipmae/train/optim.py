"""AdamW with no weight decay on norms, biases, prompt and mask tokens; the warm-up + cosine schedule."""
from __future__ import annotations

import math

import torch
from torch import nn

from synclipmae.config import TrainConfig

NO_DECAY_NAMES = ("prompts", "mask_token", "cond_type", "logit_scale")


def param_groups(model: nn.Module, cfg: TrainConfig, temperature_lr_mult: float = 1.0) -> list[dict]:
    """Three groups: decayed weights; norms, biases and tokens (no decay); the temperature."""
    decay, no_decay, temperature = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith("logit_scale"):
            temperature.append(p)
        elif p.ndim < 2 or any(key in name for key in NO_DECAY_NAMES):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "lr_mult": 1.0},
              {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0}]
    if temperature:
        groups.append({"params": temperature, "weight_decay": 0.0, "lr_mult": temperature_lr_mult})
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig, temperature_lr_mult: float = 1.0) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, cfg, temperature_lr_mult), lr=cfg.lr, betas=cfg.betas)


def lr_at(progress: float, lr: float, warmup: float = 0.0, min_lr: float = 0.0) -> float:
    """The one schedule of every trained module: the learning rate at `progress` in [0, 1] of the run,
    a linear warm-up over the first `warmup` of it, then a cosine from `lr` to `min_lr`."""
    if progress < warmup:
        return lr * progress / max(warmup, 1e-8)
    t = min(1.0, (progress - warmup) / max(1.0 - warmup, 1e-8))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
