"""What `sync` and `read` share: a batch of video files through one scorer.

    select_inputs(args, command)       INPUTs expanded (files, folders, .txt lists), then this shard's share
    run_batch(...)                     score each input, print a line each, append --json records, summarise

A batch scores each input in an `isolate.Worker` (a child process that loads the model once), so an
input that hangs the demuxer, eats the memory or crashes the decoder costs one error record, not the
batch; one input with no limit given is scored here, without the worker's start (a second or two).
`--json OUT` gets one flushed line per input as soon as it is scored, and a re-run with the same OUT
skips the inputs it already holds (a last line cut short by a kill is dropped first).
"""
from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from synclipmae.cli.common import UsageError
from synclipmae.isolate import Limits, SetupError, Timeout, Worker, WorkerError
from synclipmae.media.decode import MediaError, probe
from synclipmae.media.pipeline import expand_inputs
from synclipmae.report import read_records
from synclipmae.timing import TIMING

MIN_BYTES_PER_S = 1000  # default: a damaged header's duration counts for at most 1 kB of file a second (8 kbit/s)


def select_inputs(args) -> list[Path]:
    """The INPUTs expanded, then every --num-shards-th from --shard-index (UsageError when none)."""
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        raise UsageError(f"--shard-index must be in [0, --num-shards) = [0, {args.num_shards})")
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise UsageError(f"no video files in {' '.join(args.inputs)}")
    return inputs[args.shard_index::args.num_shards]


def add_batch_options(p) -> None:
    """--json, --shard-index, --num-shards."""
    p.add_argument("--json", metavar="OUT", help="append one JSON line per input here as soon as it is done; a "
                                                 "re-run skips the inputs OUT already holds (default: JSON lines on "
                                                 "stdout)")
    p.add_argument("--shard-index", type=int, default=0, help="this job's index in a job array: it takes every "
                                                              "--num-shards-th input from this one (default: 0)")
    p.add_argument("--num-shards", type=int, default=1, help="jobs the inputs are split across (default: 1)")


def failure_reason(record: dict) -> str:
    """An error record's reason without its file name and numbers, for the batch summary
    ("no face found in N frames")."""
    error = record.get("error") or "unknown error"
    name = Path(record["input"]).name
    error = error[len(name) + 2:] if error.startswith(name + ": ") else error
    return re.sub(r"\d+(\.\d+)?", "N", error)


def error_line(record: dict) -> str:
    """The line printed for an error record: "NAME: error: why" (the reason once names the file)."""
    name, error = Path(record["input"]).name, record["error"] or ""
    return f"error: {error}" if error.startswith(name) else f"{name}: error: {error}"


def _duration(_state, path) -> float | None:
    """The file's declared duration in seconds, but no more than its size allows at `MIN_BYTES_PER_S`
    (a damaged header may declare days); None when unknown or unreadable (the scorer says why)."""
    try:
        info = probe(path)
    except MediaError:
        return None
    return None if info["duration_s"] is None else min(info["duration_s"], info["size_bytes"] / MIN_BYTES_PER_S)


def score_isolated(worker: Worker, score: Callable, path: Path, job, limits: Limits, failed: Callable) -> dict:
    """`score(state, job)` in the worker within `limits`: the file's record, or `failed(path, error)`
    saying which limit it hit."""
    try:
        duration = worker.run(_duration, path, timeout=limits.base_s)
    except Timeout:
        return failed(path, f"{path.name}: timeout: reading the file's header took over {limits.base_s:g} s")
    except WorkerError as err:
        return failed(path, f"{path.name}: {err} (reading the file's header)")
    try:
        return worker.run(score, job, timeout=limits.seconds(duration))
    except Timeout as err:
        return failed(path, f"{path.name}: {err} (the limit: --timeout {limits.base_s:g} s + --timeout-per-second "
                      f"{limits.per_second:g} x {duration or 0:.1f} s of media)")
    except WorkerError as err:
        return failed(path, f"{path.name}: {err}")


def run_batch(command: str, inputs: list[Path], json_out: str | None, limits: Limits | None, load: Callable,
              score: Callable, job: Callable, failed: Callable, line: Callable, after: Callable | None = None) -> int:
    """Score `inputs` and return the exit status (1 when an input failed, else 0).

    load(): the scorer's state (built once, in the worker or here); score(state, job(path)) -> the
    input's record (picklable, module-level functions: they run in the worker); failed(path, error) ->
    an error record for an input a limit stopped; line(record) -> the line printed per input with
    --json (without it, each record goes to stdout as one JSON line); after(i, path, record): work
    done here on a scored record (plots, rewritten files)."""
    done: dict[str, dict] = {}
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        done = {r["input"]: r for r in read_records(json_out) if isinstance(r, dict) and "input" in r}
    todo = [(i, p) for i, p in enumerate(inputs) if str(p) not in done]
    if len(todo) < len(inputs):
        print(f"synclipmae {command}: {len(inputs) - len(todo)} of {len(inputs)} inputs already in {json_out}; "
              f"scoring the other {len(todo)}", file=sys.stderr)
    out = open(json_out, "a", encoding="utf-8") if json_out else None  # noqa: SIM115 - closed below
    reasons: Counter = Counter(failure_reason(r) for p in inputs if (r := done.get(str(p))) and r.get("status") != "ok")
    scored, video_s, started = 0, 0.0, time.perf_counter()
    isolated = len(inputs) > 1 or limits is not None
    state = worker = None
    try:
        if isolated and todo:
            worker = Worker(load, max_memory=(limits or Limits()).memory())
        elif todo:
            state = load()
        bar = tqdm(todo, desc=command, unit="file", file=sys.stderr, disable=None)
        for i, path in bar:
            if worker is not None:
                record = score_isolated(worker, score, path, job(path), limits or Limits(), failed)
            else:
                record = score(state, job(path))
            if after is not None:
                after(i, path, record)
            scored += 1
            video_s += record["frames"] / TIMING.fps
            text = json.dumps(record)
            if out is not None:
                out.write(text + "\n")
                out.flush()
                print(line(record))
            else:
                print(text, flush=True)
            if record["status"] != "ok":
                reasons[failure_reason(record)] += 1
                tqdm.write(f"synclipmae {command}: {record['error']}", file=sys.stderr)
            bar.set_postfix(failed=sum(reasons.values()), refresh=False)
        bar.close()
    except SetupError as err:  # the model (or its worker) cannot start: a usage error, nothing scored
        raise UsageError(str(err)) from None
    finally:
        if worker is not None:
            worker.close()
        if out is not None:
            out.close()
    failed_n = sum(reasons.values())
    if len(inputs) > 1:
        took = time.perf_counter() - started
        why = "; ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        print(f"synclipmae {command}: {len(inputs) - failed_n} of {len(inputs)} inputs ok ({scored} scored now, "
              f"{video_s / max(took, 1e-9):.1f} s of video a second)" + (f"; failed: {why}" if failed_n else ""),
              file=sys.stderr)
    return 1 if failed_n else 0
