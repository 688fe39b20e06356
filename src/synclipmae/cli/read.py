"""The read subcommand: lip reading of video files with a pretrained encoder and a CTC head.

A parser (`add_read`) next to its handler (`cmd_read`), which runs `tasks.read.read_file` over the
inputs as a batch (cli/batch.py: resume, shards, per-file limits) and prints a line per input."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from synclipmae.cli.batch import add_batch_options, error_line, run_batch, select_inputs
from synclipmae.cli.common import (UsageError, add_command, add_face_options, add_limit_options, checkpoint_name,
                                   limits_from, load_checkpoint)
from synclipmae.config import IMG_SIZE
from synclipmae.tasks.read import new_record, read_file
from synclipmae.tasks.vsr import GRAMMARS, SlotGrammar, head_features, load_vsr
from synclipmae.weights import PRETRAINED_HEADS, resolve_head


def add_read(sub) -> None:
    p = add_command(sub, "read", "lip reading: the words spoken in each face track of video files", """
        synclipmae read clip.mp4                          # shipped real-tiny encoder + grid-s1 head
        synclipmae read clip.mp4 --grammar grid           # keep to GRID's six word slots
        synclipmae read videos/ list.txt --json read.jsonl  # a batch: re-run the same command to go on
        synclipmae read clip.mp4 --model CKPT --head runs/vsr-grid
        # the shipped head reads GRID's 51-word grammar spoken by GRID speaker s1, not open speech
        # (docs/model-card.md); --json: input, status, error, text, tracks[{track, start_frame, end_frame, text}]""")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, folders, or .txt lists of paths")
    p.add_argument("--head", metavar="DIR", help="a head folder written by 'vsr train' or a shipped head's name "
                                                 "(default: grid-s1)")
    p.add_argument("--model", metavar="CKPT", help="the encoder the head was trained on: checkpoint folder, run folder "
                                                   "or shipped weights by name (default: the one the head names)")
    p.add_argument("--beam", type=int, default=8, help="CTC prefix beam width; 1 = greedy (default: 8)")
    p.add_argument("--grammar", choices=list(GRAMMARS), help="grammar-constrained decoding (grid: GRID's six word "
                                                             "slots: command colour preposition letter digit adverb)")
    add_batch_options(p)
    add_face_options(p)
    add_limit_options(p)
    p.set_defaults(run=cmd_read)


def _load_reader(head_dir: str, model: str | None, device: str) -> dict:
    """The reader's state, built once (in the worker, or here): head, tokenizer, encoder and their names."""
    head, tok, _ = load_vsr(head_dir)
    net, name = (None, None) if head.cfg.inputs == "pixels" else load_checkpoint(model, device)
    size = net.cfg.model.img_size if net is not None else IMG_SIZE
    dim = head_features(net, np.zeros((1, size, size, 3), np.uint8), head.cfg.inputs).shape[1]
    if dim != head.inp.in_features:
        raise UsageError(f"--head {head_dir} reads {head.inp.in_features} numbers a frame ({head.cfg.inputs}) but "
                         f"--model {name} gives {dim}: give the encoder the head was trained on")
    return {"head": head, "tok": tok, "model": net, "model_name": name, "head_name": _head_name(Path(head_dir))}


def _head_name(head_dir: Path) -> str:
    return head_dir.name if head_dir.parent == PRETRAINED_HEADS else str(head_dir)


def _read(state: dict, job: tuple) -> dict:
    path, grammar, options = job
    return read_file(path, state["model"], state["head"], state["tok"], model_name=state["model_name"],
                     head_name=state["head_name"], grammar=SlotGrammar(GRAMMARS[grammar]) if grammar else None,
                     **options)


def _read_line(record: dict) -> str:
    if record["status"] != "ok":
        return error_line(record)
    more = "".join(f"\n  track {t['track']} (frames {t['start_frame']}-{t['end_frame']}): {t['text']}"
                   for t in record["tracks"]) if len(record["tracks"]) > 1 else ""
    return f"{Path(record['input']).name}: {record['text']}{more}"


def _failed(model_name: str | None, head_name: str, path: Path, error: str) -> dict:
    return new_record(path, model_name, head_name, error=error)


def cmd_read(args) -> int:
    if args.beam < 1:
        raise UsageError("--beam must be >= 1")
    inputs = select_inputs(args)
    try:
        head_dir = resolve_head(args.head)
        head, _, cfg = load_vsr(head_dir)
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise UsageError(f"--head {err}") from None
    model = args.model or cfg.get("encoder")  # the encoder the head was trained on, unless told otherwise
    model_name = None if head.cfg.inputs == "pixels" else checkpoint_name(model)[1]
    limits = limits_from(args)
    options = dict(beam=args.beam, backend=args.backend)
    return run_batch("read", inputs, args.json, limits, partial(_load_reader, str(head_dir), model, args.device),
                     _read, lambda path: (path, args.grammar, options), partial(_failed, model_name,
                                                                               _head_name(head_dir)), _read_line)
