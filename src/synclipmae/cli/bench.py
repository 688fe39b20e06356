"""The bench subcommand: task benchmarks on SynthTalk test identities, and planted offsets on real clips.

Each command is a parser (`add_NAME`) next to its handler (`cmd_NAME`), which calls one library
function and prints."""
from __future__ import annotations

import functools
import sys
from dataclasses import asdict
from pathlib import Path

from synclipmae.cli.common import UsageError, add_command, load_checkpoint, load_dubber_checkpoint
from synclipmae.config import IMG_SIZE, apply_overrides
from synclipmae.data.datasets import DataError, read_dataset
from synclipmae.data.datasets.grid import GRID_VAL_FRACTION
from synclipmae.models.dubber import is_dubber_checkpoint
from synclipmae.report import plot_real_sync, write_json
from synclipmae.tasks.downstream import DownstreamConfig, bench_downstream
from synclipmae.tasks.dub_bench import DubBenchSettings, bench_dub
from synclipmae.tasks.mouth_energy import MouthEnergyModel
from synclipmae.tasks.real_sync import OFFSETS, bench_real_sync, report_table
from synclipmae.tasks.vsr import GRAMMARS, SlotGrammar, VSRTrainConfig
from synclipmae.tasks.vsr_bench import PIXELS, RANDOM, bench_vsr, random_like
from synclipmae.tasks.vsr_bench import report_table as vsr_table
from synclipmae.weights import DEFAULT_MODEL


def add_bench(sub) -> None:
    p = add_command(sub, "bench", "task benchmarks on SynthTalk test identities with a pretrained checkpoint", """
        synclipmae bench downstream --model runs/demo/runs/synclipmae --out runs/bench
        synclipmae bench downstream --model runs/demo/runs/synclipmae --out runs/bench400 train_clips=400 vsr.epochs=15
        synclipmae bench dub --model runs/demo/runs/synclipmae --out runs/bench --seed 1
        synclipmae bench dub --model runs/demo/runs/synclipmae --out runs/quick clips=5 finetune_minutes=3
        # real clips, their own soundtracks moved by planted offsets; sets named NAME=PATH (file, folder, list)
        synclipmae bench real-sync grid=configs/grid-s1-test.txt wild=talks/ --model real-tiny --model runs/demo --out runs/rs
        # lip reading on GRID: one head per encoder, same budget (random = same architecture, random weights;
        # pixels = the grey mouth box, no encoder); key=value: VSRTrainConfig fields
        synclipmae bench vsr --root ../shared/data/grid --model real-tiny --model random --model pixels --out runs/bv epochs=30""")
    p.add_argument("task", choices=["downstream", "dub", "real-sync", "vsr"],
                   help="downstream: emotion, actions, lip reading; dub: audio- and video-driven dubbing; "
                        "real-sync: planted offsets on real clips (mouth-energy always included); vsr: lip "
                        "reading on GRID (--root)")
    p.add_argument("--model", action="append", metavar="CKPT",
                   help="checkpoint folder, training run's folder or shipped weights by name (real-sync: repeat it "
                        "to compare models; default: real-tiny)")
    p.add_argument("--out", required=True, help="output folder (DIR/downstream.json, DIR/dub.json or DIR/real_sync.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", metavar="DIR", help="vsr: the GRID folder (sN/*.mp4 or .mpg and their .align files)")
    p.add_argument("--beam", type=int, default=8, help="vsr: CTC prefix beam width; 1 = greedy (default: 8)")
    p.add_argument("--offsets", metavar="K,K,...", help="real-sync: planted offsets in frames, k > 0 audio late, "
                                                         "e.g. --offsets=-7,0,7 (default: every k in [-15, 15])")
    p.add_argument("overrides", nargs="*", help="key=value settings of the bench (downstream: the fields of "
                                                "DownstreamConfig, e.g. train_clips=400 tokens=z_amb vsr.epochs=15; "
                                                "dub: clips, seconds, finetune_minutes, examples); real-sync: the "
                                                "INPUTs, each PATH or NAME=PATH")
    p.set_defaults(run=cmd_bench)


def cmd_bench_real_sync(args) -> int:
    if not args.overrides:
        raise UsageError("bench real-sync needs INPUTs: video files, folders or lists, each PATH or NAME=PATH")
    try:
        offsets = tuple(int(k) for k in args.offsets.split(",")) if args.offsets else OFFSETS
    except ValueError:
        raise UsageError(f"--offsets {args.offsets}: a comma-separated list of whole frames, e.g. --offsets=-12,-3,0,7") from None
    if any(abs(k) > 15 for k in offsets):
        raise UsageError("--offsets must lie in [-15, 15]: the offsets the scorer searches")
    loaded = {spec: load_checkpoint(spec, "cpu")[0] for spec in args.model or ["real-tiny"]}
    models = {"mouth-energy": MouthEnergyModel(next(iter(loaded.values())).cfg.model.img_size), **loaded}
    result = bench_real_sync(args.overrides, models, offsets=offsets)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "real_sync.json")
    plot_real_sync(result, out / "real_sync.png")
    table = report_table(result)
    (out / "real_sync.md").write_text(table + "\n")
    print(table)
    for s in result["sets"].values():
        for f in s["failed"]:
            print(f"synclipmae bench: {f['error']}", file=sys.stderr)
    print(out / "real_sync.json")
    return 0


def cmd_bench_vsr(args) -> int:
    if not args.root:
        raise UsageError("bench vsr needs --root DIR (the GRID folder)")
    cfg = apply_overrides(VSRTrainConfig(seed=args.seed), args.overrides)
    specs = args.model or [DEFAULT_MODEL, RANDOM, PIXELS]
    trained = {s: load_checkpoint(s, "cpu")[0] for s in specs if s not in (RANDOM, PIXELS)}
    if RANDOM in specs and not trained:
        raise UsageError("--model random takes the architecture of a trained --model: give one too")
    first = next(iter(trained.values()), None)
    encoders = {s: trained.get(s) or (random_like(first, args.seed) if s == RANDOM else None) for s in specs}
    try:
        examples = read_dataset("grid", args.root, val_fraction=GRID_VAL_FRACTION)
    except DataError as err:
        raise UsageError(str(err)) from None
    log = lambda m: print(f"synclipmae bench: {m}", file=sys.stderr)  # noqa: E731
    size = first.cfg.model.img_size if first is not None else IMG_SIZE
    result = bench_vsr(examples, encoders, cfg, beam=args.beam, grammar=SlotGrammar(GRAMMARS["grid"]), size=size,
                       heads_dir=Path(args.out) / "heads", log=log)
    out = Path(args.out)
    write_json(result, out / "vsr_bench.json")
    tables = "\n\n".join(vsr_table(result, split) for split in ("test", "val"))
    (out / "vsr_bench.md").write_text(tables + "\n")
    print(tables)
    print(out / "vsr_bench.json")
    return 0


def cmd_bench(args) -> int:
    if args.task == "real-sync":
        return cmd_bench_real_sync(args)
    if args.task == "vsr":
        return cmd_bench_vsr(args)
    if args.model is None or len(args.model) != 1:
        raise UsageError(f"bench {args.task} takes one --model")
    args.model = args.model[0]
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
