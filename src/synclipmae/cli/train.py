"""Subcommands that make data and train: demo, synth, pretrain, prepare, export, dub-train.

Each command is a parser (`add_NAME`) next to its handler (`cmd_NAME`), which calls one library
function and prints."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from synclipmae.cli.common import UsageError, add_command, add_face_options, load_checkpoint
from synclipmae.config import IMG_SIZE, apply_overrides, build_config, config_json
from synclipmae.data.datasets import READERS, SPLITS, DataError, read_dataset
from synclipmae.data.shards import CLIP_FRAMES, FILES_PER_SHARD, prepare
from synclipmae.data.synth import write_dataset
from synclipmae.demo import DEFAULT_MINUTES, run_demo
from synclipmae.media.pipeline import expand_inputs
from synclipmae.models.dubber import DubConfig, is_dubber_checkpoint
from synclipmae.models.synclipmae import preset_model
from synclipmae.train.dubber import finetune_dubber
from synclipmae.train.loop import pretrain_main
from synclipmae.weights import save_weights


def add_demo(sub) -> None:
    p = add_command(sub, "demo", "SynthTalk -> pretrain tiny -> evaluate on unseen identities -> report", """
        synclipmae demo --out runs/demo
        synclipmae demo --out runs/demo-s3 --seed 3 --minutes 3
        synclipmae demo --out runs/demo-bl --baselines     # also trains syncnet-style and mae-only
        synclipmae demo --out runs/demo-a9 mask.ratio_a=0.9  # the demo's recipe with an override""")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--minutes", type=float, default=None, help="pretraining minutes per model (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", action="store_true", help="also train and evaluate the two baselines")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the demo's recipe (every model trained)")
    p.set_defaults(run=cmd_demo)


def cmd_demo(args) -> int:
    minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
    if minutes <= 0:
        raise UsageError("--minutes must be positive")
    report = run_demo(args.out, minutes=minutes, seed=args.seed, baselines=args.baselines,
                      overrides=args.overrides, log=lambda m: print(m, file=sys.stderr))
    acc = report["sync_accuracy"]
    print(f"sync accuracy on unseen identities: 1s {acc['1s']:.3f}  2s {acc['2s']:.3f}  5s {acc['5s']:.3f}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def add_synth(sub) -> None:
    p = add_command(sub, "synth", "write SynthTalk clips (mp4 + wav + json, or npz + json)", """
        synclipmae synth --out data/synth --clips 20
        synclipmae synth --out data/synth-test --clips 10 --split test --seconds 6 --mp4""")
    p.add_argument("--out", required=True)
    p.add_argument("--clips", type=int, required=True)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--size", type=int, default=IMG_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mp4", action="store_true", help="write mp4 + wav + json instead of npz + json")
    p.set_defaults(run=cmd_synth)


def cmd_synth(args) -> int:
    if args.clips < 1 or args.seconds <= 0 or args.size < 32 or args.size % 8:
        raise UsageError("--clips must be >= 1, --seconds > 0 and --size a multiple of 8 (>= 32)")
    index = write_dataset(Path(args.out), args.clips, split=args.split, seconds=args.seconds, seed=args.seed,
                          size=args.size, mp4=args.mp4)
    print(f"wrote {len(index.get('clips', []))} {args.split} clips to {args.out}")
    return 0


def add_pretrain(sub) -> None:
    p = add_command(sub, "pretrain", "pretrain SyncLipMAE (re-run the same command to resume)", """
        synclipmae pretrain --preset tiny train.out=runs/tiny train.steps=2000
        synclipmae pretrain --config configs/small.yaml train.out=runs/small
        torchrun --nproc_per_node=8 -m synclipmae pretrain --config configs/base.yaml train.strategy=fsdp""")
    p.add_argument("--config", help="YAML file of overrides (model:, mask:, loss:, data:, train:)")
    p.add_argument("--preset", default="tiny", help="model preset: tiny, small, base, large (default: tiny)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=3e-4 model.depth=4")
    p.set_defaults(run=cmd_pretrain)


def cmd_pretrain(args) -> int:
    cfg = build_config(args.config, args.overrides, base={"model": preset_model(args.preset)})
    path = pretrain_main(cfg)
    print(path)
    return 0


def add_prepare(sub) -> None:
    p = add_command(sub, "prepare", "video files -> webdataset shards of face clips for pretraining (re-run to resume)", """
        synclipmae prepare videos/ --out shards/
        synclipmae prepare list.txt --out shards/ --workers 2 --size 96 --clip-frames 50
        # job array: job I of 16 writes its own shards and index-I-of-16.json
        synclipmae prepare videos/ --out shards/ --shard-index $SLURM_ARRAY_TASK_ID --num-shards 16
        synclipmae pretrain data.source=shards/ train.out=runs/real
        # GRID's training sentences only (the test split is held out by file name), whole 3 s files
        synclipmae prepare ../shared/data/grid --dataset grid --split train --out shards/grid --clip-frames 75""")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders, or .txt lists of paths")
    p.add_argument("--out", required=True, help="output folder for the .tar shards and the index JSON")
    p.add_argument("--size", type=int, default=IMG_SIZE,
                   help=f"face crop size in pixels: the model's img_size (default: {IMG_SIZE})")
    p.add_argument("--clip-frames", type=int, default=None, help="frames per stored clip at 25 fps (default: 50)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, one shard each at a time (default: 1)")
    p.add_argument("--shard-index", type=int, default=0, help="this job's index in a job array (default: 0)")
    p.add_argument("--num-shards", type=int, default=1, help="jobs the inputs are partitioned into (default: 1)")
    p.add_argument("--files-per-shard", type=int, default=None, help="input files per .tar shard (default: 32)")
    add_face_options(p, device=False)
    p.add_argument("--dataset", choices=sorted(k for k in READERS if k != "manifest"),
                   help="the INPUTs are roots of this dataset: its reader lists the videos (with --split)")
    p.add_argument("--split", choices=list(SPLITS), help="with --dataset: only this split's videos")
    p.set_defaults(run=cmd_prepare)


def cmd_prepare(args) -> int:
    clip_frames = CLIP_FRAMES if args.clip_frames is None else args.clip_frames
    files_per_shard = FILES_PER_SHARD if args.files_per_shard is None else args.files_per_shard
    if args.size < 16 or args.size % 8:
        raise UsageError("--size must be a multiple of 8 (>= 16): the model's img_size")
    if clip_frames < 2 or args.workers < 1 or files_per_shard < 1:
        raise UsageError("--clip-frames must be >= 2, --workers and --files-per-shard >= 1")
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise UsageError(f"--shard-index must be in [0, --num-shards) = [0, {args.num_shards})")
    if args.split and not args.dataset:
        raise UsageError("--split needs --dataset (the reader that knows the split)")
    inputs = args.inputs
    if args.dataset:
        try:
            inputs = [str(r.path) for root in args.inputs for r in read_dataset(args.dataset, root)
                      if args.split in (None, r.split)]
        except DataError as err:
            raise UsageError(f"--dataset {args.dataset}: {err}") from None
    if not expand_inputs(inputs):
        raise UsageError(f"no video files in {' '.join(args.inputs)}")
    index = prepare(inputs, args.out, size=args.size, clip_frames=clip_frames, workers=args.workers,
                    shard_index=args.shard_index, num_shards=args.num_shards, files_per_shard=files_per_shard,
                    backend=args.backend, progress=True)
    for failure in index["failures"]:
        print(f"synclipmae prepare: {failure['error']}", file=sys.stderr)
    skipped = f" ({index['skipped_shards']} finished earlier)" if index["skipped_shards"] else ""
    print(f"{index['clips']} clips ({index['seconds']:.1f} s) in {len(index['shards'])} shards{skipped} in {args.out}; "
          f"{len(index['failures'])} of {index['inputs']} inputs failed; index: {index['path']}")
    return 1 if index["failures"] else 0


def add_export(sub) -> None:
    p = add_command(sub, "export", "a checkpoint -> a release folder: config.json + model.safetensors, no optimiser state", """
        synclipmae export runs/real-tiny/real --out src/synclipmae/pretrained/real-tiny --fp16
        synclipmae sync talk.mp4 --model src/synclipmae/pretrained/real-tiny""")
    p.add_argument("model", metavar="CKPT", help="checkpoint folder or a training run's folder (its latest checkpoint)")
    p.add_argument("--out", required=True, help="the folder to write")
    p.add_argument("--fp16", action="store_true", help="store the parameters in float16 (half the size; they load "
                                                       "back as float32)")
    p.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    model, source = load_checkpoint(args.model, "cpu")
    out = save_weights(args.out, config_json(model.cfg), model, torch.float16 if args.fp16 else None)
    print(f"{source} -> {out} ({(out / 'model.safetensors').stat().st_size / 2**20:.1f} MB)")
    return 0


def add_dub_train(sub) -> None:
    p = add_command(sub, "dub-train", "fine-tune the dubbing generator on SynthTalk train identities", """
        synclipmae dub-train --model runs/demo/runs/synclipmae --out runs/dubber
        synclipmae dub-train --model CKPT --out runs/dubber-s1 --minutes 5 --seed 1
        synclipmae dub-train --model CKPT --out runs/dubber-wide unet_width=48 lr=2e-3
        synclipmae dub --video talk.mp4 --audio new_voice.wav --model runs/dubber --out talk_dubbed.mp4
        # writes a dubbing checkpoint (config.json + model.safetensors, atomically) and
        # OUT/metrics.jsonl; docs/dub.md explains the generator and its losses.""")
    p.add_argument("--model", required=True, metavar="CKPT", help="the pretrained SyncLipMAE checkpoint or training run")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of the dubbing checkpoint (replaced if it exists)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock fine-tuning budget (default: 15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("overrides", nargs="*", help="key=value settings: any DubConfig field (docs/dub.md), e.g. lr=2e-3")
    p.set_defaults(run=cmd_dub_train)


def cmd_dub_train(args) -> int:
    cfg = apply_overrides(DubConfig(), args.overrides).validate()
    minutes = cfg.minutes if args.minutes is None else args.minutes
    if not minutes > 0:
        raise UsageError("--minutes must be positive")
    if is_dubber_checkpoint(args.model):
        raise UsageError(f"--model {args.model}: is a dubbing checkpoint already; give the pretrained SyncLipMAE")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_dubber_checkpoint(out):
        raise UsageError(f"--out {args.out}: a non-empty folder that is not a dubbing checkpoint (it would be replaced)")
    model, model_dir = load_checkpoint(args.model, "cpu")
    if not model.has_decoder or "z_id" not in model.prompt_names:
        raise UsageError(f"--model {args.model}: a '{model.cfg.model.variant}' model has no decoder or z_id to dub with")
    path = finetune_dubber(model, out, minutes=minutes, seed=args.seed, base_model=model_dir, cfg=cfg,
                           log=lambda m: print(f"synclipmae dub-train: {m}", file=sys.stderr))
    print(path)
    return 0
