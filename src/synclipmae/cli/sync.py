"""Subcommands that read real video with a pretrained model: sync and embed.

Each command is a parser (`add_NAME`) next to its handler (`cmd_NAME`), which calls one library
function and prints."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from synclipmae.cli.batch import add_batch_options, error_line, run_batch, select_inputs
from synclipmae.cli.common import (UsageError, add_command, add_face_options, add_limit_options, checkpoint_name,
                                   limits_from, load_checkpoint)
from synclipmae.media.decode import MediaError, load_audio
from synclipmae.media.rewrite import FIX_SUFFIXES, fix_offset
from synclipmae.report import plot_record
from synclipmae.tasks.features import extract, save_features
from synclipmae.tasks.sync import MAX_OFFSET, main_track, new_record, sync_file


def _sync_line(record: dict) -> str:
    if record["status"] != "ok":
        return error_line(record)
    tr = main_track(record)
    more = f" ({len(record['tracks'])} tracks)" if len(record["tracks"]) > 1 else ""
    return (f"{Path(record['input']).name}: offset {tr['offset_frames']:+d} frames ({tr['offset_ms']:+.0f} ms), "
            f"confidence {tr['confidence']:.3f}, min distance {tr['min_distance']:.3f}{more}")


def add_sync(sub) -> None:
    p = add_command(sub, "sync", "lip-sync offset, confidence and distance per face track (a SyncNet replacement)", """
        synclipmae sync talk.mp4                     # the shipped real-tiny weights
        synclipmae sync talk.mp4 --model runs/demo/runs/synclipmae
        synclipmae sync videos/ more.mp4 --json sync.jsonl
        synclipmae sync talk.mp4 --model CKPT --plot talk.png --fix talk_synced.mp4
        synclipmae sync dubbed.mp4 --model CKPT --audio new_voice.wav --fix dubbed_synced.mp4
        # a dataset: re-run the same command after a crash to go on; a job array splits the list
        synclipmae sync list.txt --json sync-$SLURM_ARRAY_TASK_ID.jsonl --shard-index $SLURM_ARRAY_TASK_ID --num-shards 16
        # a batch scores each file in a worker process: one that takes over 60 s + 3 s per second of video,
        # or over 4 GB, gets an error record ("timeout: ...", "memory: ...") and the batch goes on
        synclipmae sync videos/ --json sync.jsonl --timeout 60 --timeout-per-second 3 --max-memory 4
        # offset > 0: the audio is late by that many 25 fps frames (offset_ms = 40 x offset);
        # --fix moves the audio earlier by offset_ms. docs/sync.md explains every number.""")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders, or .txt lists of paths")
    p.add_argument("--model", metavar="CKPT",
                   help="checkpoint folder, training run's folder, or shipped weights by name (default: real-tiny, "
                        "trained on GRID s1 + SynthTalk: docs/model-card.md)")
    p.add_argument("--audio", metavar="WAV", help="score against this audio file instead of each video's soundtrack")
    add_batch_options(p)
    p.add_argument("--plot", metavar="PNG", help="draw the distance curve and local offsets (several inputs: "
                                                 "PNG-NNN-NAME.png each)")
    p.add_argument("--fix", metavar="OUT.mp4", help="write the video with its audio shifted by the detected offset "
                                                    "(several inputs: a folder)")
    p.add_argument("--max-offset", type=int, default=None, help="offsets searched, in frames each way (default: 15)")
    add_face_options(p)
    add_limit_options(p)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast: faster on CPUs with AVX512-BF16/AMX and "
                                                       "on GPUs; distances change in the third decimal")
    p.set_defaults(run=cmd_sync)


# `run_batch` scores each input with these, in an `isolate.Worker` for a batch (cli/batch.py).


def _load_scorer(model: str | None, device: str, audio_path: str | None) -> dict:
    """The scorer's state, built once (in the worker, or here): the model, its name and the --audio samples."""
    net, name = load_checkpoint(model, device)
    audio = None
    if audio_path:
        try:
            audio = load_audio(audio_path)  # once for all inputs
        except MediaError:
            pass  # sync_file re-reads it, so every input fails with its reason
    return {"model": net, "name": name, "audio": audio, "audio_path": audio_path}


def _score(state: dict, job: tuple) -> dict:
    path, options = job
    return sync_file(path, state["model"], audio_path=state["audio_path"] if state["audio"] is None else None,
                     audio=state["audio"], model_name=state["name"], **options)


def _failed(model_name: str | None, path: Path, error: str) -> dict:
    return new_record(path, model_name, error=error)


def cmd_sync(args) -> int:
    K = MAX_OFFSET if args.max_offset is None else args.max_offset
    if not 1 <= K <= 100:
        raise UsageError("--max-offset must be in [1, 100] frames")
    inputs = select_inputs(args)
    if args.audio and not Path(args.audio).is_file():
        raise UsageError(f"--audio {args.audio}: file not found")
    fix_dir = None
    if args.fix and (len(inputs) > 1 or Path(args.fix).is_dir()):
        fix_dir = Path(args.fix)
        if fix_dir.suffix and not fix_dir.is_dir():
            raise UsageError(f"--fix {args.fix}: with {len(inputs)} inputs, --fix names a folder")
    elif args.fix and Path(args.fix).suffix.lower() not in FIX_SUFFIXES:
        raise UsageError(f"--fix {args.fix}: the output must be one of {', '.join(FIX_SUFFIXES)}")
    limits = limits_from(args)
    model_name = checkpoint_name(args.model)[1]  # a bad --model fails here, before any input
    options = dict(max_offset=K, backend=args.backend, bf16=args.bf16)

    def after(i: int, path: Path, record: dict) -> None:
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

    return run_batch("sync", inputs, args.json, limits, partial(_load_scorer, args.model, args.device, args.audio),
                     _score, lambda path: (path, options), partial(_failed, model_name), _sync_line, after)


def add_embed(sub) -> None:
    p = add_command(sub, "embed", "per-frame tokens z_id, z_voc, z_amb and a_t of every face track of a video", """
        synclipmae embed talk.mp4 --out talk.safetensors     # the shipped real-tiny weights
        synclipmae embed talk.mp4 --model runs/demo/runs/synclipmae --out talk.safetensors
        synclipmae embed silent.mp4 --model CKPT --audio voice.wav --out silent.safetensors
        # python: from synclipmae.tasks.features import load_features; load_features("talk.safetensors")""")
    p.add_argument("input", metavar="INPUT", help="a video file")
    p.add_argument("--model", metavar="CKPT", help="checkpoint folder, training run's folder, or shipped weights by name (default: real-tiny, "
                        "trained on GRID s1 + SynthTalk: docs/model-card.md)")
    p.add_argument("--out", required=True, metavar="FILE.safetensors",
                   help="tensors track{k}.z_id|z_voc|z_amb|a float32 [N, D] and track{k}.times [N] (seconds)")
    p.add_argument("--audio", metavar="WAV", help="audio tokens from this file instead of the video's soundtrack")
    add_face_options(p)
    p.set_defaults(run=cmd_embed)


def cmd_embed(args) -> int:
    if not args.out.endswith(".safetensors"):
        raise UsageError(f"--out {args.out}: the output must be a .safetensors file")
    if args.audio and not Path(args.audio).is_file():
        raise UsageError(f"--audio {args.audio}: file not found")
    model, model_name = load_checkpoint(args.model, args.device)
    tracks = extract(args.input, model, audio_path=args.audio, backend=args.backend)
    path = save_features(tracks, args.out, meta={"input": str(args.input), "model": model_name})
    summary = [{"track": t.track, "start_frame": t.start_frame, "end_frame": t.end_frame,
                "tokens": sorted(t.tokens)} for t in tracks]
    print(json.dumps({"input": str(args.input), "status": "ok", "out": str(path), "tracks": summary}))
    return 0
