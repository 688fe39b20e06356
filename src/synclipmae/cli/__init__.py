"""The `synclipmae` command line. Each subcommand's parser sits next to its handler, which calls one
library function and prints: cli/train.py (demo, synth, pretrain, prepare, export, dub-train), cli/sync.py
(sync, embed), cli/probe.py (probe, vsr), cli/dub.py (dub), cli/bench.py (bench); cli/common.py holds
what they share.

Exit codes: 0 success; 1 some inputs or the run failed (each named on stderr); 2 bad usage.
"""
from __future__ import annotations

import argparse
import os
import sys

from synclipmae.cli import bench, dub, probe, read, sync, train
from synclipmae.cli.common import Parser, UsageError
from synclipmae.config import ConfigError
from synclipmae.media.decode import MediaError
from synclipmae.media.pipeline import FaceError
from synclipmae.train.loop import TrainingError
from synclipmae.version import __version__

# the subcommands in the order `synclipmae --help` lists them
PARSERS = (train.add_demo, train.add_synth, train.add_pretrain, train.add_prepare, train.add_export, sync.add_sync,
           sync.add_embed, read.add_read,
           probe.add_probe, dub.add_dub, probe.add_vsr, train.add_dub_train, bench.add_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="synclipmae", description="SyncLipMAE: sync-aware talking-face representations.",
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="run 'synclipmae COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"synclipmae {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra  # key=value pairs after options that argparse did not attach (bench TASK ... k=v)
    elif extra:
        print(f"synclipmae {args.command}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except (UsageError, ConfigError) as err:
        print(f"synclipmae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synclipmae {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every other failure: one line, exit 1
        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise
        kind = "" if isinstance(err, (TrainingError, MediaError, FaceError)) else f"{type(err).__name__}: "
        print(f"synclipmae {args.command}: {kind}{err}", file=sys.stderr)
        return 1


__all__ = ["main", "build_parser"]
