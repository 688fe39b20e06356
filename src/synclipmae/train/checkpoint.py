"""Atomic checkpoints: `OUT/checkpoints/step_XXXXXXX/` = config.json + model.safetensors (loadable by
`SyncLipMAE.from_pretrained`) + train_state.pt (optimiser, step, RNG, elapsed time) for resuming.

A checkpoint is written into a temporary folder and renamed into place, and `OUT/checkpoints/latest`
(a one-line text file) is replaced atomically after it, so a run killed at any moment leaves the last
good checkpoint intact. Everything loads with `weights_only=True` or safetensors: no pickle of code.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from synclipmae.weights import checkpoint_root, latest_checkpoint


def save_checkpoint(out: str | Path, model, optimizer, step: int, extra: dict, keep: int = 2) -> Path:
    """Write step `step` atomically and keep the newest `keep` checkpoints."""
    root = checkpoint_root(out)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_", dir=root))
    model.save_pretrained(tmp)
    state = {"step": step, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(), **extra}
    torch.save(state, tmp / "train_state.pt")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer_tmp = root / ".latest.tmp"
    pointer_tmp.write_text(name + "\n")
    os.replace(pointer_tmp, root / "latest")
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(path: Path) -> dict:
    return torch.load(path / "train_state.pt", map_location="cpu", weights_only=True)
