"""How far could a dubber go on `bench dub`'s mouth PSNR with what a checkpoint's tokens know?

    python benchmarks/bench_dub_ceiling.py --model CKPT [--train-clips 200] [--cases 6] [--seed 0]

This is an analysis of the bench, not a dubber. It separates the two things a dubbed mouth needs:
knowing the new mouth (the condition) and drawing it (the generator).

1. **What the condition knows.** A ridge probe reads SynthTalk's five mouth channels (opening, width,
   rounding, teeth, tongue) from the frozen tokens of frames t-2..t+2. It reads a_t (from clean speech:
   audio-driven) and z_voc (from the video frames: video-driven). It is trained on `--train-clips` train
   clips of 4 s and scored per channel as R^2 on 40 test clips.
2. **A perfect drawer with that knowledge.** On `bench dub`'s first `--cases` test cases (the same
   sources, new speech and ground truth, seed 0), SynthTalk's own renderer draws the mouth. It knows the
   true head pose, face and lip colours, so the only error left is the mouth track. Each channel gets
   the error a predictor with the probe's R^2 has: the estimate is mu + R^2 (m - mu) + noise, with error
   variance (1 - R^2) var, uncorrelated with the estimate. The renderer draws that estimate
   ("point estimate"), and the mean of 8 renders drawn from the Gaussian posterior around it (the
   MSE-optimal drawing under that model: "posterior mean"). Both are scored with bench dub's
   `mouth_scores`. The Gaussian, independent-channel error model is an approximation: read the figures
   as where a perfect generator would land, within about a dB.

It takes about 16 minutes on 2 CPU cores (most of it rendering: 9 renders of each case per line).
Copy-source (the video left unchanged) is printed for scale. No figure here is a dubber's score. The
renderer is the ground truth's, so only this analysis may use it.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

CONTEXT = 2        # frames either side the probe reads
RENDERS = 8        # posterior samples averaged for the "posterior mean" drawing


def context_features(seqs: list, w: int) -> np.ndarray:
    """list of float [T, D] -> float [sum T, (2w+1) D]: each frame with its w neighbours either side (edges repeated)."""
    out = []
    for x in seqs:
        T = len(x)
        idx = np.clip(np.arange(T)[:, None] + np.arange(-w, w + 1)[None], 0, T - 1)
        out.append(x[idx].reshape(T, -1))
    return np.concatenate(out)


@torch.no_grad()
def tokens(model, split: str, n: int, seed: int, size: int) -> tuple[list, list, list]:
    """(a_t, z_voc, mouth track) per clip, each a list of float [T, .] arrays."""
    from synclipmae.data.synth import make_clip

    a, v, y = [], [], []
    for i in range(n):
        clip = make_clip(split, i, seconds=4.0, size=size, seed=seed)
        a.append(model.encode_audio(torch.from_numpy(clip.vocal.audio)[None])[0].numpy())
        v.append(model.encode(torch.from_numpy(clip.frames), None, names=("z_voc",))["z_voc"].reshape(len(clip.frames), -1).numpy())
        y.append(clip.vocal.mouth)
    return a, v, y


def probe_r2(train: tuple, test: tuple, which: int) -> np.ndarray:
    """float [5]: test R^2 per mouth channel of a ridge probe on token `which` (0 = a_t, 1 = z_voc)."""
    from synclipmae.tasks.probe import r2_score, ridge_predict

    y_tr, y_te = np.concatenate(train[2]), np.concatenate(test[2])
    p = ridge_predict(context_features(train[which], CONTEXT), y_tr, context_features(test[which], CONTEXT))
    return np.array([r2_score(y_te[:, j], p[:, j]) for j in range(y_te.shape[1])])


def perfect_drawer(cases: list, r2: np.ndarray, seed: int) -> tuple[float, float]:
    """(point-estimate PSNR, posterior-mean PSNR), dB averaged over cases, of the renderer drawing a
    mouth track known only to R^2 `r2` per channel (the module docstring has the model)."""
    from synclipmae.data.synth import render
    from synclipmae.tasks.dub_bench import mouth_scores

    tracks = np.concatenate([c["new_mouth"] for c in cases])
    mu, sd = tracks.mean(0), tracks.std(0)
    r2 = np.clip(r2, 0.0, 1.0)
    point, posterior = [], []
    for k, c in enumerate(cases):
        rng = np.random.default_rng([seed, k])
        m = c["new_mouth"]
        est = mu + r2 * (m - mu) + np.sqrt(r2 * (1 - r2)) * sd * rng.normal(size=m.shape)

        def draw(track):
            return render(c["face"], c["ambient"], np.clip(track, 0, 1).astype(np.float32), c["truth"].shape[1])[0]

        point.append(mouth_scores(draw(est), c["truth"], c["truth_mouth"])[0])
        mean = np.mean([draw(est + np.sqrt(1 - r2) * sd * rng.normal(size=m.shape)).astype(np.float64)
                        for _ in range(RENDERS)], axis=0)
        posterior.append(mouth_scores(np.round(mean).astype(np.uint8), c["truth"], c["truth_mouth"])[0])
    return float(np.mean(point)), float(np.mean(posterior))


def bench_cases(n: int, seed: int, size: int) -> list:
    """bench dub's first n cases (`make_case`), with copy-source's PSNR."""
    from synclipmae.tasks.dub_bench import make_case, mouth_scores

    cases = [make_case(k, 5.0, size, seed) for k in range(n)]
    for c in cases:
        c["copy_psnr"] = mouth_scores(c["source"], c["truth"], c["truth_mouth"])[0]
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a SyncLipMAE checkpoint folder")
    ap.add_argument("--train-clips", type=int, default=200, help="train clips for the probe (default 200)")
    ap.add_argument("--cases", type=int, default=6, help="bench dub cases to draw (default 6)")
    ap.add_argument("--seed", type=int, default=0, help="bench dub's seed (default 0)")
    args = ap.parse_args()

    from synclipmae.models.synclipmae import SyncLipMAE

    started = time.perf_counter()
    model = SyncLipMAE.from_pretrained(args.model).eval()
    size = model.cfg.model.img_size
    train, test = tokens(model, "train", args.train_clips, 1, size), tokens(model, "test", 40, 2, size)
    cases = bench_cases(args.cases, args.seed, size)
    print(f"copy-source mouth PSNR on cases 0-{args.cases - 1}: {np.mean([c['copy_psnr'] for c in cases]):.2f} dB")
    print("channels: opening width rounding teeth tongue")
    for name, which in (("a_t (audio-driven)", 0), ("z_voc (video-driven)", 1)):
        r2 = probe_r2(train, test, which)
        point, posterior = perfect_drawer(cases, r2, args.seed)
        print(f"{name}: probe R^2 {np.round(r2, 3).tolist()}; a perfect drawer: point estimate {point:.2f} dB, "
              f"posterior mean {posterior:.2f} dB")
    for level in (0.7, 0.8, 0.9):
        point, posterior = perfect_drawer(cases, np.full(5, level), args.seed)
        print(f"R^2 {level} on every channel: point estimate {point:.2f} dB, posterior mean {posterior:.2f} dB")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
