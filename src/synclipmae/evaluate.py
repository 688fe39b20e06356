"""Evaluate any checkpoint on SynthTalk test identities (never seen in pretraining).

- sync accuracy (DESIGN §6): windows of 1, 2 and 5 s inside longer test clips; the audio stream is
  available K = 15 frames around the window; a planted offset o uniform in [-K, K] delays the audio
  by o frames (o > 0: audio late); correct when the predicted offset is within +-1 frame of o.
- disentanglement: ridge probes of each token for each factor, trained on some test clips and
  scored on other clips: identity (accuracy; train on one clip of each identity, test on another),
  mouth opening (R^2), blink (AUC of eyes-closed), head pose yaw/pitch/roll (mean R^2), emotion
  (accuracy; trained on the clips of half of the identities, scored on the other half's).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from synclipmae.data.synth import make_clip
from synclipmae.tasks.probe import auc, classify, r2_score, ridge_predict
from synclipmae.tasks.sync import MAX_OFFSET, distance_curve, score_curve
from synclipmae.timing import TIMING

WINDOWS = {"1s": 1.0, "2s": 2.0, "5s": 5.0}


@dataclass
class EvalConfig:
    identities: int = 16          # default: test identities used
    clips_per_identity: int = 2   # default: clips per identity (the identity probe trains on one, tests on another)
    seconds: float = 8.0          # default: test clip length (a 5 s window needs 5 s + 4K frames)
    trials: dict = field(default_factory=lambda: {"1s": 8, "2s": 6, "5s": 4})  # default: windows per clip
    max_offset: int = MAX_OFFSET
    seed: int = 0


@dataclass
class TestSet:
    frames: np.ndarray   # uint8 [C, Tc, H, W, 3]
    audio: np.ndarray    # float32 [C, Tc*640]
    labels: list         # per clip: dict(identity, emotion, mouth [Tc], eye_open [Tc], pose [Tc, 3])


def make_test_set(cfg: EvalConfig, size: int, progress: bool = False) -> TestSet:
    frames, audio, labels = [], [], []
    jobs = [(i, c) for c in range(cfg.clips_per_identity) for i in range(cfg.identities)]
    for n, (identity, _) in enumerate(tqdm(jobs, desc="SynthTalk test", disable=not progress, leave=False)):
        clip = make_clip("test", n, seconds=cfg.seconds, size=size, seed=cfg.seed + 10_000, identity_index=identity)
        frames.append(clip.frames)
        audio.append(clip.audio)
        labels.append({"identity": identity, "emotion": int(clip.ambient.emotion),
                       "mouth": clip.vocal.mouth[:, 0], "eye_open": clip.ambient.eye_open,
                       "pose": clip.ambient.pose[:, :3]})
    return TestSet(np.stack(frames), np.stack(audio), labels)


@torch.no_grad()
def encode_test_set(model, test: TestSet, chunk: int = 200) -> dict:
    """Visual tokens of every test frame: {name: float [C, Tc, D]} (no audio)."""
    out = [model.encode(torch.from_numpy(f), None, chunk=chunk) for f in test.frames]
    return {k: torch.stack([o[k] for o in out]) for k in out[0]}


@torch.no_grad()
def sync_accuracy(model, test: TestSet, tokens: dict, cfg: EvalConfig) -> dict:
    """{"1s"|"2s"|"5s": accuracy}, plus "curves": one example distance curve per window length."""
    spf, K = TIMING.samples_per_frame, cfg.max_offset
    rng = np.random.default_rng([cfg.seed, 7])
    C, Tc = test.frames.shape[:2]
    results, curves = {}, {}
    for name, seconds in WINDOWS.items():
        W = TIMING.seconds_to_frames(seconds)
        if W + 4 * K > Tc:
            raise ValueError(f"test clips of {Tc} frames are too short for {name} windows")
        correct = total = 0
        for c in range(C):
            n = cfg.trials[name]
            starts = rng.integers(2 * K, Tc - W - 2 * K + 1, size=n)
            offsets = rng.integers(-K, K + 1, size=n)
            segments = np.stack([test.audio[c, (s - K - o) * spf:(s + W + K - o) * spf] for s, o in zip(starts, offsets)])
            a = model.encode_audio(torch.from_numpy(segments))                     # (n, W + 2K, D)
            for s, o, a_i in zip(starts, offsets, a):
                v, a_e = model.sync_embeddings(tokens["z_voc"][c, s:s + W], a_i)
                d = distance_curve(v, a_e, K)
                score = score_curve(d, K)
                correct += abs(score.offset_frames - int(o)) <= 1
                total += 1
                if name not in curves:
                    curves[name] = {"planted": int(o), "predicted": score.offset_frames, "distances": score.distances}
        results[name] = correct / total
    return {"accuracy": results, "curves": curves}


def disentanglement(tokens: dict, test: TestSet) -> dict:
    """{token: {"identity", "mouth_r2", "blink_auc", "pose_r2", "emotion"}} on held-out test clips."""
    C, Tc = next(iter(tokens.values())).shape[:2]
    ids = np.array([lab["identity"] for lab in test.labels])
    first = np.array([i == np.flatnonzero(ids == ids[i])[0] for i in range(C)])  # one clip of each identity
    seen = ids < (ids.max() + 1) // 2                                              # half of the identities
    per_frame = lambda arr: np.concatenate([np.asarray(x) for x in arr])           # noqa: E731
    mouth = per_frame([lab["mouth"] for lab in test.labels])
    closed = per_frame([lab["eye_open"] for lab in test.labels]) < 0.5
    pose = per_frame([lab["pose"] for lab in test.labels])
    emotion = np.repeat([lab["emotion"] for lab in test.labels], Tc)
    identity = np.repeat(ids, Tc)
    rows = lambda clips: np.repeat(clips, Tc)                                      # noqa: E731
    out = {}
    for name in ("z_id", "z_voc", "z_amb"):
        if name not in tokens:
            continue
        x = tokens[name].reshape(C * Tc, -1).float().numpy()
        tr, te = rows(first), rows(~first)  # probes train on one clip of each identity, test on the others
        # emotion is fixed per clip, so a probe trained on other clips of the same identities would learn
        # which emotion each identity had there; it trains on half of the identities, tests on the rest
        e_tr, e_te = rows(seen), rows(~seen)
        out[name] = {
            "identity": float((classify(x[tr], identity[tr], x[te], ids.max() + 1) == identity[te]).mean()),
            "mouth_r2": r2_score(mouth[te], ridge_predict(x[tr], mouth[tr], x[te])),
            "blink_auc": auc(closed[te], ridge_predict(x[tr], closed[tr].astype(float), x[te])),
            "pose_r2": r2_score(pose[te], ridge_predict(x[tr], pose[tr], x[te])),
            "emotion": float((classify(x[e_tr], emotion[e_tr], x[e_te], 5) == emotion[e_te]).mean()),
        }
    return out


def evaluate(model, cfg: EvalConfig | None = None, test: TestSet | None = None, progress: bool = False) -> dict:
    """Evaluate a SyncLipMAE (any variant) on SynthTalk test identities."""
    cfg = cfg or EvalConfig()
    model.eval()
    test = test if test is not None else make_test_set(cfg, model.cfg.model.img_size, progress)
    tokens = encode_test_set(model, test)
    sync = sync_accuracy(model, test, tokens, cfg)
    return {"sync_accuracy": sync["accuracy"], "sync_curves": sync["curves"],
            "disentanglement": disentanglement(tokens, test) if "z_id" in tokens else None}
