"""What every subcommand shares: the one-line usage error, the parser class, checkpoint loading."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import torch

from synclipmae.models.dubber import load_dubber
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.weights import latest_checkpoint


class UsageError(Exception):
    """Bad usage: one line on stderr, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the whole usage)
        words = self.prog.split()  # "synclipmae" or "synclipmae [options] COMMAND"
        name = words[0] if len(words) == 1 else f"{words[0]} {words[-1]}"
        self.exit(2, f"{name}: error: {message}\n")


def add_command(subparsers, name: str, help: str, examples: str):
    return subparsers.add_parser(name, help=help, description=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "))


def add_face_options(p, device: bool = True) -> None:
    """--backend (the face detector) and, with `device`, --device (the model's torch device)."""
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")
    if device:
        p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")


def load_checkpoint(path: str, device: str, load=None):
    """(model, checkpoint folder) from a checkpoint folder or a training run's folder (its latest
    checkpoint); `load(folder)` builds the model (default: SyncLipMAE.from_pretrained)."""
    p = Path(path)
    if not (p / "model.safetensors").is_file():
        p = latest_checkpoint(p) if p.is_dir() else None
    if p is None:
        raise UsageError(f"--model {path}: not a checkpoint (a folder with config.json and model.safetensors, "
                         f"or a training run's folder)")
    try:
        if load is None:
            load = SyncLipMAE.from_pretrained
        return load(p).to(torch.device(device)).eval(), str(p)
    except Exception as err:  # noqa: BLE001 - corrupt or incompatible checkpoint, unknown device
        raise UsageError(f"--model {path}: cannot load: {' '.join(str(err).split())[:300]}") from None


def load_dubber_checkpoint(path: str, device: str):
    """(Dubber, checkpoint folder): `load_checkpoint` with `load_dubber` (a dubber, or a SyncLipMAE
    checkpoint wrapped untuned)."""
    return load_checkpoint(path, device, load_dubber)
