"""A batch killed with SIGKILL halfway and re-run gives the records of an uninterrupted run (issue 22).

    python benchmarks/bench_resume.py --out /tmp/resume [--files 24] [--model CKPT]

1. `synclipmae sync LIST --json full.jsonl` over the first --files GRID s1 clips (../shared/data), to the end.
2. The same command with `--json killed.jsonl`, killed with SIGKILL as soon as half the records are
   in the file, then run again to the end with the same arguments.
3. Report: records per input in killed.jsonl (each exactly once: none scored twice, none lost), what
   the re-run says it skipped and scored, and whether every record equals the uninterrupted run's.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "grid" / "s1"


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--model", help="checkpoint (default: the shipped real-tiny weights)")
    args = ap.parse_args()
    if not GRID.is_dir():
        sys.exit(f"bench_resume: the GRID clips are not at {GRID}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    listing = out / "inputs.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(GRID.glob("*.mp4"))[:args.files]))
    model = ["--model", args.model] if args.model else []

    def sync(json_out: Path) -> list[str]:
        return [sys.executable, "-m", "synclipmae", "sync", str(listing), "--json", str(json_out), *model]

    full, killed = out / "full.jsonl", out / "killed.jsonl"
    for p in (full, killed):
        p.unlink(missing_ok=True)
    run = subprocess.run(sync(full), capture_output=True, text=True)
    print(f"uninterrupted: exit {run.returncode}, {count_lines(full)} records")

    proc = subprocess.Popen(sync(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and count_lines(killed) < args.files // 2:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = count_lines(killed)
    print(f"killed with SIGKILL at {at_kill} of {args.files} records (exit {proc.returncode})")
    rerun = subprocess.run(sync(killed), capture_output=True, text=True)
    said = [line for line in rerun.stderr.splitlines() if line.startswith("synclipmae sync:")]
    print(f"re-run: exit {rerun.returncode}; " + " | ".join(said))

    a = [json.loads(x) for x in full.read_text().splitlines()]
    b = [json.loads(x) for x in killed.read_text().splitlines()]
    times = Counter(r["input"] for r in b)
    print(f"records: uninterrupted {len(a)}, killed + re-run {len(b)}; inputs recorded more than once: "
          f"{sum(n > 1 for n in times.values())}; inputs missing: {len({r['input'] for r in a} - set(times))}")
    by_input = {r["input"]: r for r in b}
    differ = [r["input"] for r in a if by_input.get(r["input"]) != r]
    print(f"records equal to the uninterrupted run's: {len(a) - len(differ)} of {len(a)}"
          + (f" (differ: {[Path(p).name for p in differ]})" if differ else "")
          + f"; same order: {[r['input'] for r in a] == [r['input'] for r in b]}")


if __name__ == "__main__":
    main()
