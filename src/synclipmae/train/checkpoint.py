"""Atomic checkpoints: `OUT/checkpoints/step_XXXXXXX/` = config.json + model.safetensors (loadable by
`SyncLipMAE.from_pretrained`) + train_state.pt (optimiser, step, RNG, elapsed time) for resuming.

A checkpoint is written into a temporary folder and renamed into place, and `OUT/checkpoints/latest`
(a one-line text file) is replaced atomically after it, so a run killed at any moment leaves the last
good checkpoint intact. Everything loads with `weights_only=True` or safetensors: no pickle of code.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from synclipmae.weights import checkpoint_root, latest_checkpoint, load_weights


@contextlib.contextmanager
def atomic_folder(final: str | Path, prefix: str | None = None):
    """The one atomic writer: yield a new temporary folder beside `final`; when the block ends without
    an error it replaces `final` (an old `final` is removed), else it is removed. A run killed at
    any moment leaves either the old folder or the new one, never a part of one."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix or f".{final.name}.tmp_", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)


def save_checkpoint(out: str | Path, model, optimizer, step: int, extra: dict, keep: int = 2) -> Path:
    """Write step `step` atomically and keep the newest `keep` checkpoints."""
    root = checkpoint_root(out)
    name = f"step_{step:07d}"
    final = root / name
    with atomic_folder(final, prefix=".tmp_") as tmp:
        model.save_pretrained(tmp)
        state = {"step": step, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(), **extra}
        torch.save(state, tmp / "train_state.pt")
    pointer_tmp = root / ".latest.tmp"
    pointer_tmp.write_text(name + "\n")
    os.replace(pointer_tmp, root / "latest")
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_train_state(path: Path) -> dict:
    return torch.load(path / "train_state.pt", map_location="cpu", weights_only=True)


def resume(out: str | Path, model: torch.nn.Module, optimizer, device="cpu", logger=None) -> tuple[int, float]:
    """The one resume: load OUT's latest checkpoint (weights, optimiser, RNG) into `model` and
    `optimizer`, cut `logger`'s metrics after its step, and return (step, elapsed seconds); (0, 0.0)
    when OUT has none."""
    path = latest_checkpoint(out)
    if path is None:
        return 0, 0.0
    load_weights(model, path, device)
    state = load_train_state(path)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    step = int(state["step"])
    if logger is not None:
        logger.truncate_after(step)
    return step, float(state.get("elapsed", 0.0))
