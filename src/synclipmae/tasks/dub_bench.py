"""`synclipmae bench dub`: audio- and video-driven dubbing on SynthTalk test identities (DESIGN §6
"Dubbing"), against the exact counterfactual ground truth.

Per test case k (identity A = test identity k mod 20, never seen in pretraining or fine-tuning):

    X     = make_clip("test", k): A speaking, with ambient motion amb_X          (the video to dub)
    Y     = speak(A, T, fresh rng): new speech in A's voice                      (the new soundtrack)
    truth = render(A, amb_X, Y): A with X's ambient motion and Y's mouth         (counterfactual render)
    audio-driven  = dub_crops(X frames, audio = Y's audio)   (`dub_batch`: all cases at once)
    video-driven  = dub_crops(X frames, driving = render(B, amb_Z, Y)): another test identity B, its
                    own ambient motion, the same mouth track
    copy-source   = X's frames unchanged (the floor: what doing nothing scores)

Numbers (`dub.json`), per method, means over the cases:
    mouth_psnr           dB (peak 255), higher = closer to the truth: 10 log10(255^2 / MSE) with the
                         MSE pooled over every mouth-region pixel and channel of the clip's frames
                         (pooling keeps frames where both mouths are closed, MSE 0, finite)
    mouth_ssim           SSIM (gaussian window 11 px, sigma 1.5, on 0-255 RGB, averaged over the
                         channels) averaged over the mouth-region pixels, -1..1, higher = closer
    sync_within_1_frame  fraction of clips whose written mp4 (with Y's audio) `sync_file` scores at
                         offset -1, 0 or +1 frames (main track); a file with no scored track counts
                         as out of sync
    sync_confidence      mean `sync_file` confidence (median_k d_k - min_k d_k; higher = a clearer
                         minimum; a file with no scored track counts 0)
    identity_cosine      cosine of the output's mean z_id (the pretrained encoder, every 4th frame) to the
                         source X's mean z_id; 1 = the same identity (z_id reads the patches outside the
                         lower face, so this sees what the edit changes around the mouth region)
The mouth region is `render`'s mouth_mask of the truth (the lower face below the nose inside the
face: every pixel the vocal track can change), not dilated. The generator repaints that mask grown by
DubConfig.mask_dilation px. "ground-truth" holds the sync confidence of the truth written and scored
the same way (what a perfect dub scores).
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from synclipmae.config import ConfigError
from synclipmae.data.synth import SPLIT_IDENTITIES, ambient, get_identity, make_clip, render, speak
from synclipmae.media.write import write_video
from synclipmae.models.dubber import Dubber, dilate_masks, is_dubber_checkpoint
from synclipmae.models.dubbing import dub_batch
from synclipmae.tasks.sync import main_track, sync_file
from synclipmae.timing import TIMING
from synclipmae.train.dubber import finetune_dubber

METHODS = ("audio-driven", "video-driven", "copy-source")
CLIPS = 20            # default: test cases (one per test identity)
SECONDS = 5.0         # default: seconds per case (sync scores frames with audio 15 frames either side)
FINETUNE_MINUTES = 15.0  # default: fine-tuning budget when the model is not a dubber checkpoint yet
EXAMPLES = 1          # default: cases whose mp4s are kept in DIR/examples


@dataclass
class DubBenchSettings:
    """`bench_dub`'s settings, for key=value overrides on the command line."""
    clips: int = CLIPS
    seconds: float = SECONDS
    finetune_minutes: float = FINETUNE_MINUTES
    examples: int = EXAMPLES

    def validate(self) -> None:
        if self.clips < 1 or self.seconds <= 0 or self.finetune_minutes < 0 or self.examples < 0:
            raise ConfigError("bench dub needs clips >= 1, seconds > 0, finetune_minutes >= 0 and examples >= 0")


def gaussian_ssim_map(x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5) -> np.ndarray:
    """SSIM map of two image stacks uint8 [T, H, W, 3] -> float [T, H, W] (mean over channels);
    gaussian window, reflect padding, constants (0.01 * 255)^2 and (0.03 * 255)^2 (Wang et al. 2004)."""
    a = torch.from_numpy(np.asarray(x)).double().permute(0, 3, 1, 2)          # (T, 3, H, W)
    b = torch.from_numpy(np.asarray(y)).double().permute(0, 3, 1, 2)
    g = torch.exp(-((torch.arange(window, dtype=torch.float64) - window // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)              # (3, 1, w, w)
    pad = window // 2

    def blur(t):
        return F.conv2d(F.pad(t, (pad,) * 4, mode="reflect"), k, groups=3)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return s.mean(1).numpy()


def mouth_scores(out: np.ndarray, truth: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """(PSNR dB with the MSE pooled over the region's pixels, mean SSIM over the region) of one clip."""
    err = (out.astype(np.float64) - truth.astype(np.float64)) ** 2             # (T, H, W, 3)
    mse = float(err[region].mean()) if region.any() else 0.0
    psnr = 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))
    ssim = float(gaussian_ssim_map(out, truth)[region].mean()) if region.any() else 1.0
    return psnr, ssim


@torch.no_grad()
def mean_z_id(model, frames: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> the mean z_id float [D] (z_id only: the motion-view pass is skipped)."""
    return model.encode(torch.from_numpy(np.ascontiguousarray(frames)), None, names=("z_id",))["z_id"].mean(0)


def make_case(k: int, seconds: float, size: int, seed: int) -> dict:
    """Test case k: source X, new speech Y, the truth, the driving render (see the module docstring),
    and what the renderer needs to redraw the truth (face, ambient track, Y's mouth track)."""
    n = SPLIT_IDENTITIES["test"]
    A = k % n
    src = make_clip("test", k, seconds=seconds, size=size, seed=seed + 20_000, identity_index=A)
    T = len(src.frames)
    rng = np.random.default_rng([seed, k, 0xD0B5])
    new = speak(src.identity, T, rng, src.ambient.emotion)
    truth, _, truth_mouth = render(src.identity, src.ambient, new, size)
    other = (A + 1 + int(rng.integers(n - 1))) % n
    amb_z = ambient(T, rng, int(rng.integers(5)))
    driving, _, _ = render(get_identity("test", other), amb_z, new, size)
    return {"source": src.frames, "source_mouth": src.mouth_mask, "audio": new.audio, "truth": truth,
            "truth_mouth": truth_mouth, "driving": driving, "identity": A, "driving_identity": other,
            "text": new.text, "face": src.identity, "ambient": src.ambient, "new_mouth": new.mouth}


def _sync(path: Path, model) -> tuple[int | None, float]:
    record = sync_file(path, model)
    track = main_track(record) if record["status"] == "ok" else None
    return (None, 0.0) if track is None else (int(track["offset_frames"]), float(track["confidence"]))


def bench_dub(model, model_dir, out_dir, seed: int = 0, log=print, clips: int = CLIPS, seconds: float = SECONDS,
              finetune_minutes: float = FINETUNE_MINUTES, examples: int = EXAMPLES, dub_cfg=None) -> Path:
    """Write DIR/dub.json (see the module docstring) and return its path. `model` is the pretrained
    SyncLipMAE (it scores sync and identity); `model_dir` its checkpoint, or a Dubber checkpoint. When
    `model_dir` is not a Dubber checkpoint, a dubber is fine-tuned into DIR/dubber for
    `finetune_minutes` first (or the one already there is reused)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if is_dubber_checkpoint(model_dir):
        dub_dir = Path(model_dir)
    else:
        dub_dir = out_dir / "dubber"
        if is_dubber_checkpoint(dub_dir):
            log(f"bench dub: reusing the dubber in {dub_dir}")
        else:
            log(f"bench dub: fine-tuning a dubber for {finetune_minutes:g} min into {dub_dir}")
            finetune_dubber(model, dub_dir, minutes=finetune_minutes, seed=seed, log=log, cfg=dub_cfg,
                            base_model=str(model_dir))
    dubber = Dubber.from_pretrained(dub_dir)
    model.eval()
    size = dubber.img_size
    if model.cfg.model.img_size != size:
        raise ValueError(f"the scoring model works at {model.cfg.model.img_size} px but the dubber at {size} px")
    eval_started = time.perf_counter()
    rows = {m: [] for m in (*METHODS, "ground-truth")}
    examples_dir = out_dir / "examples"
    log(f"bench dub: {clips} SynthTalk test cases of {seconds:g} s")
    cases = [make_case(k, seconds, size, seed) for k in range(clips)]
    source = np.stack([c["source"] for c in cases])                             # (C, T, H, W, 3)
    repaint = np.stack([dilate_masks(c["source_mouth"], dubber.cfg.mask_dilation) for c in cases])
    outputs = {"audio-driven": dub_batch(dubber, source, repaint, audio=np.stack([c["audio"] for c in cases])),
               "video-driven": dub_batch(dubber, source, repaint, driving=np.stack([c["driving"] for c in cases])),
               "copy-source": source}
    log(f"bench dub: dubbed {clips} cases both ways in {time.perf_counter() - eval_started:.0f} s; scoring "
        f"{4 * clips} mp4s with sync_file")
    tmp = Path(tempfile.mkdtemp(prefix=".dub_bench_", dir=out_dir))
    try:
        for k in tqdm(range(clips), desc="bench dub: sync", unit="clip", disable=None):
            case = cases[k]
            src_id = mean_z_id(model, case["source"][::4])
            for name, frames in {**{m: o[k] for m, o in outputs.items()}, "ground-truth": case["truth"]}.items():
                keep = k < examples
                path = write_video((examples_dir if keep else tmp) / f"case{k:03d}_{name}.mp4", frames, TIMING.fps,
                                   case["audio"], TIMING.sample_rate)
                offset, confidence = _sync(path, model)
                row = {"offset": offset, "confidence": confidence}
                if name != "ground-truth":
                    row["psnr"], row["ssim"] = mouth_scores(frames, case["truth"], case["truth_mouth"])
                    row["identity_cosine"] = float(F.cosine_similarity(mean_z_id(model, frames[::4]), src_id, dim=0))
                rows[name].append(row)
                if not keep:
                    path.unlink(missing_ok=True)
            if (k + 1) % 5 == 0 or k + 1 == clips:
                log(f"bench dub: scored {k + 1}/{clips} cases ({time.perf_counter() - eval_started:.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def summary(items: list, full: bool) -> dict:
        s = {"sync_within_1_frame": float(np.mean([r["offset"] is not None and abs(r["offset"]) <= 1 for r in items])),
             "sync_confidence": float(np.mean([r["confidence"] for r in items]))}
        if full:
            s = {"mouth_psnr": float(np.mean([r["psnr"] for r in items])),
                 "mouth_ssim": float(np.mean([r["ssim"] for r in items])), **s,
                 "identity_cosine": float(np.mean([r["identity_cosine"] for r in items]))}
        return {k: round(v, 4) for k, v in s.items()}

    meta = getattr(dubber, "meta", {}) or {}
    result = {m: summary(rows[m], True) for m in METHODS}
    result["ground-truth"] = {"sync_confidence": summary(rows["ground-truth"], False)["sync_confidence"],
                              "sync_within_1_frame": summary(rows["ground-truth"], False)["sync_within_1_frame"]}
    result["settings"] = {
        "seed": seed, "clips": clips, "seconds": seconds, "size": size, "test_identities": sorted({k % 20 for k in range(clips)}),
        "dubber_checkpoint": str(dub_dir), "scoring_model": str(model_dir) if not is_dubber_checkpoint(model_dir) else
        meta.get("base_model"), "finetune_minutes": meta.get("minutes"), "finetune_steps": meta.get("steps"),
        "mask_dilation_px": dubber.cfg.mask_dilation, "segment_frames": dubber.cfg.segment,
        "mouth_region": "render mouth_mask of the ground truth (not dilated)",
        "eval_seconds": round(time.perf_counter() - eval_started, 1),
        "total_seconds": round(time.perf_counter() - started, 1)}
    result["per_clip"] = rows
    path = out_dir / "dub.json"
    tmp_json = path.with_name(".dub.json.tmp")
    tmp_json.write_text(json.dumps(result, indent=1) + "\n")
    tmp_json.replace(path)
    for m in (*METHODS, "ground-truth"):
        log(f"bench dub: {m}: {json.dumps(result[m])}")
    return path


__all__ = ["bench_dub", "gaussian_ssim_map", "mouth_scores", "make_case"]
