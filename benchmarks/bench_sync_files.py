"""Sync accuracy through the whole file path: SynthTalk mp4 -> decode -> faces -> crops -> tokens.

    python benchmarks/bench_sync_files.py --model CKPT [--clips 30] [--lengths 5,2] [--seed 0]

For each clip length L (seconds) and each of --clips clips: a SynthTalk clip of a TEST identity (never
seen in pretraining) is generated with K = 15 frames of margin on each side of the L-second scoring
window (L s + 1.2 s in all), its audio is shifted by a planted offset o drawn uniformly from [-K, K]
(o > 0: the audio is late), and the clip is written with `data.synth.write_clip(..., mp4=True)` (H.264 +
AAC). `tasks.sync.sync_file` then scores the mp4 as it would any video; the prediction is the offset of
its main track, correct when within +-1 frame of o (DESIGN §6). For comparison the same clips are also
scored on the array path (the original 96x96 frames and 16 kHz audio, no codec, no detection, no crop):
the gap between the two is what the file path costs.

`--model mouth-energy` scores with a hand-made, training-free model instead of a checkpoint (the pixel
spread of the mouth region against the audio's RMS): a check of the file path's timing and signs that
needs no trained model.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint folder, training run folder, or 'mouth-energy'")
    ap.add_argument("--clips", type=int, default=30, help="clips per length (default 30)")
    ap.add_argument("--lengths", default="5,2", help="scoring window lengths in seconds (default 5,2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="keep the mp4 files in this folder (default: a temporary folder)")
    args = ap.parse_args()

    from synclipmae.data.synth import SPLIT_IDENTITIES, make_clip, write_clip
    from synclipmae.models.synclipmae import SyncLipMAE
    from synclipmae.tasks.mouth_energy import MouthEnergyModel
    from synclipmae.tasks.sync import MAX_OFFSET, main_track, score_track, sync_file
    from synclipmae.timing import TIMING
    from synclipmae.weights import latest_checkpoint

    if args.model == "mouth-energy":
        ckpt, model = "mouth-energy (hand-made, no training)", MouthEnergyModel()
    else:
        ckpt = Path(args.model)
        if not (ckpt / "model.safetensors").is_file():
            ckpt = latest_checkpoint(ckpt) or ckpt
        model = SyncLipMAE.from_pretrained(ckpt)
    K, spf = MAX_OFFSET, TIMING.samples_per_frame
    tmp = None if args.keep else tempfile.TemporaryDirectory()
    folder = Path(args.keep or tmp.name)
    results = {}
    started = time.perf_counter()
    for L in [float(x) for x in args.lengths.split(",")]:
        W = TIMING.seconds_to_frames(L)
        N = W + 2 * K                                     # frames in the file: the window plus K each side
        rng = np.random.default_rng([args.seed, W])
        file_ok = array_ok = no_track = 0
        errors = []
        for i in range(args.clips):
            o = int(rng.integers(-K, K + 1))
            clip = make_clip("test", 1000 * W + i, seconds=(N + 2 * K) / TIMING.fps, size=96, seed=args.seed + 20_000,
                             identity_index=i % SPLIT_IDENTITIES["test"])
            # video frames K..K+N-1; audio sample at file time t = original audio at t - o (late by o)
            audio = clip.audio[(K - o) * spf:(K - o + N) * spf]
            shifted = dataclasses.replace(clip, frames=clip.frames[K:K + N], audio=audio,
                                          face_mask=clip.face_mask[K:K + N], mouth_mask=clip.mouth_mask[K:K + N])
            name = f"L{W:03d}_{i:03d}_o{o:+03d}"
            write_clip(shifted, folder, name, mp4=True)
            record = sync_file(folder / f"{name}.mp4", model)
            track = main_track(record) if record["status"] == "ok" else None
            if track is None:
                no_track += 1
            else:
                file_ok += abs(track["offset_frames"] - o) <= 1
                errors.append(track["offset_frames"] - o)
            with torch.no_grad():  # the array path on the same clip
                tokens = model.encode(torch.from_numpy(shifted.frames), torch.from_numpy(audio))
                v, a = model.sync_embeddings(tokens["z_voc"], tokens["a"])
                array_ok += abs(score_track(v, a, K).offset_frames - o) <= 1
        name = f"{L:g}s"
        results[name] = {"file_accuracy": file_ok / args.clips, "array_accuracy": array_ok / args.clips,
                         "no_track": no_track, "clips": args.clips,
                         "mean_abs_error_frames": float(np.mean(np.abs(errors))) if errors else None}
        print(f"{name}: file path {file_ok}/{args.clips} = {file_ok / args.clips:.3f} within +-1 frame "
              f"(array path {array_ok / args.clips:.3f}); no usable track in {no_track}; "
              f"mean |error| {results[name]['mean_abs_error_frames']} frames")
    print(f"checkpoint: {ckpt}; {time.perf_counter() - started:.0f} s")
    print(json.dumps(results))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
