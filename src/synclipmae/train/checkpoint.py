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


def save_weights(directory: str | Path, config_text: str, module: torch.nn.Module) -> Path:
    """Write `directory`/config.json (`config_text`) and model.safetensors (the module's state, no
    pickle): the folder format of every model here (SyncLipMAE, Dubber, the VSR head)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(config_text)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory


def load_weights(module: torch.nn.Module, directory: str | Path, map_location="cpu",
                 may_lack: tuple[str, ...] = ()) -> torch.nn.Module:
    """Load `directory`/model.safetensors into `module` (strict, except that the keys in `may_lack`
    may be absent: they keep their initial values) and return it."""
    from safetensors.torch import load_file

    state = load_file(str(Path(directory) / "model.safetensors"), device=str(map_location))
    missing, unexpected = module.load_state_dict(state, strict=False)
    bad = [k for k in missing if k not in may_lack] + list(unexpected)
    if bad:
        raise RuntimeError(f"{directory}: weights do not match the model ({', '.join(bad[:5])})")
    return module


def checkpoint_root(out: str | Path) -> Path:
    return Path(out) / "checkpoints"


def latest_checkpoint(out: str | Path) -> Path | None:
    pointer = checkpoint_root(out) / "latest"
    if not pointer.is_file():
        return None
    path = checkpoint_root(out) / pointer.read_text().strip()
    return path if (path / "model.safetensors").is_file() else None


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
