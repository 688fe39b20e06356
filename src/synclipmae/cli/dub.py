"""The dub subcommand: a video's main face redrawn to follow new speech or another face.

Each command is a parser (`add_NAME`) next to its handler (`cmd_NAME`), which calls one library
function and prints."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from synclipmae.cli.common import UsageError, add_command, add_face_options, load_dubber_checkpoint
from synclipmae.tasks.dub import OUT_SUFFIXES, dub_file


def add_dub(sub) -> None:
    p = add_command(sub, "dub", "dub a video: its main face's mouth redrawn to follow new speech or another face", """
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
    p.add_argument("--model", metavar="CKPT",
                   help="a dubbing checkpoint, or a SyncLipMAE checkpoint, training run or shipped weights (used "
                        "untuned; default: the shipped real-tiny weights, docs/model-card.md)")
    p.add_argument("--out", required=True, metavar="OUT.mp4", help="the dubbed video: .mp4, .mov, .m4v or .mkv "
                                                                   "(H.264 + AAC, 25 fps)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) to 51 (default: 18)")
    add_face_options(p)
    p.set_defaults(run=cmd_dub)


def cmd_dub(args) -> int:
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
    dubber, model_name = load_dubber_checkpoint(args.model, args.device)
    record = dub_file(args.video, out, dubber, audio_path=args.audio, driving_path=args.driving_video,
                      backend=args.backend, progress=True, crf=args.crf, model_name=model_name)
    print(json.dumps(record), flush=True)
    if record["status"] != "ok":
        print(f"synclipmae dub: {record['error']}", file=sys.stderr)
        return 1
    return 0
