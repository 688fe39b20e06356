"""SynthTalk generation throughput: frames per second of `make_clip` (audio synthesis included).

    OMP_NUM_THREADS=1 python benchmarks/bench_synth.py [--clips 20] [--seconds 4] [--size 96]

Prints frames/s by wall clock and by this process's CPU time (the CPU figure is the one to compare
across machines that are busy with other work), plus where the time goes. One core: the thread
variables default to 1 before numpy loads.
"""
from __future__ import annotations

import argparse
import json
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from synclipmae.data import synth  # noqa: E402
from synclipmae.timing import TIMING  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20, help="clips to generate (default 20)")
    ap.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds (default 4)")
    ap.add_argument("--size", type=int, default=96, help="frame size in pixels (default 96)")
    args = ap.parse_args()

    synth.make_clip("train", 0, seconds=args.seconds, size=args.size)   # warm-up: lazy imports, caches
    T = TIMING.seconds_to_frames(args.seconds)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(args.clips):
        synth.make_clip("train", 1 + i, seconds=args.seconds, size=args.size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    frames = T * args.clips

    # where the time goes, on a few clips (CPU seconds per clip)
    parts = {"speak": 0.0, "ambient": 0.0, "render": 0.0}
    n = min(args.clips, 5)
    for i in range(n):
        ident = synth.get_identity("train", i)
        rng = np.random.default_rng(i)
        t0 = time.process_time()
        voc = synth.speak(ident, T, rng)
        t1 = time.process_time()
        amb = synth.ambient(T, rng)
        t2 = time.process_time()
        synth.render(ident, amb, voc, args.size)
        t3 = time.process_time()
        parts["speak"] += (t1 - t0) / n
        parts["ambient"] += (t2 - t1) / n
        parts["render"] += (t3 - t2) / n

    result = {
        "benchmark": "synthtalk.make_clip", "size": args.size, "seconds": args.seconds,
        "clips": args.clips, "frames": frames,
        "frames_per_s_cpu": round(frames / cpu, 1), "frames_per_s_wall": round(frames / wall, 1),
        "ms_per_clip_cpu": {k: round(v * 1e3, 2) for k, v in parts.items()},
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print(f"SynthTalk make_clip {args.size}x{args.size}, {args.seconds:g} s clips: "
          f"{result['frames_per_s_cpu']:.0f} frames/s (CPU time), "
          f"{result['frames_per_s_wall']:.0f} frames/s (wall)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
