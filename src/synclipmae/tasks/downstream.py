"""`synclipmae bench downstream`: the same heads on the same budget from each encoder (issue 4).

Encoders: the checkpoint given (synclipmae), the same architecture untrained (random-init), and the two
baselines listed in the report.json of the demo run that made the checkpoint (syncnet-style,
mae-only). Data: SynthTalk clips never used in pretraining, from seed streams the demo does not use:
heads train on clips of TRAIN identities (new sentences) and are scored on clips of TEST identities
(new identities, new sentences).

    emotion_accuracy   5 classes, linear probe on tokens pooled over time (`pooling`; chance 0.2); higher is better
    emotion_macro_f1
    action_map         multi-label (nod, shake, tilt, smile, blinks), mean average precision over the
                       5 actions; chance is each action's frequency (~0.3); higher is better
    vsr_wer, vsr_cer   lip reading from the z_voc sequence (CTC, characters); 0 is perfect, lower is
                       better; decoded with a beam search and, by default, the SynthTalk lexicon (a
                       closed vocabulary of 400 words); vsr_wer_open is the same without the lexicon

Two reference rows put those numbers in context (`DownstreamConfig.references`, our default on):
    pixels        the emotion and action probes on raw pixels (each frame downscaled to 24x24 grey)
                  in place of the tokens: a floor that an encoder should beat (no lip reading: on
                  pixels the head learned nothing in this budget, CER 1.0)
    mouth-track   lip reading only, from SynthTalk's ground-truth mouth track (the 5 numbers per frame
                  that draw the mouth: opening, width, rounding, teeth, tongue): what the head reaches
                  when the visual input is perfect, the ceiling of this head and data budget
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from synclipmae.config import ConfigError
from synclipmae.data.clips import map_jobs
from synclipmae.data.synth import VOCABULARY, make_clip
from synclipmae.models.synclipmae import COUNT_BUFFERS, SyncLipMAE
from synclipmae.report import pyplot, save_figure
from synclipmae.tasks.features import POOLINGS, pool
from synclipmae.tasks.probe import TOKENS, accuracy, fit_probe, macro_f1, mean_average_precision
from synclipmae.tasks.vsr import VSRTrainConfig, error_rates, train_vsr, transcribe

ENCODERS = ("synclipmae", "random-init", "syncnet-style", "mae-only")
REFERENCES = ("pixels", "mouth-track")
_HEAD_SEED, _TEST_SEED = 20_000, 30_000   # SynthTalk seed offsets: the demo uses `seed`, its evaluation seed + 10_000


@dataclass
class DownstreamConfig:
    train_clips: int = 120          # default: head-training clips (train identities, sentences not in pretraining)
    test_clips: int = 50            # default: scored clips (test identities)
    seconds: float = 4.0            # default: clip length
    tokens: tuple = ("z_voc", "z_amb")  # default (DESIGN §2): probe features, pooled over time and concatenated
    pooling: str = "mean+std+motion"  # default: how each token is pooled over a clip (`pool`; "mean" = the paper's)
    vsr: VSRTrainConfig = field(default_factory=lambda: VSRTrainConfig(epochs=45))  # default: 45 epochs (at 30 the
                                    # head read the true mouth track at WER 0.53, at 45 0.39, at 60 0.41)
    head_threads: int = 1           # default: torch threads while the heads train (many small CTC steps: measured
                                    # 0.38 s/step on 1 thread vs 2.96 s/step on 2 with another job on the cores)
    beam: int = 8                   # default: CTC prefix beam width
    lexicon: bool = True            # default: snap decoded words to the SynthTalk vocabulary (closed set)
    workers: int = 2                # default: processes generating SynthTalk clips
    references: bool = True         # default: also score the pixels floor and the mouth-track ceiling
    pixel_side: int = 24            # default: side of the grey frames of the pixels reference
    seed: int = 0

    def validate(self) -> None:
        """ConfigError (one line) for settings the bench cannot run with."""
        prompts = [t for t in TOKENS if t != "a"]  # the bench encodes frames only: no audio token
        if not self.tokens or not set(self.tokens) <= set(prompts):
            raise ConfigError(f"config key 'tokens' takes names among {','.join(prompts)}; got {','.join(self.tokens)!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"config key 'pooling' must be one of {', '.join(POOLINGS)}; got {self.pooling!r}")
        if self.train_clips < 2 or self.test_clips < 1 or self.seconds <= 0:
            raise ConfigError("train_clips must be >= 2, test_clips >= 1 and seconds > 0")


@dataclass
class Split:
    frames: list          # uint8 [Tc, H, W, 3] per clip
    emotion: np.ndarray   # int [C]
    actions: np.ndarray   # {0, 1} [C, 5]
    texts: list           # str per clip
    mouth: list           # float32 [Tc, 5] per clip: the ground-truth mouth track


def _make(job):
    split, index, seconds, size, seed = job
    c = make_clip(split, index, seconds=seconds, size=size, seed=seed)
    return c.frames, int(c.ambient.emotion), c.ambient.actions.copy(), c.vocal.text, c.vocal.mouth


def make_split(split: str, clips: int, cfg: DownstreamConfig, size: int, seed: int, progress: bool = True) -> Split:
    made = map_jobs(_make, [(split, i, cfg.seconds, size, seed) for i in range(clips)], cfg.workers, progress,
                desc=f"SynthTalk {split}")
    return Split([m[0] for m in made], np.array([m[1] for m in made]), np.stack([m[2] for m in made]),
                 [m[3] for m in made], [m[4] for m in made])


@torch.no_grad()
def encode_split(model, split: Split, names, progress: bool = True) -> dict:
    """{token name: float32 [C, Tc, D]} for every clip (no audio), the tokens in `names` only."""
    out = [model.encode(torch.from_numpy(f), None, names=tuple(names))
           for f in tqdm(split.frames, desc="encode", leave=False, disable=not progress)]
    return {k: np.stack([o[k].float().numpy() for o in out]) for k in out[0]}


def pixel_features(split: Split, side: int) -> np.ndarray:
    """float32 [C, Tc, side*side]: every frame in grey, area-averaged to side x side, in [0, 1]."""
    grey = [torch.from_numpy(f).float().mean(-1)[:, None] / 255.0 for f in split.frames]  # (Tc, 1, H, W) each
    return np.stack([F.adaptive_avg_pool2d(g, side).flatten(1).numpy() for g in grey])


def score_heads(probe_train, probe_test, seq_train, seq_test, train: Split, test: Split,
                cfg: DownstreamConfig, progress: bool = True) -> dict:
    """Emotion and action probes on per-clip features [C, F] and the lip-reading head on per-frame
    sequences (a list of [Tc, D], one per clip), trained on `train`, scored on `test`; either is
    skipped when its training features are None."""
    out = {}
    if probe_train is not None:
        emo = fit_probe(probe_train, train.emotion, probe_test, n_classes=5).argmax(1)
        act = fit_probe(probe_train, train.actions, probe_test, multilabel=True)
        out = {"emotion_accuracy": accuracy(test.emotion, emo), "emotion_macro_f1": macro_f1(test.emotion, emo),
               "action_map": mean_average_precision(test.actions, act)}
    if seq_train is None:
        return out
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.head_threads)
    try:
        head, tok = train_vsr(seq_train, train.texts, cfg.vsr, progress=progress)
    finally:
        torch.set_num_threads(threads)
    hyp_open = transcribe(head, tok, seq_test, beam=cfg.beam)
    vsr_open = error_rates(test.texts, hyp_open)
    vsr = error_rates(test.texts, transcribe(head, tok, seq_test, beam=cfg.beam,
                                             lexicon=VOCABULARY)) if cfg.lexicon else vsr_open
    return {**out, "vsr_wer": vsr["wer"], "vsr_cer": vsr["cer"], "vsr_wer_open": vsr_open["wer"],
            "vsr_cer_open": vsr_open["cer"], "examples": [{"reference": r, "open": h}
                                                          for r, h in zip(test.texts[:3], hyp_open[:3])]}


def score_encoder(encoder, train: Split, test: Split, cfg: DownstreamConfig, progress: bool = True) -> dict:
    """The heads on an encoder's tokens: probes on `cfg.tokens` pooled over time, lip reading on z_voc."""
    names = {*cfg.tokens, "z_voc"}
    tr, te = encode_split(encoder, train, names, progress), encode_split(encoder, test, names, progress)
    return score_heads(pool(tr, cfg.tokens, cfg.pooling), pool(te, cfg.tokens, cfg.pooling),
                       list(tr["z_voc"]), list(te["z_voc"]), train, test, cfg, progress)


def score_references(train: Split, test: Split, cfg: DownstreamConfig, progress: bool = True) -> dict:
    """{"pixels": the probes on raw grey pixels, "mouth-track": lip reading from the true mouth track}."""
    px_train, px_test = (pool({"pixels": pixel_features(s, cfg.pixel_side)}, ("pixels",), cfg.pooling)
                         for s in (train, test))
    return {"pixels": score_heads(px_train, px_test, None, None, train, test, cfg, progress),
            "mouth-track": score_heads(None, None, train.mouth, test.mouth, train, test, cfg, progress)}


def baseline_checkpoints(model_dir) -> dict:
    """{variant: checkpoint dir} from the report.json of the demo run that made `model_dir` (searched
    in its parent folders); {} when there is none."""
    for parent in Path(model_dir).resolve().parents:
        report = parent / "report.json"
        if report.is_file():
            baselines = json.loads(report.read_text()).get("baselines") or {}
            return {k: v["checkpoint"] for k, v in baselines.items() if v.get("checkpoint")}
    return {}


def bench_downstream(model, model_dir, out_dir, seed: int = 0, cfg: DownstreamConfig | None = None,
                     log=print, progress: bool = True) -> Path:
    """Write OUT/downstream.json (and downstream.png): every encoder's heads on the same data."""
    cfg = cfg or DownstreamConfig(seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    size = model.cfg.model.img_size
    log(f"[bench] SynthTalk: {cfg.train_clips} head-training clips (train identities), "
        f"{cfg.test_clips} test clips (test identities), {cfg.seconds:g} s each")
    train = make_split("train", cfg.train_clips, cfg, size, cfg.seed + _HEAD_SEED, progress)
    test = make_split("test", cfg.test_clips, cfg, size, cfg.seed + _TEST_SEED, progress)
    torch.manual_seed(cfg.seed)
    untrained = SyncLipMAE(model.cfg).eval()
    for name in COUNT_BUFFERS:  # the same inference views: only the weights differ
        getattr(untrained, name).copy_(getattr(model, name))
    encoders = {"synclipmae": (model, str(model_dir)), "random-init": (untrained, None)}
    found = baseline_checkpoints(model_dir)
    for name in ("syncnet-style", "mae-only"):
        if name in found and Path(found[name]).is_dir():
            encoders[name] = (SyncLipMAE.from_pretrained(found[name]), found[name])
        else:
            log(f"[bench] {name}: no checkpoint in the demo run's report.json (run 'synclipmae demo --baselines'); skipped")
    results = {}
    for name, (encoder, ckpt) in encoders.items():
        log(f"[bench] {name}: encoding and training the heads")
        results[name] = {"checkpoint": ckpt, **score_encoder(encoder.eval(), train, test, cfg, progress)}
        log(f"[bench] {name}: {_summary(results[name])}")
    if cfg.references:
        log("[bench] references: the probes on raw pixels, lip reading from the true mouth track")
        for name, r in score_references(train, test, cfg, progress).items():
            results[name] = r
            log(f"[bench] {name}: {_summary(r)}")
    results["settings"] = {**asdict(cfg), "tokens": list(cfg.tokens), "seconds_wall": round(time.monotonic() - t0, 1),
                           "chance": {"emotion_accuracy": 0.2,
                                      "action_map": float(test.actions.mean())}}
    path = out_dir / "downstream.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    plot_downstream(results, out_dir / "downstream.png")
    return path


def _summary(r: dict) -> str:
    probe = f"emotion {r['emotion_accuracy']:.3f}  action mAP {r['action_map']:.3f}" if "action_map" in r else ""
    vsr = f"WER {r['vsr_wer']:.3f}  CER {r['vsr_cer']:.3f}" if "vsr_wer" in r else ""
    return "  ".join(p for p in (probe, vsr) if p)


def plot_downstream(results: dict, png) -> Path:
    plt = pyplot()
    colours = dict(zip(ENCODERS + REFERENCES, ["C0", "0.6", "C1", "C2", "0.85", "0.35"]))
    metrics = (("emotion_accuracy", "emotion accuracy ↑"), ("action_map", "action mAP ↑"), ("vsr_wer", "VSR WER ↓"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (key, title) in zip(axes, metrics):
        names = [n for n in ENCODERS + REFERENCES if key in results.get(n, {})]
        vals = [results[n][key] for n in names]
        ax.bar(range(len(names)), vals, color=[colours[n] for n in names])
        ax.set_xticks(range(len(names)), names, rotation=25, fontsize=8)
        ax.set_title(title)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    return save_figure(fig, png, dpi=110)
