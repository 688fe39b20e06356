"""`synclipmae bench downstream`: the same heads on the same budget from each encoder (issue 4).

Encoders: the checkpoint given (synclipmae), the same architecture untrained (random-init), and the two
baselines listed in the report.json of the demo run that made the checkpoint (syncnet-style,
mae-only). Data: SynthTalk clips never used in pretraining, from seed streams the demo does not use:
heads train on clips of TRAIN identities (new sentences) and are scored on clips of TEST identities
(new identities, new sentences).

    emotion_accuracy   5 classes, linear probe on time-averaged tokens (chance 0.2); higher is better
    emotion_macro_f1
    action_map         multi-label (nod, shake, tilt, smile, blinks), mean average precision over the
                       5 actions; chance is each action's frequency (~0.3); higher is better
    vsr_wer, vsr_cer   lip reading from the z_voc sequence (CTC, characters); 0 is perfect, lower is
                       better; decoded with a beam search and, by default, the SynthTalk lexicon (a
                       closed vocabulary of 400 words); vsr_wer_open is the same without the lexicon
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from synclipmae.tasks.vsr import VSRTrainConfig

ENCODERS = ("synclipmae", "random-init", "syncnet-style", "mae-only")
_HEAD_SEED, _TEST_SEED = 20_000, 30_000   # SynthTalk seed offsets: the demo uses `seed`, its evaluation seed + 10_000


@dataclass
class DownstreamConfig:
    train_clips: int = 120          # default: head-training clips (train identities, sentences not in pretraining)
    test_clips: int = 50            # default: scored clips (test identities)
    seconds: float = 4.0            # default: clip length
    tokens: tuple = ("z_voc", "z_amb")  # default (DESIGN §2): probe features, time-averaged and concatenated
    pooling: str = "mean+std"       # default: per-clip pooling of each token over time ("mean" = paper's average)
    vsr: VSRTrainConfig = field(default_factory=lambda: VSRTrainConfig(epochs=30))
    head_threads: int = 1           # default: torch threads while the heads train (many small CTC steps: measured
                                    # 0.38 s/step on 1 thread vs 2.96 s/step on 2 with another job on the cores)
    beam: int = 8                   # default: CTC prefix beam width
    lexicon: bool = True            # default: snap decoded words to the SynthTalk vocabulary (closed set)
    workers: int = 2                # default: processes generating SynthTalk clips
    seed: int = 0


@dataclass
class Split:
    frames: list          # uint8 [Tc, H, W, 3] per clip
    emotion: np.ndarray   # int [C]
    actions: np.ndarray   # {0, 1} [C, 5]
    texts: list           # str per clip


def _make(job):
    from synclipmae.data.synth import make_clip

    split, index, seconds, size, seed = job
    c = make_clip(split, index, seconds=seconds, size=size, seed=seed)
    return c.frames, int(c.ambient.emotion), c.ambient.actions.copy(), c.vocal.text


def make_split(split: str, clips: int, cfg: DownstreamConfig, size: int, seed: int, progress: bool = True) -> Split:
    from synclipmae.data.clips import _map

    made = _map(_make, [(split, i, cfg.seconds, size, seed) for i in range(clips)], cfg.workers, progress,
                desc=f"SynthTalk {split}")
    return Split([m[0] for m in made], np.array([m[1] for m in made]), np.stack([m[2] for m in made]),
                 [m[3] for m in made])


@torch.no_grad()
def encode_split(model, split: Split, names, progress: bool = True) -> dict:
    """{token name: float32 [C, Tc, D]} for every clip (no audio), the tokens in `names` only."""
    from tqdm import tqdm

    out = [model.encode(torch.from_numpy(f), None, names=tuple(names))
           for f in tqdm(split.frames, desc="encode", leave=False, disable=not progress)]
    return {k: np.stack([o[k].float().numpy() for o in out]) for k in out[0]}


def pool(tokens: dict, names, how: str) -> np.ndarray:
    """Per-clip features [C, F]: each available token of `names` pooled over time and concatenated."""
    parts = []
    for n in names:
        if n in tokens:
            parts.append(tokens[n].mean(1))
            if how == "mean+std":
                parts.append(tokens[n].std(1))
    return np.concatenate(parts, 1)


def score_heads(train_tok: dict, test_tok: dict, train: Split, test: Split, cfg: DownstreamConfig,
                progress: bool = True) -> dict:
    """Emotion, action and lip-reading heads trained on `train` tokens, scored on `test` tokens."""
    from synclipmae.data.synth import VOCABULARY
    from synclipmae.tasks.probe import accuracy, fit_probe, macro_f1, mean_average_precision
    from synclipmae.tasks.vsr import error_rates, train_vsr, transcribe

    x_tr, x_te = pool(train_tok, cfg.tokens, cfg.pooling), pool(test_tok, cfg.tokens, cfg.pooling)
    emo = fit_probe(x_tr, train.emotion, x_te, n_classes=5).argmax(1)
    act = fit_probe(x_tr, train.actions, x_te, multilabel=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.head_threads)
    try:
        head, tok = train_vsr(list(train_tok["z_voc"]), train.texts, cfg.vsr, progress=progress)
    finally:
        torch.set_num_threads(threads)
    hyp_open = transcribe(head, tok, list(test_tok["z_voc"]), beam=cfg.beam)
    vsr_open = error_rates(test.texts, hyp_open)
    vsr = error_rates(test.texts, transcribe(head, tok, list(test_tok["z_voc"]), beam=cfg.beam,
                                             lexicon=VOCABULARY)) if cfg.lexicon else vsr_open
    return {"emotion_accuracy": accuracy(test.emotion, emo), "emotion_macro_f1": macro_f1(test.emotion, emo),
            "action_map": mean_average_precision(test.actions, act),
            "vsr_wer": vsr["wer"], "vsr_cer": vsr["cer"], "vsr_wer_open": vsr_open["wer"],
            "vsr_cer_open": vsr_open["cer"], "examples": [{"reference": r, "open": h}
                                                          for r, h in zip(test.texts[:3], hyp_open[:3])]}


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
    from synclipmae.models.synclipmae import SyncLipMAE

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
    untrained.view_b_counts.copy_(model.view_b_counts)  # the same inference view: only the weights differ
    encoders = {"synclipmae": (model, str(model_dir)), "random-init": (untrained, None)}
    found = baseline_checkpoints(model_dir)
    for name in ("syncnet-style", "mae-only"):
        if name in found and Path(found[name]).is_dir():
            encoders[name] = (SyncLipMAE.from_pretrained(found[name]), found[name])
        else:
            log(f"[bench] {name}: no checkpoint in the demo run's report.json (run 'synclipmae demo --baselines'); skipped")
    results, names = {}, {*cfg.tokens, "z_voc"}  # z_voc: lip reading
    for name, (encoder, ckpt) in encoders.items():
        log(f"[bench] {name}: encoding and training the heads")
        encoder.eval()
        results[name] = {"checkpoint": ckpt, **score_heads(encode_split(encoder, train, names, progress),
                                                           encode_split(encoder, test, names, progress),
                                                           train, test, cfg, progress)}
        r = results[name]
        log(f"[bench] {name}: emotion {r['emotion_accuracy']:.3f}  action mAP {r['action_map']:.3f}  "
            f"WER {r['vsr_wer']:.3f}  CER {r['vsr_cer']:.3f}")
    results["settings"] = {**asdict(cfg), "tokens": list(cfg.tokens), "seconds_wall": round(time.monotonic() - t0, 1),
                           "chance": {"emotion_accuracy": 0.2,
                                      "action_map": float(test.actions.mean())}}
    path = out_dir / "downstream.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    plot_downstream(results, out_dir / "downstream.png")
    return path


def plot_downstream(results: dict, png) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in ENCODERS if n in results]
    metrics = (("emotion_accuracy", "emotion accuracy ↑"), ("action_map", "action mAP ↑"), ("vsr_wer", "VSR WER ↓"))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (key, title) in zip(axes, metrics):
        vals = [results[n][key] for n in names]
        ax.bar(range(len(names)), vals, color=["C0", "0.6", "C1", "C2"][:len(names)])
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        ax.set_title(title)
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
