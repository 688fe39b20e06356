"""The bench subcommand: task benchmarks on SynthTalk test identities.

Each command is a parser (`add_NAME`) next to its handler (`cmd_NAME`), which calls one library
function and prints."""
from __future__ import annotations

import functools
import sys
from dataclasses import asdict
from pathlib import Path

from synclipmae.cli.common import add_command, load_checkpoint, load_dubber_checkpoint
from synclipmae.config import apply_overrides
from synclipmae.models.dubber import is_dubber_checkpoint
from synclipmae.tasks.downstream import DownstreamConfig, bench_downstream
from synclipmae.tasks.dub_bench import DubBenchSettings, bench_dub


def add_bench(sub) -> None:
    p = add_command(sub, "bench", "task benchmarks on SynthTalk test identities with a pretrained checkpoint", """
        synclipmae bench downstream --model runs/demo/runs/synclipmae --out runs/bench
        synclipmae bench downstream --model runs/demo/runs/synclipmae --out runs/bench400 train_clips=400 vsr.epochs=15
        synclipmae bench dub --model runs/demo/runs/synclipmae --out runs/bench --seed 1
        synclipmae bench dub --model runs/demo/runs/synclipmae --out runs/quick clips=5 finetune_minutes=3""")
    p.add_argument("task", choices=["downstream", "dub"], help="downstream: emotion, actions, lip reading; "
                                                                 "dub: audio- and video-driven dubbing")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint folder or a training run's folder")
    p.add_argument("--out", required=True, help="output folder (DIR/downstream.json or DIR/dub.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help="key=value settings of the bench (downstream: the fields of "
                                                "DownstreamConfig, e.g. train_clips=400 tokens=z_amb vsr.epochs=15; "
                                                "dub: clips, seconds, finetune_minutes, examples)")
    p.set_defaults(run=cmd_bench)


def cmd_bench(args) -> int:
    if args.task == "downstream":
        cfg = apply_overrides(DownstreamConfig(seed=args.seed), args.overrides)
        cfg.validate()
        run = functools.partial(bench_downstream, cfg=cfg)
    else:
        settings = apply_overrides(DubBenchSettings(), args.overrides)
        settings.validate()
        run = functools.partial(bench_dub, **asdict(settings))

    if args.task == "dub" and is_dubber_checkpoint(args.model):  # a fine-tuned dubber: its own network scores it
        model, model_dir = load_dubber_checkpoint(args.model, "cpu")[0].net, args.model
    else:
        model, model_dir = load_checkpoint(args.model, "cpu")
    path = run(model, model_dir, Path(args.out), seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    print(path)
    return 0
