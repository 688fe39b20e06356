"""`prepare` throughput (frames/s written into shards) and `ShardSource` read throughput (clips/s).

    python benchmarks/bench_prepare.py [--inputs FILE ...] [--workers 1] [--size 96] [--steps 50]

Default inputs: the real clips with a face and a soundtrack in ../shared/data/real (about 100 s of
video from 240p to 1080x1920 portrait, H.264 and HEVC, 15 to 30 fps). Prints prepare's frames per
second of wall clock (frames on the 25 fps timeline that went into clips, and all decoded frames),
then the loader's clips/s for batches of 8 windows of 16 frames, read in-process (workers=0) and by
one data-loader worker. Everything is written to a temporary folder and deleted.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
DEFAULT = ["latentsync_demo1_video.mp4", "latentsync_demo2_video.mp4", "latentsync_demo3_video.mp4",
           "marlin_video01.mp4", "marlin_video02.mp4", "marlin_video03.mp4", "videoretalking_face1.mp4",
           "videoretalking_face2.mp4", "videoretalking_face3.mp4", "videoretalking_face4.mp4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", nargs="*", default=[str(REAL / f) for f in DEFAULT])
    ap.add_argument("--workers", type=int, default=1, help="prepare worker processes (default 1)")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--clip-frames", type=int, default=50)
    ap.add_argument("--steps", type=int, default=50, help="loader batches to time (default 50)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=16, help="T, frames per training window (default 16)")
    args = ap.parse_args()

    from synclipmae.data.shards import ShardSource, prepare
    from synclipmae.media.decode import probe
    from synclipmae.timing import TIMING

    seconds_in = sum(float(probe(p)["duration_s"] or 0) for p in args.inputs)
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        index = prepare(args.inputs, tmp, size=args.size, clip_frames=args.clip_frames, workers=args.workers,
                        files_per_shard=2, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        frames = index["clips"] * args.clip_frames
        decoded = int(round(seconds_in * TIMING.fps))
        mb = sum(p.stat().st_size for p in Path(tmp).glob("*.tar")) / 2**20
        print(f"prepare: {len(args.inputs)} files, {seconds_in:.1f} s of video -> {index['clips']} clips "
              f"({frames} frames, {mb:.0f} MB) in {len(index['shards'])} shards; {len(index['failures'])} failures")
        print(f"  {wall:.1f} s wall ({cpu:.1f} s CPU in the main process; workers={args.workers}): "
              f"{frames / wall:.0f} clip frames/s, {decoded / wall:.0f} decoded frames/s at {TIMING.fps} fps, "
              f"{seconds_in / wall:.2f}x real time")
        for f in index["failures"]:
            print(f"  failure: {f['error']}")

        loader = {}
        for workers in (0, 1):
            src = ShardSource.from_spec(tmp, workers=workers)
            src.sample(0, 0, args.batch, args.frames)  # warm-up: fills the shuffle buffer, starts workers
            t = time.perf_counter()
            for step in range(1, args.steps + 1):
                src.sample(0, step, args.batch, args.frames)
            dt = time.perf_counter() - t
            src.close()
            loader[workers] = args.steps * args.batch / dt
            print(f"ShardSource workers={workers}: {loader[workers]:.0f} clips/s "
                  f"(batches of {args.batch} x {args.frames} frames at {args.size} px; corrupt {src.corrupt})")
    print(json.dumps({"prepare_clip_frames_per_s": round(frames / wall, 1),
                      "prepare_decoded_frames_per_s": round(decoded / wall, 1),
                      "prepare_realtime_x": round(seconds_in / wall, 3), "workers": args.workers,
                      "loader_clips_per_s": {str(k): round(v, 1) for k, v in loader.items()}}))


if __name__ == "__main__":
    main()
