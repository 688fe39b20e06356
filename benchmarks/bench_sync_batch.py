"""Batch throughput of `synclipmae sync` on many short files, where per-file overhead dominates (issue 22).

    python benchmarks/bench_sync_batch.py [--folder DIR] [--files 100] [--model CKPT]

Default folder: ../shared/data/grid/s1 (900 GRID clips of 3 s, 360x288, 25 fps). Runs one
`python -m synclipmae sync FILE... --json OUT` over the first --files files (sorted; 0: all) in a
subprocess, as a user would, and prints files per hour, seconds of video per second of wall time,
the count of ok records and the subprocess's peak RSS. The model load and the imports are in the
figure (one process for the whole batch, as in a job array's task).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grid" / "s1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", default=str(GRID))
    ap.add_argument("--files", type=int, default=100, help="the first N files, sorted (0: all; default 100)")
    ap.add_argument("--model", help="passed to sync --model (default: the shipped weights)")
    args = ap.parse_args()

    from synclipmae.media.decode import probe  # noqa: PLC0415
    from synclipmae.media.pipeline import expand_inputs  # noqa: PLC0415

    files = expand_inputs([args.folder])
    files = files[:args.files] if args.files else files
    seconds = sum(float(probe(f)["duration_s"] or 0) for f in files)
    with tempfile.TemporaryDirectory() as tmp:
        listing, out = Path(tmp) / "inputs.txt", Path(tmp) / "sync.jsonl"
        listing.write_text("".join(f"{f.resolve()}\n" for f in files))
        cmd = [sys.executable, "-m", "synclipmae", "sync", str(listing), "--json", str(out)]
        if args.model:
            cmd += ["--model", args.model]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    ok = sum(r.get("status") == "ok" for r in records)
    result = {"folder": args.folder, "files": len(files), "seconds_of_video": round(seconds, 1), "wall_s": round(wall, 1),
              "files_per_hour": round(3600 * len(files) / wall), "video_s_per_s": round(seconds / wall, 2),
              "ok": ok, "records": len(records), "peak_rss_mb": round(usage.ru_maxrss / 1024),
              "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "exit": os.waitstatus_to_exitcode(status)}
    print(f"{len(files)} files, {seconds:.0f} s of video: {wall:.1f} s wall -> {result['files_per_hour']} files/hour, "
          f"{result['video_s_per_s']} s of video a second; {ok}/{len(records)} ok; peak RSS {result['peak_rss_mb']} MB; "
          f"{result['cpu_s']} s CPU")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
