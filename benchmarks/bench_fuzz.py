"""Fuzzing `synclipmae sync` at scale: hundreds of broken real files in one batch (issue 22).

    python benchmarks/bench_fuzz.py --out /tmp/fuzz [--model CKPT] [--seconds 3]

1. Sources: real clips from ../shared/data (videoretalking_face1-4, marlin_video01, GRID s1 bbaf2n),
   each cut to its first --seconds, scaled to at most 360 px and re-encoded with PyAV (the FFmpeg the
   package reads with) into five containers: mp4 (H.264 + AAC), mkv (MPEG-4 + MP3), avi (MPEG-4 +
   MP3), flv (H.264 + AAC) and webm (VP8 + Opus). These are the untouched files.
2. Ten damaged copies of each (`CORRUPTIONS`): truncated to 10% and 60%, 64 flipped bytes (two seeds),
   an 8 KB block zeroed at 25% and 50%, two 16 KB chunks swapped, the first 64 bytes zeroed (a
   damaged header), 4 KB of random bytes appended, 32 bytes flipped in the first 1%.
3. Each untouched file is scored alone (`sync_file`, what `synclipmae sync FILE` runs), then everything
   runs as ONE batch, as users run it: `synclipmae sync OUT/files --json OUT/batch.jsonl`. While it
   runs, the batch's JSON lines are timestamped as they arrive, which gives each file's time.
4. Report: inputs and records, tracebacks on stderr, timeouts (hangs), the failures by reason, the
   slowest files, and whether every untouched file is `ok` with the offset it has when scored alone.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SOURCES = ["real/videoretalking_face1.mp4", "real/videoretalking_face2.mp4", "real/videoretalking_face3.mp4",
           "real/videoretalking_face4.mp4", "real/marlin_video01.mp4", "grid/s1/bbaf2n.mp4"]
CONTAINERS = {  # suffix: (video codec, audio codec, audio rate or None for the source's)
    ".mp4": ("libx264", "aac", None),
    ".mkv": ("mpeg4", "libmp3lame", 44100),
    ".avi": ("mpeg4", "libmp3lame", 44100),
    ".flv": ("libx264", "aac", 44100),
    ".webm": ("libvpx", "libopus", 48000),
}


def transcode(src: Path, dst: Path, vcodec: str, acodec: str, arate: int | None, seconds: float,
              max_side: int = 360) -> Path:
    """The first `seconds` of `src`, at most `max_side` px, re-encoded into `dst` (constant frame rate)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        rate = Fraction(vin.average_rate or 25).limit_denominator(1001)
        scale = min(1.0, max_side / max(vin.codec_context.width, vin.codec_context.height))
        w, h = (int(round(x * scale / 2)) * 2 for x in (vin.codec_context.width, vin.codec_context.height))
        vs = out.add_stream(vcodec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        arate = arate or ain.codec_context.sample_rate
        aus = out.add_stream(acodec, rate=arate, layout="stereo" if ain.codec_context.channels > 1 else "mono")
        resampler = av.AudioResampler(format=aus.codec_context.format, layout=aus.codec_context.layout, rate=arate)
        fifo = av.AudioFifo()
        n_video, n_audio = 0, 0
        size = aus.codec_context.frame_size or 1024
        for frame in inp.decode(vin, ain):
            if frame.time is None or frame.time >= seconds:
                continue
            if isinstance(frame, av.VideoFrame):
                f = frame.reformat(width=w, height=h, format="yuv420p")
                f.pts, f.time_base = n_video, 1 / rate
                n_video += 1
                out.mux(vs.encode(f))
            else:
                for r in resampler.resample(frame):
                    r.pts = None
                    fifo.write(r)
                while fifo.samples >= size:
                    a = fifo.read(size)
                    a.pts, a.time_base = n_audio, Fraction(1, arate)
                    n_audio += size
                    out.mux(aus.encode(a))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    return dst


def _flip(data: bytearray, rng, n: int, lo: float, hi: float) -> bytearray:
    out = bytearray(data)
    for i in rng.integers(int(len(data) * lo), int(len(data) * hi), size=n):
        out[i] ^= 0xFF
    return out


def _zero(data: bytearray, at: float, n: int = 8192) -> bytearray:
    out = bytearray(data)
    i = int(len(data) * at)
    out[i:i + n] = bytes(len(out[i:i + n]))
    return out


def _swap(data: bytearray, n: int = 16384) -> bytearray:
    out = bytearray(data)
    i, j = int(len(data) * 0.3), int(len(data) * 0.7)
    n = min(n, j - i)
    out[i:i + n], out[j:j + n] = data[j:j + n], data[i:i + n]
    return out


CORRUPTIONS = {
    "trunc10": lambda d, rng: d[:len(d) // 10],
    "trunc60": lambda d, rng: d[:len(d) * 6 // 10],
    "flip_a": lambda d, rng: _flip(d, rng, 64, 0.1, 1.0),
    "flip_b": lambda d, rng: _flip(d, rng, 64, 0.1, 1.0),
    "flip_head": lambda d, rng: _flip(d, rng, 32, 0.0, 0.01),
    "zero25": lambda d, rng: _zero(d, 0.25),
    "zero50": lambda d, rng: _zero(d, 0.5),
    "swap": lambda d, rng: _swap(d),
    "header": lambda d, rng: bytes(64) + d[64:],
    "garbage": lambda d, rng: d + rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes(),
}


def make_files(folder: Path, seconds: float) -> tuple[list[Path], list[Path]]:
    """(untouched files, damaged files) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    good, bad = [], []
    for s, rel in enumerate(SOURCES):
        for suffix, (vc, ac, ar) in CONTAINERS.items():
            name = f"{Path(rel).stem}{suffix.replace('.', '_')}"
            clean = folder / f"{name}-good{suffix}"
            if not clean.exists():
                transcode(SHARED / rel, clean, vc, ac, ar, seconds)
            good.append(clean)
            data = bytearray(clean.read_bytes())
            for k, (kind, damage) in enumerate(CORRUPTIONS.items()):
                path = folder / f"{name}-{kind}{suffix}"
                path.write_bytes(bytes(damage(data, np.random.default_rng(1000 * s + k))))
                bad.append(path)
    return good, bad


def sync_cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "synclipmae", "sync", *argv]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the files, the records and the logs")
    ap.add_argument("--model", help="checkpoint (default: the shipped real-tiny weights)")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each untouched file (default 3)")
    args = ap.parse_args()
    missing = [rel for rel in SOURCES if not (SHARED / rel).is_file()]
    if missing:
        sys.exit(f"bench_fuzz: the shared clips are not at {SHARED} ({missing[0]} missing)")
    out = Path(args.out)
    model = ["--model", args.model] if args.model else []
    good, bad = make_files(out / "files", args.seconds)
    print(f"{len(good)} untouched files ({len(SOURCES)} clips x {len(CONTAINERS)} containers), {len(bad)} damaged")

    from synclipmae.cli.common import load_checkpoint
    from synclipmae.tasks.sync import sync_file

    net, name = load_checkpoint(args.model, "cpu")
    alone = {str(p): sync_file(p, net, model_name=name) for p in good}  # what `synclipmae sync FILE` runs
    not_ok = [Path(p).name for p, r in alone.items() if r["status"] != "ok"]
    print(f"scored alone: {len(good) - len(not_ok)} of {len(good)} ok" + (f" (not ok: {not_ok})" if not_ok else ""))

    records_path = out / "batch.jsonl"
    records_path.unlink(missing_ok=True)
    cmd = sync_cli(str(out / "files"), "--json", str(records_path), *model)
    print("batch:", " ".join(["synclipmae", *cmd[3:]]))
    started = time.monotonic()
    arrived = []  # (seconds since start, record) as each line lands in the JSON file
    with open(out / "batch.stderr", "w") as err, open(out / "batch.stdout", "w") as so:
        proc = subprocess.Popen(cmd, stdout=so, stderr=err)
        seen = 0
        while True:
            done = proc.poll() is not None
            if records_path.exists():
                lines = records_path.read_text().splitlines()
                complete = lines if done else lines[:-1] if lines and not lines[-1].endswith("}") else lines
                for line in complete[seen:]:
                    arrived.append((time.monotonic() - started, json.loads(line)))
                seen = len(complete)
            if done:
                break
            time.sleep(0.2)
    wall = time.monotonic() - started
    stderr = (out / "batch.stderr").read_text()
    records = [r for _, r in arrived]
    inputs = good + bad
    by_input = {r["input"]: r for r in records}
    reasons = Counter(re.sub(r"\d+(\.\d+)?", "N", (r["error"] or "").split(": ", 1)[-1])
                      for r in records if r["status"] != "ok")
    times = sorted(((t1 - t0, r["input"]) for (t0, _), (t1, r) in zip([(0.0, None)] + arrived[:-1], arrived)),
                   reverse=True)
    same = [p for p in map(str, good) if by_input.get(p, {}).get("status") == "ok" and alone[p]["status"] == "ok"
            and by_input[p]["tracks"][0]["offset_frames"] == alone[p]["tracks"][0]["offset_frames"]]
    print(f"exit code {proc.returncode}, {wall:.0f} s wall")
    print(f"inputs {len(inputs)}, records {len(records)}, records for distinct inputs {len(by_input)}, "
          f"missing {len({str(p) for p in inputs} - set(by_input))}")
    print(f"tracebacks on stderr: {stderr.count('Traceback')}")
    print(f"timeouts (hangs): {sum('timeout:' in (r['error'] or '') for r in records)}, "
          f"memory: {sum('memory:' in (r['error'] or '') for r in records)}, "
          f"crashed: {sum('crashed:' in (r['error'] or '') for r in records)}")
    print(f"ok {sum(r['status'] == 'ok' for r in records)}, error {sum(r['status'] != 'ok' for r in records)}")
    print(f"damaged files ok: {sum(by_input.get(str(p), {}).get('status') == 'ok' for p in bad)} of {len(bad)}")
    print(f"untouched files ok in the batch with the offset they have alone: {len(same)} of {len(good)}")
    print("errors by reason:")
    for reason, n in reasons.most_common():
        print(f"  {n:4d}  {reason}")
    print("slowest files (seconds between records, so a worker restart counts to the file after it):")
    for took, path in times[:5]:
        r = by_input[path]
        print(f"  {took:6.1f} s  {Path(path).name}  {r['status']}  {r['error'] or ''}")
    print(f"summary line: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}")


if __name__ == "__main__":
    main()
