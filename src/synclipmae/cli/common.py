"""What every subcommand shares: the one-line usage error, the parser class, checkpoint loading."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import torch

from synclipmae.models.dubber import load_dubber
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.weights import PRETRAINED, resolve_checkpoint


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


def load_checkpoint(path: str | None, device: str, load=None):
    """(model, its name) from a checkpoint folder, a training run's folder (its latest checkpoint) or
    shipped weights by name (None: the default, `weights.DEFAULT_MODEL`); `load(folder)` builds the
    model (default: SyncLipMAE.from_pretrained). The name is the shipped name or the folder's path."""
    try:
        p = resolve_checkpoint(path)
    except FileNotFoundError as err:
        raise UsageError(f"--model {err}") from None
    try:
        if load is None:
            load = SyncLipMAE.from_pretrained
        return load(p).to(torch.device(device)).eval(), p.name if p.parent == PRETRAINED else str(p)
    except Exception as err:  # noqa: BLE001 - corrupt or incompatible checkpoint, unknown device
        raise UsageError(f"--model {path}: cannot load: {' '.join(str(err).split())[:300]}") from None


def load_dubber_checkpoint(path: str | None, device: str):
    """(Dubber, checkpoint folder): `load_checkpoint` with `load_dubber` (a dubber, or a SyncLipMAE
    checkpoint wrapped untuned)."""
    return load_checkpoint(path, device, load_dubber)
