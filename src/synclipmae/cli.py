"""The `synclipmae` command line. Each subcommand calls one library function.

Exit codes: 0 success; 1 some inputs or the run failed (each named on stderr); 2 bad usage.
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path


class UsageError(Exception):
    """Bad usage: one line on stderr, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the whole usage)
        self.exit(2, f"synclipmae {self.prog.split()[-1]}: error: {message}\n")


def _sub(subparsers, name: str, help: str, examples: str):
    return subparsers.add_parser(name, help=help, description=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="synclipmae", description="SyncLipMAE: sync-aware talking-face representations.",
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="run 'synclipmae COMMAND --help' for a command's options and examples")
    from synclipmae import __version__

    parser.add_argument("--version", action="version", version=f"synclipmae {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    p = _sub(sub, "demo", "SynthTalk -> pretrain tiny -> evaluate on unseen identities -> report", """
        synclipmae demo --out runs/demo
        synclipmae demo --out runs/demo-s3 --seed 3 --minutes 3
        synclipmae demo --out runs/demo-bl --baselines     # also trains syncnet-style and mae-only""")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--minutes", type=float, default=None, help="pretraining minutes per model (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", action="store_true", help="also train and evaluate the two baselines")

    p = _sub(sub, "synth", "write SynthTalk clips (mp4 + wav + json, or npz + json)", """
        synclipmae synth --out data/synth --clips 20
        synclipmae synth --out data/synth-test --clips 10 --split test --seconds 6 --mp4""")
    p.add_argument("--out", required=True)
    p.add_argument("--clips", type=int, required=True)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mp4", action="store_true", help="write mp4 + wav + json instead of npz + json")

    p = _sub(sub, "pretrain", "pretrain SyncLipMAE (re-run the same command to resume)", """
        synclipmae pretrain --preset tiny train.out=runs/tiny train.steps=2000
        synclipmae pretrain --config configs/small.yaml train.out=runs/small
        torchrun --nproc_per_node=8 -m synclipmae pretrain --config configs/base.yaml train.strategy=fsdp""")
    p.add_argument("--config", help="YAML file of overrides (model:, mask:, loss:, data:, train:)")
    p.add_argument("--preset", default="tiny", help="model preset: tiny, small, base, large (default: tiny)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=3e-4 model.depth=4")
    return parser


def cmd_demo(args) -> int:
    from synclipmae.demo import DEFAULT_MINUTES, run_demo

    minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
    if minutes <= 0:
        raise UsageError("--minutes must be positive")
    report = run_demo(args.out, minutes=minutes, seed=args.seed, baselines=args.baselines,
                      log=lambda m: print(m, file=sys.stderr))
    acc = report["sync_accuracy"]
    print(f"sync accuracy on unseen identities: 1s {acc['1s']:.3f}  2s {acc['2s']:.3f}  5s {acc['5s']:.3f}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def cmd_synth(args) -> int:
    from synclipmae.data.synth import write_dataset

    if args.clips < 1 or args.seconds <= 0 or args.size < 32 or args.size % 8:
        raise UsageError("--clips must be >= 1, --seconds > 0 and --size a multiple of 8 (>= 32)")
    index = write_dataset(Path(args.out), args.clips, split=args.split, seconds=args.seconds, seed=args.seed,
                          size=args.size, mp4=args.mp4)
    print(f"wrote {len(index.get('clips', []))} {args.split} clips to {args.out}")
    return 0


def cmd_pretrain(args) -> int:
    from synclipmae.config import build_config
    from synclipmae.models.synclipmae import preset_model
    from synclipmae.train.loop import pretrain_main

    cfg = build_config(args.config, args.overrides, base={"model": preset_model(args.preset)})
    path = pretrain_main(cfg)
    print(path)
    return 0


COMMANDS = {"demo": cmd_demo, "synth": cmd_synth, "pretrain": cmd_pretrain}


def main(argv: list[str] | None = None) -> int:
    from synclipmae.config import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError) as err:
        print(f"synclipmae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synclipmae {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every other failure: one line, exit 1
        from synclipmae.train.loop import TrainingError

        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise

        kind = "" if isinstance(err, TrainingError) else f"{type(err).__name__}: "
        print(f"synclipmae {args.command}: {kind}{err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
