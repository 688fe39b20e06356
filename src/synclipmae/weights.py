"""Weight I/O for every model here (SyncLipMAE, Dubber, the VSR head): a folder with config.json (the
model's configuration as text) and model.safetensors (its state, no pickle). Every layer may use it;
`train/checkpoint.py` adds the optimiser state and the atomic step folders on top.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_weights(directory: str | Path, config_text: str, module: torch.nn.Module,
                 param_dtype: torch.dtype | None = None) -> Path:
    """Write `directory`/config.json (`config_text`) and model.safetensors (the module's state, no
    pickle): the folder format of every model here (SyncLipMAE, Dubber, the VSR head). param_dtype
    (e.g. torch.float16 for shipped weights) stores the parameters in that type; buffers (statistics
    such as patch counts) keep theirs. Loading casts back to the model's own type."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(config_text)
    params = {name for name, _ in module.named_parameters()} if param_dtype is not None else set()
    state = {k: (v.to(param_dtype) if k in params and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in module.state_dict().items()}
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


# ----------------------------------------------------------------------------------------------------
# weights shipped inside the package (src/synclipmae/pretrained/NAME: config.json + model.safetensors;
# lip-reading heads in pretrained/heads/NAME)

PRETRAINED = Path(__file__).with_name("pretrained")
PRETRAINED_HEADS = PRETRAINED / "heads"
DEFAULT_MODEL = "real-tiny"   # what every command that takes --model uses when it is omitted (docs/model-card.md)
DEFAULT_HEAD = "grid-s1"      # what `read` uses when --head is omitted (docs/model-card.md, "Lip-reading head")


def shipped_models() -> list[str]:
    """Names of the weights inside the package, e.g. ["real-tiny"]."""
    return sorted(p.name for p in PRETRAINED.glob("*") if (p / "model.safetensors").is_file())


def resolve_checkpoint(spec: str | Path | None = None) -> Path:
    """A checkpoint folder from what users type: a checkpoint folder, a training run's folder (its
    latest checkpoint), or the name of shipped weights (None: DEFAULT_MODEL). FileNotFoundError with
    a one-line reason otherwise."""
    spec = DEFAULT_MODEL if spec is None else spec
    path = Path(spec)
    if (path / "model.safetensors").is_file():
        return path
    if path.is_dir() and (latest := latest_checkpoint(path)) is not None:
        return latest
    if str(spec) in shipped_models():
        return PRETRAINED / str(spec)
    shipped = ", ".join(shipped_models()) or "none installed"
    raise FileNotFoundError(f"{spec}: not a checkpoint (a folder with config.json and model.safetensors), a "
                            f"training run's folder, or the name of shipped weights ({shipped})")


def shipped_heads() -> list[str]:
    """Names of the lip-reading heads inside the package, e.g. ["grid-s1"]."""
    return sorted(p.name for p in PRETRAINED_HEADS.glob("*") if (p / "model.safetensors").is_file())


def resolve_head(spec: str | Path | None = None) -> Path:
    """A lip-reading head's folder: a folder written by `vsr train`, or the name of a shipped head
    (None: DEFAULT_HEAD). FileNotFoundError with a one-line reason otherwise."""
    spec = DEFAULT_HEAD if spec is None else spec
    if (Path(spec) / "model.safetensors").is_file():
        return Path(spec)
    if str(spec) in shipped_heads():
        return PRETRAINED_HEADS / str(spec)
    shipped = ", ".join(shipped_heads()) or "none installed"
    raise FileNotFoundError(f"{spec}: not a lip-reading head (a folder written by 'vsr train') or the name of a "
                            f"shipped head ({shipped})")
