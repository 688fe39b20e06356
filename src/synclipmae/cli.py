"""The `synclipmae` command line. Each subcommand calls one library function.

Exit codes: 0 success; 1 some inputs or the run failed (each named on stderr); 2 bad usage.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import textwrap
from pathlib import Path


class UsageError(Exception):
    """Bad usage: one line on stderr, exit 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the whole usage)
        words = self.prog.split()  # "synclipmae" or "synclipmae [options] COMMAND"
        name = words[0] if len(words) == 1 else f"{words[0]} {words[-1]}"
        self.exit(2, f"{name}: error: {message}\n")


def _sub(subparsers, name: str, help: str, examples: str):
    return subparsers.add_parser(name, help=help, description=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="synclipmae", description="SyncLipMAE: sync-aware talking-face representations.",
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="run 'synclipmae COMMAND --help' for a command's options and examples")
    from synclipmae.version import __version__

    parser.add_argument("--version", action="version", version=f"synclipmae {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")

    p = _sub(sub, "demo", "SynthTalk -> pretrain tiny -> evaluate on unseen identities -> report", """
        synclipmae demo --out runs/demo
        synclipmae demo --out runs/demo-s3 --seed 3 --minutes 3
        synclipmae demo --out runs/demo-bl --baselines     # also trains syncnet-style and mae-only
        synclipmae demo --out runs/demo-a9 mask.ratio_a=0.9  # the demo's recipe with an override""")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--minutes", type=float, default=None, help="pretraining minutes per model (default: 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", action="store_true", help="also train and evaluate the two baselines")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the demo's recipe (every model trained)")

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
    p = _sub(sub, "embed", "per-frame tokens z_id, z_voc, z_amb and a_t of every face track of a video", """
        synclipmae embed talk.mp4 --model runs/demo/runs/synclipmae --out talk.safetensors
        synclipmae embed silent.mp4 --model CKPT --audio voice.wav --out silent.safetensors
        # python: from synclipmae.tasks.features import load_features; load_features("talk.safetensors")""")
    p.add_argument("input", metavar="INPUT", help="a video file")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint folder or a training run's folder")
    p.add_argument("--out", required=True, metavar="FILE.safetensors",
                   help="tensors track{k}.z_id|z_voc|z_amb|a float32 [N, D] and track{k}.times [N] (seconds)")
    p.add_argument("--audio", metavar="WAV", help="audio tokens from this file instead of the video's soundtrack")
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")

    p = _sub(sub, "probe", "emotion / action probe on time-averaged tokens of labelled videos", """
        synclipmae probe --manifest labels.csv --model runs/demo/runs/synclipmae --out runs/probe
        synclipmae probe --dataset ravdess --root data/RAVDESS --model CKPT --out runs/ravdess
        synclipmae probe --dataset crema-d --root data/CREMA-D --model CKPT --tokens z_voc --head mlp
        synclipmae probe --dataset celebv-hq --root data/CelebV-HQ --task action --model CKPT --out runs/cv-action
        # labels.csv: a header row path,label[,split]; multi-label cells 'nod;smile'; without a split
        # column 80/20 by file hash. Writes OUT/probe.json, OUT/confusion.png (docs/usage.md, "Probes")""")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", metavar="CSV", help="CSV with a header row: path,label[,split]")
    src.add_argument("--dataset", choices=["ravdess", "crema-d", "mead", "celebv-hq"],
                     help="read a dataset in its own layout (with --root)")
    p.add_argument("--root", metavar="DIR", help="the dataset's folder (with --dataset)")
    p.add_argument("--task", choices=["emotion", "action"], default=None,
                   help="emotion: single label (default); action: multi-label (celebv-hq, or a manifest)")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint folder or a training run's folder")
    p.add_argument("--tokens", default="z_voc,z_amb", help="tokens averaged over time and concatenated, any of "
                                                           "z_id, z_voc, z_amb, a (default: z_voc,z_amb)")
    p.add_argument("--pooling", choices=["mean", "mean+std", "mean+std+motion"], default="mean",  # features.POOLINGS
                   help="per-file pooling over time: mean (the paper's average, default); +std adds each "
                        "feature's spread, +motion its mean frame-to-frame change (head motion, blink rate)")
    p.add_argument("--head", choices=["linear", "mlp"], default="linear",
                   help="linear: closed-form ridge (default); mlp: one hidden layer trained with AdamW")
    p.add_argument("--classes", metavar="A,B,...", help="the allowed classes, in order (default: those in the data)")
    p.add_argument("--out", default="runs/probe", help="output folder: probe.json, confusion.png (default: runs/probe)")
    p.add_argument("--seed", type=int, default=0, help="seeds the MLP head (default: 0)")
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")

    p = _sub(sub, "dub", "dub a video: its main face's mouth redrawn to follow new speech or another face", """
        synclipmae dub --video talk.mp4 --audio new_voice.wav --model CKPT --out talk_dubbed.mp4
        synclipmae dub --video talk.mp4 --driving-video actor.mp4 --model CKPT --out talk_dubbed.mp4
        synclipmae dub --video lecture.mp4 --audio lecture_fr.m4a --model CKPT --out lecture_fr.mp4 --device cuda
        # the output lasts as long as the driving audio (a shorter video plays back and forth, a longer
        # one is cut) and carries it as its soundtrack; frames without a face are copied unchanged.
        # One JSON record on stdout; docs/usage.md ("Dubbing") explains it.""")
    p.add_argument("--video", required=True, metavar="V", help="the video to dub")
    drive = p.add_mutually_exclusive_group(required=True)
    drive.add_argument("--audio", metavar="A", help="audio-driven: the new speech (any audio or video file); "
                                                    "it becomes the output's soundtrack")
    drive.add_argument("--driving-video", metavar="D", help="video-driven: the mouth follows D's face; the output "
                                                            "takes D's soundtrack")
    p.add_argument("--model", required=True, metavar="CKPT",
                   help="a dubbing checkpoint, or a SyncLipMAE checkpoint or training run (used untuned)")
    p.add_argument("--out", required=True, metavar="OUT.mp4", help="the dubbed video: .mp4, .mov, .m4v or .mkv "
                                                                   "(H.264 + AAC, 25 fps)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) to 51 (default: 18)")
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")

    p = _sub(sub, "vsr", "lip reading: train or score a CTC head on the z_voc sequence of transcribed videos", """
        synclipmae vsr train --dataset lrs3 --root data/LRS3 --model runs/demo/runs/synclipmae --out runs/vsr
        synclipmae vsr train --manifest transcripts.csv --model CKPT --out runs/vsr --epochs 100
        synclipmae vsr eval --manifest transcripts.csv --model CKPT --head runs/vsr --beam 8 --json wer.json
        # transcripts.csv: a header row path,label[,split], label = the words spoken.
        # WER / CER: word / character errors per reference word / character (0 is perfect).""")
    p.add_argument("action", choices=["train", "eval"])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", metavar="CSV", help="CSV with a header row: path,label[,split] (label = transcript)")
    src.add_argument("--dataset", choices=["lrs3"], help="read LRS3's layout (with --root)")
    p.add_argument("--root", metavar="DIR", help="the dataset's folder (with --dataset)")
    p.add_argument("--model", required=True, metavar="CKPT", help="the pretrained SyncLipMAE checkpoint")
    p.add_argument("--out", default="runs/vsr", help="train: the head's folder (config.json, model.safetensors, "
                                                      "vsr.json; default: runs/vsr)")
    p.add_argument("--head", metavar="DIR", help="eval: a head folder written by 'vsr train'")
    p.add_argument("--epochs", type=int, default=None, help="train: passes over the training set (default: 60)")
    p.add_argument("--minutes", type=float, default=0.0, help="train: stop after this many minutes (default: no limit)")
    p.add_argument("--units", default="char", help="char (default) or a sentencepiece .model file")
    p.add_argument("--beam", type=int, default=8, help="CTC prefix beam width; 1 = greedy (default: 8)")
    p.add_argument("--json", metavar="OUT", help="eval: write the scores and every transcript here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=["auto", "mediapipe", "haar"], default="auto", help="face detector")
    p.add_argument("--device", default="cpu", help="torch device for the model (default: cpu)")

    p = _sub(sub, "dub-train", "fine-tune the dubbing generator on SynthTalk train identities", """
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

    p = _sub(sub, "bench", "task benchmarks on SynthTalk test identities with a pretrained checkpoint", """
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
    return parser


def cmd_demo(args) -> int:
    from synclipmae.demo import DEFAULT_MINUTES, run_demo

    minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
    if minutes <= 0:
        raise UsageError("--minutes must be positive")
    report = run_demo(args.out, minutes=minutes, seed=args.seed, baselines=args.baselines,
                      overrides=args.overrides, log=lambda m: print(m, file=sys.stderr))
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
    from synclipmae.media.pipeline import expand_inputs

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


def _load_checkpoint(path: str, device: str, load=None):
    """(model, checkpoint folder) from a checkpoint folder or a training run's folder (its latest
    checkpoint); `load(folder)` builds the model (default: SyncLipMAE.from_pretrained)."""
    from synclipmae.train.checkpoint import latest_checkpoint

    p = Path(path)
    if not (p / "model.safetensors").is_file():
        p = latest_checkpoint(p) if p.is_dir() else None
    if p is None:
        raise UsageError(f"--model {path}: not a checkpoint (a folder with config.json and model.safetensors, "
                         f"or a training run's folder)")
    try:
        import torch

        if load is None:
            from synclipmae.models.synclipmae import SyncLipMAE

            load = SyncLipMAE.from_pretrained
        return load(p).to(torch.device(device)).eval(), str(p)
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
    from synclipmae.media.pipeline import expand_inputs
    from synclipmae.media.rewrite import FIX_SUFFIXES, fix_offset
    from synclipmae.report import plot_record
    from synclipmae.tasks.sync import MAX_OFFSET, main_track, sync_file

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


def cmd_embed(args) -> int:
    import json

    from synclipmae.tasks.features import extract, save_features

    if not args.out.endswith(".safetensors"):
        raise UsageError(f"--out {args.out}: the output must be a .safetensors file")
    if args.audio and not Path(args.audio).is_file():
        raise UsageError(f"--audio {args.audio}: file not found")
    model, model_name = _load_checkpoint(args.model, args.device)
    tracks = extract(args.input, model, audio_path=args.audio, backend=args.backend)
    path = save_features(tracks, args.out, meta={"input": str(args.input), "model": model_name})
    summary = [{"track": t.track, "start_frame": t.start_frame, "end_frame": t.end_frame,
                "tokens": sorted(t.tokens)} for t in tracks]
    print(json.dumps({"input": str(args.input), "status": "ok", "out": str(path), "tracks": summary}))
    return 0


def cmd_probe(args) -> int:
    from synclipmae.data.datasets import DataError, read_dataset
    from synclipmae.tasks.probe import TOKENS, probe_examples

    tokens = [t.strip() for t in args.tokens.split(",") if t.strip()]
    if not tokens or any(t not in TOKENS for t in tokens) or len(set(tokens)) != len(tokens):
        raise UsageError(f"--tokens {args.tokens}: comma-separated names from {', '.join(TOKENS)}, each at most once")
    if args.dataset and not args.root:
        raise UsageError(f"--dataset {args.dataset} needs --root DIR (the dataset's folder)")
    if args.manifest and args.root:
        raise UsageError("--root goes with --dataset (a manifest's relative paths are read from its own folder)")
    if args.task == "action" and args.dataset not in (None, "celebv-hq"):
        raise UsageError(f"--task action: {args.dataset} has emotion labels only (actions: celebv-hq or a manifest)")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes is not None else None
    if classes is not None and (not classes or len(set(classes)) != len(classes)):
        raise UsageError(f"--classes {args.classes}: comma-separated class names, each once")
    try:
        if args.manifest:
            source = args.manifest
            multilabel = None if args.task is None else args.task == "action"
            examples = read_dataset("manifest", source, classes=classes, multilabel=multilabel)
        else:
            source = args.root
            kw = {"task": args.task or "emotion"} if args.dataset == "celebv-hq" else {}
            examples = read_dataset(args.dataset, source, classes=classes, **kw)
        if examples.skipped:
            first = examples.skipped[0]
            print(f"synclipmae probe: {len(examples.skipped)} files under {source} skipped (not in the dataset's "
                  f"layout), first: {first['path']}: {first['error']}", file=sys.stderr)
        multilabel = isinstance(examples[0].label, list)
        model, model_name = _load_checkpoint(args.model, args.device)
        absent = [t for t in tokens if t != "a" and t not in model.prompt_names]
        if absent:
            raise UsageError(f"--tokens: this model has no {', '.join(absent)} "
                             f"(it has {', '.join(model.prompt_names)}, a)")
        report = probe_examples(examples, model, args.out, tokens=tokens, head=args.head, seed=args.seed,
                                task=args.task or ("action" if multilabel else "emotion"), classes=classes,
                                multilabel=multilabel, source=source, backend=args.backend, model_name=model_name,
                                pooling=args.pooling)
    except DataError as err:
        print(f"synclipmae probe: {err}", file=sys.stderr)
        return 1
    what = f"{report['task']} probe ({args.head} on {'+'.join(tokens)})"
    if multilabel:
        scores = f"mAP {report['map']:.3f} (chance {report['chance_map']:.3f})"
    else:
        scores = (f"accuracy {report['accuracy']:.3f} (chance {report['chance_accuracy']:.3f}), "
                  f"macro-F1 {report['macro_f1']:.3f}")
    failed = len(report["failures"])
    print(f"{what}: {scores} on {report['n_test']} test files ({report['n_train']} train); "
          f"{failed} files failed; {report['path']}")
    return 1 if failed else 0


def _load_dubber(path: str, device: str):
    from synclipmae.models.dubber import load_dubber

    return _load_checkpoint(path, device, load_dubber)


def cmd_dub(args) -> int:
    import json

    from synclipmae.tasks.dub import OUT_SUFFIXES, dub_file

    out = Path(args.out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(f"--out {args.out}: the dubbed video must be one of {', '.join(OUT_SUFFIXES)}")
    if out.is_dir():
        raise UsageError(f"--out {args.out}: is a folder; name the video file to write")
    for flag, given in (("--video", args.video), ("--audio", args.audio), ("--driving-video", args.driving_video)):
        if given and Path(given).resolve() == out.resolve():
            raise UsageError(f"--out {args.out}: must be a new file, not the {flag} input")
    if not 0 <= args.crf <= 51:
        raise UsageError("--crf must be in [0, 51]")
    dubber, model_name = _load_dubber(args.model, args.device)
    record = dub_file(args.video, out, dubber, audio_path=args.audio, driving_path=args.driving_video,
                      backend=args.backend, progress=True, crf=args.crf, model_name=model_name)
    print(json.dumps(record), flush=True)
    if record["status"] != "ok":
        print(f"synclipmae dub: {record['error']}", file=sys.stderr)
        return 1
    return 0


def cmd_vsr(args) -> int:
    import json

    from synclipmae.data.datasets import DataError, read_dataset
    from synclipmae.tasks import vsr

    if args.dataset and not args.root:
        raise UsageError(f"--dataset {args.dataset} needs --root DIR (the dataset's folder)")
    if args.action == "eval" and not args.head:
        raise UsageError("vsr eval needs --head DIR (a folder written by 'vsr train')")
    if args.beam < 1 or (args.epochs is not None and args.epochs < 1) or args.minutes < 0:
        raise UsageError("--beam and --epochs must be >= 1, --minutes >= 0")
    tokenizer = None
    if args.units != "char":
        if not Path(args.units).is_file():
            raise UsageError(f"--units {args.units}: 'char' or a sentencepiece .model file")
        tokenizer = vsr.SentencePieceTokenizer(args.units)
    log = lambda m: print(f"synclipmae vsr: {m}", file=sys.stderr)  # noqa: E731
    try:
        examples = (read_dataset("manifest", args.manifest, multilabel=False) if args.manifest
                    else read_dataset(args.dataset, args.root))
        model, model_name = _load_checkpoint(args.model, args.device)
        if args.action == "train":
            cfg = vsr.VSRTrainConfig(minutes=args.minutes, seed=args.seed)
            if args.epochs is not None:
                cfg.epochs = args.epochs
            report = vsr.vsr_train_files(examples, model, args.out, cfg, tokenizer, args.beam, args.backend, log,
                                         model_name)
        else:
            report = vsr.vsr_eval_files(examples, model, args.head, args.beam, args.backend, log)
    except DataError as err:
        print(f"synclipmae vsr: {err}", file=sys.stderr)
        return 1
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    scores = f"WER {report['wer']:.3f}, CER {report['cer']:.3f} on {report['n_test']} test files" if "wer" in report \
        else "no test rows to score"
    where = f"; head: {args.out}" if args.action == "train" else ""
    print(f"lip reading: {scores}; {len(report['failures'])} files failed{where}")
    return 1 if report["failures"] else 0


def cmd_dub_train(args) -> int:
    from synclipmae.config import apply_overrides
    from synclipmae.models.dubber import DubConfig, is_dubber_checkpoint
    from synclipmae.train.dubber import finetune_dubber

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
    model, model_dir = _load_checkpoint(args.model, "cpu")
    if not model.has_decoder or "z_id" not in model.prompt_names:
        raise UsageError(f"--model {args.model}: a '{model.cfg.model.variant}' model has no decoder or z_id to dub with")
    path = finetune_dubber(model, out, minutes=minutes, seed=args.seed, base_model=model_dir, cfg=cfg,
                           log=lambda m: print(f"synclipmae dub-train: {m}", file=sys.stderr))
    print(path)
    return 0


def cmd_bench(args) -> int:
    from dataclasses import asdict

    from synclipmae.config import apply_overrides
    from synclipmae.models.dubber import is_dubber_checkpoint

    if args.task == "downstream":
        from synclipmae.tasks.downstream import DownstreamConfig, bench_downstream

        cfg = apply_overrides(DownstreamConfig(seed=args.seed), args.overrides)
        cfg.validate()
        run = functools.partial(bench_downstream, cfg=cfg)
    else:
        from synclipmae.tasks.dub_bench import DubBenchSettings, bench_dub

        settings = apply_overrides(DubBenchSettings(), args.overrides)
        settings.validate()
        run = functools.partial(bench_dub, **asdict(settings))

    if args.task == "dub" and is_dubber_checkpoint(args.model):  # a fine-tuned dubber: its own network scores it
        model, model_dir = _load_dubber(args.model, "cpu")[0].net, args.model
    else:
        model, model_dir = _load_checkpoint(args.model, "cpu")
    path = run(model, model_dir, Path(args.out), seed=args.seed, log=lambda m: print(m, file=sys.stderr))
    print(path)
    return 0


COMMANDS = {"demo": cmd_demo, "synth": cmd_synth, "pretrain": cmd_pretrain, "prepare": cmd_prepare, "sync": cmd_sync,
            "embed": cmd_embed, "vsr": cmd_vsr, "probe": cmd_probe, "dub": cmd_dub, "dub-train": cmd_dub_train,
            "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    from synclipmae.config import ConfigError

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
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError) as err:
        print(f"synclipmae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synclipmae {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every other failure: one line, exit 1
        from synclipmae.media.decode import MediaError
        from synclipmae.media.pipeline import FaceError
        from synclipmae.train.loop import TrainingError

        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise

        kind = "" if isinstance(err, (TrainingError, MediaError, FaceError)) else f"{type(err).__name__}: "
        print(f"synclipmae {args.command}: {kind}{err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
