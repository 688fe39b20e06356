"""What every subcommand shares: the one-line usage error, the parser class, checkpoint loading."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import torch

from synclipmae.isolate import Limits
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


def add_limit_options(p) -> None:
    """--timeout, --timeout-per-second and --max-memory: what one input of a batch may take
    (`isolate.Limits`; each flag's default is that field's)."""
    d = Limits()
    p.add_argument("--timeout", type=float, metavar="S", help=f"seconds an input may take, plus --timeout-per-second "
                                                              f"for each second of its media (default: {d.base_s:g})")
    p.add_argument("--timeout-per-second", type=float, metavar="X",
                   help=f"seconds allowed per second of media on top of --timeout (default: {d.per_second:g})")
    p.add_argument("--max-memory", type=float, metavar="GB", help="resident memory an input may take; 0: no bound "
                                                                  "(default: half the RAM)")


def limits_from(args) -> Limits | None:
    """The limits the options ask for, or None when none was given (`Limits()` are the defaults)."""
    given = {"base_s": ("--timeout", args.timeout), "per_second": ("--timeout-per-second", args.timeout_per_second),
             "memory_gb": ("--max-memory", args.max_memory)}
    for flag, value in given.values():
        if value is not None and value < 0:
            raise UsageError(f"{flag} must be >= 0")
    chosen = {field: value for field, (_, value) in given.items() if value is not None}
    return Limits(**chosen) if chosen else None


def checkpoint_name(path: str | None) -> tuple[Path, str]:
    """(folder, name) of the checkpoint `--model path` names, without loading it (`load_checkpoint`)."""
    try:
        p = resolve_checkpoint(path)
    except FileNotFoundError as err:
        raise UsageError(f"--model {err}") from None
    return p, p.name if p.parent == PRETRAINED else str(p)


def load_checkpoint(path: str | None, device: str, load=None):
    """(model, its name) from a checkpoint folder, a training run's folder (its latest checkpoint) or
    shipped weights by name (None: the default, `weights.DEFAULT_MODEL`); `load(folder)` builds the
    model (default: SyncLipMAE.from_pretrained). The name is the shipped name or the folder's path."""
    p, name = checkpoint_name(path)
    try:
        if load is None:
            load = SyncLipMAE.from_pretrained
        return load(p).to(torch.device(device)).eval(), name
    except Exception as err:  # noqa: BLE001 - corrupt or incompatible checkpoint, unknown device
        raise UsageError(f"--model {path}: cannot load: {' '.join(str(err).split())[:300]}") from None


def load_dubber_checkpoint(path: str | None, device: str):
    """(Dubber, checkpoint folder): `load_checkpoint` with `load_dubber` (a dubber, or a SyncLipMAE
    checkpoint wrapped untuned)."""
    return load_checkpoint(path, device, load_dubber)
