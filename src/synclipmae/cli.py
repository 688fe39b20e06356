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

    p = _sub(sub, "prepare", "video files -> webdataset shards of face clips for pretraining (re-run to resume)", """
        synclipmae prepare videos/ --out shards/
        synclipmae prepare list.txt --out shards/ --workers 2 --size 96 --clip-frames 50
        # job array: job I of 16 writes its own shards and index-I-of-16.json
        synclipmae prepare videos/ --out shards/ --shard-index $SLURM_ARRAY_TASK_ID --num-shards 16
        synclipmae pretrain data.source=shards/ train.out=runs/real""")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders, or .txt lists of paths")
    p.add_argument("--out", required=True, help="output folder for the .tar shards and the index JSON")
    p.add_argument("--size", type=int, default=96, help="face crop size in pixels: the model's img_size (default: 96)")
    p.add_argument("--clip-frames", type=int, default=None, help="frames per stored clip at 25 fps (default: 50)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, one shard each at a time (default: 1)")
    p.add_argument("--shard-index", type=int, default=0, help="this job's index in a job array (default: 0)")
    p.add_argument("--num-shards", type=int, default=1, help="jobs the inputs are partitioned into (default: 1)")
    p.add_argument("--files-per-shard", type=int, default=None, help="input files per .tar shard (default: 32)")
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")

    p = _sub(sub, "sync", "lip-sync offset, confidence and distance per face track (a SyncNet replacement)", """
        synclipmae sync talk.mp4 --model runs/demo/runs/synclipmae
        synclipmae sync videos/ more.mp4 --model CKPT --json sync.jsonl
        synclipmae sync talk.mp4 --model CKPT --plot talk.png --fix talk_synced.mp4
        synclipmae sync dubbed.mp4 --model CKPT --audio new_voice.wav --fix dubbed_synced.mp4
        # offset > 0: the audio is late by that many 25 fps frames (offset_ms = 40 x offset);
        # --fix moves the audio earlier by offset_ms. docs/sync.md explains every number.""")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders, or .txt lists of paths")
    p.add_argument("--model", required=True, metavar="CKPT",
                   help="checkpoint folder (config.json + model.safetensors) or a training run's folder")
    p.add_argument("--audio", metavar="WAV", help="score against this audio file instead of each video's soundtrack")
    p.add_argument("--json", metavar="OUT", help="write one JSON line per input here (default: JSON lines on stdout)")
    p.add_argument("--plot", metavar="PNG", help="draw the distance curve and local offsets (several inputs: "
                                                 "PNG-NNN-NAME.png each)")
    p.add_argument("--fix", metavar="OUT.mp4", help="write the video with its audio shifted by the detected offset "
                                                    "(several inputs: a folder)")
    p.add_argument("--max-offset", type=int, default=None, help="offsets searched, in frames each way (default: 15)")
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast: faster on CPUs with AVX512-BF16/AMX and "
                                                       "on GPUs; distances change in the third decimal")
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


def cmd_prepare(args) -> int:
    from synclipmae.data.shards import CLIP_FRAMES, FILES_PER_SHARD, prepare
    from synclipmae.tasks.sync import expand_inputs

    clip_frames = CLIP_FRAMES if args.clip_frames is None else args.clip_frames
    files_per_shard = FILES_PER_SHARD if args.files_per_shard is None else args.files_per_shard
    if args.size < 16 or args.size % 8:
        raise UsageError("--size must be a multiple of 8 (>= 16): the model's img_size")
    if clip_frames < 2 or args.workers < 1 or files_per_shard < 1:
        raise UsageError("--clip-frames must be >= 2, --workers and --files-per-shard >= 1")
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise UsageError(f"--shard-index must be in [0, --num-shards) = [0, {args.num_shards})")
    if not expand_inputs(args.inputs):
        raise UsageError(f"no video files in {' '.join(args.inputs)}")
    index = prepare(args.inputs, args.out, size=args.size, clip_frames=clip_frames, workers=args.workers,
                    shard_index=args.shard_index, num_shards=args.num_shards, files_per_shard=files_per_shard,
                    backend=args.backend, progress=True)
    for failure in index["failures"]:
        print(f"synclipmae prepare: {failure['error']}", file=sys.stderr)
    skipped = f" ({index['skipped_shards']} finished earlier)" if index["skipped_shards"] else ""
    print(f"{index['clips']} clips ({index['seconds']:.1f} s) in {len(index['shards'])} shards{skipped} in {args.out}; "
          f"{len(index['failures'])} of {index['inputs']} inputs failed; index: {index['path']}")
    return 1 if index["failures"] else 0


def _load_checkpoint(path: str, device: str):
    from synclipmae.models.synclipmae import SyncLipMAE
    from synclipmae.train.checkpoint import latest_checkpoint

    p = Path(path)
    if not (p / "model.safetensors").is_file():
        p = latest_checkpoint(p) if p.is_dir() else None
    if p is None:
        raise UsageError(f"--model {path}: not a checkpoint (a folder with config.json and model.safetensors, "
                         f"or a training run's folder)")
    try:
        import torch

        return SyncLipMAE.from_pretrained(p).to(torch.device(device)).eval(), str(p)
    except Exception as err:  # noqa: BLE001 - corrupt or incompatible checkpoint, unknown device
        raise UsageError(f"--model {path}: cannot load: {' '.join(str(err).split())[:300]}") from None


def _sync_line(record: dict) -> str:
    from synclipmae.tasks.sync import main_track

    name = Path(record["input"]).name
    if record["status"] != "ok":
        error = record["error"] or ""
        return f"error: {error}" if error.startswith(name) else f"{name}: error: {error}"
    tr = main_track(record)
    more = f" ({len(record['tracks'])} tracks)" if len(record["tracks"]) > 1 else ""
    return (f"{name}: offset {tr['offset_frames']:+d} frames ({tr['offset_ms']:+.0f} ms), confidence "
            f"{tr['confidence']:.3f}, min distance {tr['min_distance']:.3f}{more}")


def cmd_sync(args) -> int:
    import json

    from tqdm import tqdm

    from synclipmae.media.decode import MediaError, load_audio
    from synclipmae.tasks.sync import (FIX_SUFFIXES, MAX_OFFSET, expand_inputs, fix_offset, main_track, plot_record,
                                       sync_file)

    K = MAX_OFFSET if args.max_offset is None else args.max_offset
    if not 1 <= K <= 100:
        raise UsageError("--max-offset must be in [1, 100] frames")
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise UsageError(f"no video files in {' '.join(args.inputs)}")
    if args.audio and not Path(args.audio).is_file():
        raise UsageError(f"--audio {args.audio}: file not found")
    fix_dir = None
    if args.fix and (len(inputs) > 1 or Path(args.fix).is_dir()):
        fix_dir = Path(args.fix)
        if fix_dir.suffix and not fix_dir.is_dir():
            raise UsageError(f"--fix {args.fix}: with {len(inputs)} inputs, --fix names a folder")
    elif args.fix and Path(args.fix).suffix.lower() not in FIX_SUFFIXES:
        raise UsageError(f"--fix {args.fix}: the output must be one of {', '.join(FIX_SUFFIXES)}")
    model, model_name = _load_checkpoint(args.model, args.device)
    audio = None
    if args.audio:
        try:
            audio = load_audio(args.audio)  # once for all inputs
        except MediaError:
            pass
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    out = open(args.json, "w", encoding="utf-8") if args.json else None  # noqa: SIM115 - closed below
    failed = 0
    try:
        bar = tqdm(inputs, desc="sync", unit="file", file=sys.stderr, disable=None)
        for i, path in enumerate(bar):
            # an --audio file that cannot be read fails every input with its reason (sync_file re-reads it)
            record = sync_file(path, model, audio_path=args.audio if audio is None else None, audio=audio,
                               max_offset=K, backend=args.backend, model_name=model_name, bf16=args.bf16)
            if record["status"] == "ok" and args.plot:
                png = Path(args.plot)
                if len(inputs) > 1:
                    png = png.with_name(f"{png.stem}-{i:03d}-{path.stem}{png.suffix or '.png'}")
                record["plot"] = str(plot_record(record, png))
            if record["status"] == "ok" and args.fix:
                suffix = path.suffix.lower() if path.suffix.lower() in FIX_SUFFIXES else ".mp4"
                target = fix_dir / f"{path.stem}_synced{suffix}" if fix_dir else Path(args.fix)
                try:
                    record["fixed"] = str(fix_offset(path, target, main_track(record)["offset_ms"], args.audio))
                except Exception as err:  # noqa: BLE001 - the scores stand; the input still counts as failed
                    record.update(status="error", error=f"{path.name}: could not write {target.name}: "
                                                        f"{' '.join(str(err).split())}")
            line = json.dumps(record)
            if out is not None:
                out.write(line + "\n")
                out.flush()
                print(_sync_line(record))
            else:
                print(line, flush=True)
            if record["status"] != "ok":
                failed += 1
                tqdm.write(f"synclipmae sync: {record['error']}", file=sys.stderr)
        bar.close()
    finally:
        if out is not None:
            out.close()
    if failed and len(inputs) > 1:
        print(f"synclipmae sync: {failed} of {len(inputs)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


COMMANDS = {"demo": cmd_demo, "synth": cmd_synth, "pretrain": cmd_pretrain, "prepare": cmd_prepare, "sync": cmd_sync}


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
