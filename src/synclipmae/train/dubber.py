"""Fine-tuning the dubbing generator (`models.dubber.Dubber`) on SynthTalk train identities.

    finetune_dubber(model, out_dir, minutes=15, seed=0) -> out_dir (a Dubber checkpoint)

Data (deterministic from the seed): `DubConfig.train_clips` SynthTalk train clips (identity A, its
speech X with background noise, its ambient motion), and for each one a driving render of the same
mouth track by another train identity B with its own ambient motion: `render(B, ambient_B, vocal_X)`.
Test identities are never used.

One step: `batch_size` windows of `frames` frames (one segment each). For every frame the target is
the frame itself with the repaint region (the lower-face mask, grown by `mask_dilation` px) hidden;
the condition is the window's audio tokens a_t (audio-driven) or, with probability `video_prob`, the
driving render's z_voc(t) (video-driven); with probability `prev_prob` the window gets a previous
frame (a ground-truth frame 1-`frames` frames before or after it; with probability `self_prev_prob`
that frame as the model itself redraws it from another ground-truth frame further away, so training
sees the artefacts a generated previous frame carries at inference), else the "none" tokens. The
pixel U-Net's reference frame is the ground-truth one (`reference = "segment"`) or the previous frame
as the decoder gets it (`"previous"`). Losses (weights in DubConfig):

    rec    MSE of the output against the frame, inside the repaint region
    l1     L1 of the same
    coarse MSE of the decoder's coarse patch prediction (before the pixel U-Net), inside the region
    sync   InfoNCE over each window's frames between the frozen pretrained model's z_voc of the
           output and the audio tokens of the speech (its `sync_embeddings`; neighbours +-1 excluded)

With `train_encoder` off (default) the encoders are frozen, so the visible-patch encodings, audio
tokens and driving z_voc of the whole bank are computed once at the start (this time counts in the
budget). Wall-clock budget: training stops after `minutes` (data generation excluded); the learning
rate warms up and decays over the budget. It trains through `train.loop.fit` (`DubTraining`: a
module whose forward returns the loss dict). The checkpoint is written into a temporary folder renamed
to `out_dir` at the end (`train.checkpoint.atomic_folder`); `out_dir/metrics.jsonl` holds one line of
losses per `log_every` steps.
"""
from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from synclipmae.data.clips import map_jobs
from synclipmae.data.synth import SPLIT_IDENTITIES, ambient, get_identity, make_clip, render
from synclipmae.losses import frame_contrast
from synclipmae.models.dubber import DubConfig, Dubber, dilate_masks, encode_subset
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.train.checkpoint import atomic_folder
from synclipmae.train.log import MetricLogger
from synclipmae.train.loop import Budget, fit
from synclipmae.train.optim import lr_at

DUB_MIN_LR = 0.02     # default: the schedule's cosine ends at 2% of DubConfig.lr
DUB_GRAD_CLIP = 1.0   # default: gradient norm clip of the fine-tune

@dataclass
class DubBank:
    """Training clips for the generator, with their frozen features.
    frames, driving uint8 [C, Tc, H, W, 3]; masks bool [C, Tc, H, W] (repaint region, dilated);
    audio float32 [C, Tc*640]; features (None until `precompute`): a, drv_voc, z_id, z_amb float [C, Tc, D],
    patches bfloat16 [C, Tc, L, D] (the mouth-hidden encoding)."""
    frames: np.ndarray
    driving: np.ndarray
    masks: np.ndarray
    audio: np.ndarray
    sources: list
    features: dict | None = None

    def __len__(self) -> int:
        return self.frames.shape[0]


def _make_pair(job):
    index, seconds, size, seed, dilation = job
    clip = make_clip("train", index, seconds=seconds, size=size, seed=seed)
    rng = np.random.default_rng([seed, index, 0xD0B])
    n = SPLIT_IDENTITIES["train"]
    other = (clip.identity.index + 1 + int(rng.integers(n - 1))) % n       # a different train identity
    amb = ambient(len(clip.frames), rng, int(rng.integers(5)))
    driving, _, _ = render(get_identity("train", other), amb, clip.vocal, size)
    return clip.frames, driving, dilate_masks(clip.mouth_mask, dilation), clip.audio, f"synthtalk:train/{index:05d}"


def build_bank(cfg: DubConfig, size: int, seed: int, progress: bool = True) -> DubBank:
    """Generate the fine-tuning clips and their driving renders (train identities only)."""
    jobs = [(i, cfg.clip_seconds, size, seed, cfg.mask_dilation) for i in range(cfg.train_clips)]
    made = map_jobs(_make_pair, jobs, 1, progress, desc="SynthTalk dub pairs")
    frames, driving, masks, audio, sources = zip(*made)
    return DubBank(frames=np.stack(frames), driving=np.stack(driving), masks=np.stack(masks),
                   audio=np.stack(audio), sources=list(sources))


@torch.no_grad()
def precompute(dubber: Dubber, bank: DubBank, chunk: int = 50, progress: bool = True) -> None:
    """The frozen encoders' outputs for every frame of the bank (`bank.features`)."""
    C, Tc = bank.frames.shape[:2]
    feats: dict = {k: [] for k in ("a", "drv_voc", "z_id", "z_amb", "patches")}
    bar = tqdm(total=C * Tc, desc="dub features", unit="frame", file=sys.stderr, disable=not progress, leave=False)
    for c in range(C):
        feats["a"].append(dubber.net.encode_audio(torch.from_numpy(bank.audio[c])[None])[0])
        parts: dict = {k: [] for k in ("drv_voc", "z_id", "z_amb", "patches")}
        for t0 in range(0, Tc, chunk):
            fr = torch.from_numpy(bank.frames[c, t0:t0 + chunk])
            hidden = dubber.masked_patches(torch.from_numpy(bank.masks[c, t0:t0 + chunk]))
            vis = dubber.encode_visible(fr, hidden)
            parts["z_id"].append(vis["z_id"])
            parts["z_amb"].append(vis["z_amb"])
            parts["patches"].append(vis["patches"].to(torch.bfloat16))
            parts["drv_voc"].append(dubber.encode_full(torch.from_numpy(bank.driving[c, t0:t0 + chunk]))["z_voc"])
            bar.update(fr.shape[0])
        for k, v in parts.items():
            feats[k].append(torch.cat(v))
    bar.close()
    bank.features = {k: torch.stack(v) for k, v in feats.items()}


def sample_batch(bank: DubBank, cfg: DubConfig, seed: int, step: int) -> dict:
    """The step's windows: a pure function of (seed, step)."""
    rng = np.random.default_rng([seed, step, 0xD0B])
    C, Tc = bank.frames.shape[:2]
    T, B = cfg.frames, cfg.batch_size
    if Tc < T + 1:
        raise ValueError(f"training clips of {Tc} frames are shorter than DubConfig.frames + 1 = {T + 1}")
    clips = rng.choice(C, size=B, replace=B > C)
    starts = rng.integers(0, Tc - T + 1, size=B)
    video = rng.random(B) < cfg.video_prob
    with_prev = rng.random(B) < cfg.prev_prob
    dist = rng.integers(1, T + 1, size=B)
    after = rng.random(B) < 0.5                # the reference comes after the window (a video's first segment)
    prev_t = np.where(after, np.minimum(starts + T - 1 + dist, Tc - 1), np.maximum(starts - dist, 0))
    self_prev = rng.random(B) < cfg.self_prev_prob   # the previous frame is the model's own output for it
    dist2 = rng.integers(1, T + 1, size=B)           # ... generated from a ground-truth frame this much further away
    prev2_t = np.where(after, np.minimum(prev_t + dist2, Tc - 1), np.maximum(prev_t - dist2, 0))
    return {"clips": clips, "starts": starts, "video": video, "with_prev": with_prev, "prev_t": prev_t,
            "self_prev": self_prev & with_prev, "prev2_t": prev2_t,
            "source": [f"{bank.sources[c]}@{s}" for c, s in zip(clips, starts)]}


def _window(x, clips, starts, T):
    return torch.stack([torch.as_tensor(x[c, s:s + T]) for c, s in zip(clips, starts)])   # (B, T, ...)


def dub_losses(dubber: Dubber, bank: DubBank, batch: dict, cfg: DubConfig, sync_model: SyncLipMAE | None,
               with_sync: bool) -> dict:
    """Forward one batch: {"loss", "rec", "l1", "coarse", "sync", "psnr"} (scalars)."""
    f = bank.features
    clips, starts, T = batch["clips"], batch["starts"], cfg.frames
    B = len(clips)
    frames = _window(bank.frames, clips, starts, T).flatten(0, 1)               # (B*T, H, W, 3) uint8
    mask = _window(bank.masks, clips, starts, T).flatten(0, 1)                   # (B*T, H, W)
    vis = {k: _window(f[k], clips, starts, T).flatten(0, 1) for k in ("z_id", "z_amb")}
    vis["patches"] = _window(f["patches"], clips, starts, T).flatten(0, 1).float()
    a = _window(f["a"], clips, starts, T)                                         # (B, T, D)
    drv = _window(f["drv_voc"], clips, starts, T)
    video = torch.from_numpy(batch["video"])[:, None, None]
    c = torch.where(video, drv, a).flatten(0, 1)                                  # (B*T, D)
    z_id = vis["z_id"].view(B, T, -1).mean(1, keepdim=True).expand(-1, T, -1).flatten(0, 1)
    prev_truth = torch.from_numpy(bank.frames[clips, batch["prev_t"]])           # (B, H, W, 3)
    prev_frames = prev_truth
    own = np.flatnonzero(batch["self_prev"])
    if len(own):  # self-conditioning: at inference the previous frame is generated, artefacts included
        with torch.no_grad():
            cl, pt = torch.as_tensor(clips[own]), torch.as_tensor(batch["prev_t"][own])
            ref = torch.from_numpy(bank.frames[clips[own], batch["prev2_t"][own]])
            seen = {"patches": f["patches"][cl, pt].float(), "z_amb": f["z_amb"][cl, pt], "z_id": f["z_id"][cl, pt]}
            cond = torch.where(torch.from_numpy(batch["video"][own])[:, None], f["drv_voc"][cl, pt], f["a"][cl, pt])
            gen = dubber.generate(prev_frames[own], torch.from_numpy(bank.masks[clips[own], batch["prev_t"][own]]),
                                  cond, z_id=seen["z_id"], prev_mem=dubber.prev_memory(ref, len(own)), visible=seen,
                                  reference=ref)["image"]
        prev_frames = prev_frames.clone()
        prev_frames[torch.as_tensor(own)] = (gen * 255).round().clamp(0, 255).to(torch.uint8)
    with torch.set_grad_enabled(cfg.train_encoder and torch.is_grad_enabled()):
        mem = dubber.prev_memory(prev_frames, B)                                  # (B, 3+L, Dd)
    none = dubber.prev_memory(None, B)
    mem = torch.where(torch.from_numpy(batch["with_prev"])[:, None, None], mem, none)
    mem = mem[:, None].expand(-1, T, -1, -1).flatten(0, 1)                        # (B*T, 3+L, Dd)
    hidden_vis = {"patches": vis["patches"], "z_amb": vis["z_amb"], "z_id": vis["z_id"]}
    # the pixel reference: the ground-truth frame 1-T frames away ("segment": a source frame at inference), or
    # the previous frame as the decoder gets it ("previous": maybe self-generated)
    reference = prev_truth if cfg.reference == "segment" else prev_frames
    reference = reference[:, None].expand(-1, T, -1, -1, -1).flatten(0, 1)         # (B*T, H, W, 3)
    out = dubber.generate(frames, mask, c, z_id=z_id, prev_mem=mem, visible=hidden_vis, reference=reference)
    target = frames.float() / 255.0
    m = mask[..., None].float()
    n = (m.sum() * 3).clamp_min(1.0)
    rec = ((out["image"] - target) ** 2 * m).sum() / n
    l1 = ((out["image"] - target).abs() * m).sum() / n
    coarse = ((out["coarse"] - target) ** 2 * m).sum() / n
    loss = cfg.w_rec * rec + cfg.w_l1 * l1 + cfg.w_coarse * coarse
    result = {"rec": rec.detach(), "l1": l1.detach(), "coarse": coarse.detach(),
              "psnr": (10 * torch.log10(1.0 / rec.detach().clamp_min(1e-10)))}
    if with_sync and cfg.w_sync > 0:
        judge = sync_model if sync_model is not None else dubber.net
        n = T  # the batch's first clip
        ids, valid = dubber.window(out["hidden"][:n])                             # the judge sees the lower face
        keep = torch.zeros_like(out["hidden"][:n]).scatter(1, ids, valid)
        z_voc = encode_subset(judge, out["image"][:n], keep)["z_voc"].view(1, T, -1)
        v, aa = judge.sync_embeddings(z_voc, a[:1])
        frames_ = torch.arange(T, device=v.device)[None]                          # (1, T): each frame's own
        sync = frame_contrast(v, aa, frames_, 1, 1.0 / judge.logit_scale.exp().detach())
        loss = loss + cfg.w_sync * sync
        result["sync"] = sync.detach()
    result["loss"] = loss
    return result


class DubTraining(nn.Module):
    """The fine-tune as a module for `train.loop.fit`: forward(batch) -> `dub_losses` of the batch's
    windows ({"loss", "rec", "l1", "coarse", "psnr", "sync"}). The frozen sync judge is held outside
    the module tree, so `train()` never switches it out of eval mode."""

    def __init__(self, dubber: Dubber, bank: DubBank, cfg: DubConfig, sync_model: SyncLipMAE | None):
        super().__init__()
        self.dubber, self.bank, self.cfg = dubber, bank, cfg
        self._judge = (sync_model,)

    def forward(self, batch: dict) -> dict:
        return dub_losses(self.dubber, self.bank, batch, self.cfg, self._judge[0], with_sync=batch["with_sync"])


def finetune_dubber(model: SyncLipMAE, out_dir, minutes: float | None = None, seed: int = 0, log=print,
                    cfg: DubConfig | None = None, progress: bool = True, bank: DubBank | None = None,
                    max_steps: int | None = None, base_model: str | None = None) -> Path:
    """Fine-tune a Dubber initialised from the pretrained `model` (not modified) on SynthTalk train
    identities for `minutes` of wall-clock (default cfg.minutes) and write it to `out_dir` (a Dubber
    checkpoint, written atomically). `max_steps` also stops it (tests). Returns out_dir."""
    cfg = cfg or DubConfig()
    if minutes is not None:
        cfg = DubConfig(**{**cfg.__dict__, "minutes": float(minutes)})
    if cfg.minutes <= 0 and not max_steps:
        raise ValueError("minutes must be positive")
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    dubber = Dubber.from_synclipmae(model, cfg)
    sync_model = None
    if cfg.train_encoder:  # the sync judge must stay the pretrained model
        sync_model = copy.deepcopy(model).eval().requires_grad_(False)
    size = dubber.img_size
    started = time.perf_counter()
    if bank is None:
        log(f"dub fine-tuning: generating {cfg.train_clips} SynthTalk train clips + driving renders")
        bank = build_bank(cfg, size, seed, progress)
    with atomic_folder(out_dir) as tmp:
        logger = MetricLogger(tmp, tensorboard=False)
        t0 = time.perf_counter()
        data_s = t0 - started
        dubber.eval()
        if bank.features is None:
            precompute(dubber, bank, progress=progress)           # the frozen features: this time counts in the budget
        params = [p for p in dubber.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
        first = {}

        def sample(step: int) -> dict:
            return {**sample_batch(bank, cfg, seed, step), "with_sync": step % max(cfg.sync_every, 1) == 0}

        def on_log(step: int, metrics: dict) -> None:
            first.update(first or {k: v for k, v in metrics.items() if k not in ("lr", "grad_norm", "elapsed")})

        budget = Budget(steps=max_steps or 0, seconds=cfg.minutes * 60.0)
        step, elapsed, result = fit(DubTraining(dubber, bank, cfg, sync_model), opt, sample, budget,
                                    lambda p: lr_at(p, cfg.lr, cfg.warmup, DUB_MIN_LR * cfg.lr), DUB_GRAD_CLIP,
                                    elapsed=time.perf_counter() - t0, log_every=cfg.log_every, logger=logger,
                                    on_log=on_log, last_good=False,
                                    bar={"desc": "dub fine-tune", "disable": not progress})
        logger.close()
        dubber.eval()
        last = {k: float(v.detach()) for k, v in result.items()} or None
        meta = {"base_model": base_model, "seed": seed, "steps": step, "minutes": cfg.minutes,
                "train_seconds": round(time.perf_counter() - t0, 1), "data_seconds": round(data_s, 1),
                "first": first or None, "last": last, "train_clips": len(bank)}
        dubber.save_pretrained(tmp, meta=meta)
    log(f"dub fine-tuning: {step} steps in {meta['train_seconds']:.0f} s; last {json.dumps(last)}")
    return out_dir


__all__ = ["finetune_dubber", "build_bank", "precompute", "DubBank", "DubTraining", "dub_losses", "sample_batch"]
