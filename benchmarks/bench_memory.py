"""Peak resident memory of `synclipmae sync` against the length of the video (issue 22).

    python benchmarks/bench_memory.py [--input FILE] [--minutes 1,10,60] [--keep DIR] [--model CKPT]

Builds files of 1, 10 and 60 minutes by looping one shared clip with stream copy (`-c copy`: the
packets are remuxed with PyAV, nothing is re-encoded, so every file is the same stream), runs
`python -m synclipmae sync FILE --json OUT` on each in a subprocess and reads that process's peak
resident set size from `os.wait4` (the kernel's ru_maxrss of that one child). Prints a table: minutes,
peak RSS, wall time, real-time factor, and the ratio of each peak to the first one. The target is a
peak at 60 minutes within 1.5x of the peak at 1 minute.

Default input: ../shared/data/real/marlin_video01.mp4 (H.264 480x360, 30 fps, 10 s, AAC 44.1 kHz
stereo). The looped files go to a temporary folder (deleted) unless --keep names one (kept and reused).
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

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def loop_copy(src: Path, dst: Path, times: int) -> None:
    """Write `src` played `times` times in a row to `dst` without re-encoding (stream copy of the first
    video and audio streams). Each pass is shifted by the longer of the two streams' durations, so
    timestamps keep increasing in both (an encoder's priming samples start before 0)."""
    import av  # noqa: PLC0415 - PyAV, a core dependency of synclipmae

    first, last = float("inf"), float("-inf")
    with av.open(str(src)) as inp:
        streams = inp.streams.video[:1] + inp.streams.audio[:1]
        for packet in inp.demux(streams):  # one pass to learn the streams' extent
            if packet.dts is not None:
                first = min(first, float(packet.dts * packet.time_base))
                last = max(last, float((max(packet.dts, packet.pts or packet.dts) + (packet.duration or 0))
                                       * packet.time_base))
    period = last - first  # seconds between the starts of two passes
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = inp.streams.video[:1] + inp.streams.audio[:1]
        outs = {s.index: out.add_stream_from_template(s) for s in streams}
        for i in range(times):
            inp.seek(0)
            for packet in inp.demux(streams):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                shift = int(round(i * period / packet.time_base))
                packet.pts = None if packet.pts is None else packet.pts + shift
                packet.dts += shift
                packet.stream = outs[packet.stream.index]
                out.mux(packet)


def peak_rss(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB of the process running `cmd`, wall seconds, exit code)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, proc.returncode  # ru_maxrss is in KB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default=str(REAL / "marlin_video01.mp4"))
    ap.add_argument("--minutes", default="1,10,60", help="file lengths in minutes (default 1,10,60)")
    ap.add_argument("--keep", help="keep (and reuse) the looped files in this folder")
    ap.add_argument("--model", help="passed to sync --model (default: the shipped weights)")
    args = ap.parse_args()

    from synclipmae.media.decode import probe  # noqa: PLC0415

    clip_s = float(probe(args.input)["duration_s"])
    tmp = None if args.keep else tempfile.TemporaryDirectory()
    folder = Path(args.keep or tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        times = max(1, round(minutes * 60 / clip_s))
        path = folder / f"{Path(args.input).stem}_x{times}.mp4"
        if not path.is_file():  # written under another name first: a run killed mid-copy leaves no half file
            part = path.with_name(f"{path.stem}.part{path.suffix}")
            loop_copy(Path(args.input), part, times)
            part.replace(path)
        seconds = float(probe(path)["duration_s"])
        out = folder / f"{path.stem}.jsonl"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "synclipmae", "sync", str(path), "--json", str(out)]
        if args.model:
            cmd += ["--model", args.model]
        mb, wall, rc = peak_rss(cmd)
        record = json.loads(out.read_text().splitlines()[-1]) if out.is_file() and out.stat().st_size else {}
        rows.append({"minutes": minutes, "seconds": round(seconds, 1), "peak_rss_mb": round(mb), "wall_s": round(wall, 1),
                     "realtime_x": round(seconds / wall, 2), "exit": rc, "status": record.get("status"),
                     "tracks": len(record.get("tracks") or [])})
        r = rows[-1]
        print(f"{minutes:6g} min  {seconds:8.1f} s  peak RSS {mb:7.0f} MB  ({mb / rows[0]['peak_rss_mb']:.2f}x)  "
              f"{wall:7.1f} s wall  {seconds / wall:5.2f}x real time  status {r['status']}, {r['tracks']} tracks",
              flush=True)
    print(json.dumps({"input": Path(args.input).name, "rows": rows}))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
