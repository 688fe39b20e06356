"""Weight I/O for every model here (SyncLipMAE, Dubber, the VSR head): a folder with config.json (the
model's configuration as text) and model.safetensors (its state, no pickle). Every layer may use it;
`train/checkpoint.py` adds the optimiser state and the atomic step folders on top.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_weights(directory: str | Path, config_text: str, module: torch.nn.Module) -> Path:
    """Write `directory`/config.json (`config_text`) and model.safetensors (the module's state, no
    pickle): the folder format of every model here (SyncLipMAE, Dubber, the VSR head)."""
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
    state = load_file(str(Path(directory) / "model.safetensors"), device=str(map_location))
    missing, unexpected = module.load_state_dict(state, strict=False)
    bad = [k for k in missing if k not in may_lack] + list(unexpected)
    if bad:
        raise RuntimeError(f"{directory}: weights do not match the model ({', '.join(bad[:5])})")
    return module


def checkpoint_root(out: str | Path) -> Path:
    """OUT/checkpoints: where a run keeps its step folders (`train/checkpoint.save_checkpoint`)."""
    return Path(out) / "checkpoints"


def latest_checkpoint(out: str | Path) -> Path | None:
    """The step folder OUT/checkpoints/latest names, or None when the run has none with weights."""
    pointer = checkpoint_root(out) / "latest"
    if not pointer.is_file():
        return None
    path = checkpoint_root(out) / pointer.read_text().strip()
    return path if (path / "model.safetensors").is_file() else None
