"""`synclipmae bench vsr`: lip reading on transcribed real video (GRID by default), one CTC head per
encoder, the same head, budget and sentences for each.

Faces are read once (`vsr.file_crops`, the path `sync` reads); for each encoder the head's inputs are
computed from the same crops, a head is trained on the "train" rows and scored on the "val" and
"test" rows (GRID: `vsr --dataset grid`'s split by file name). Encoders: trained checkpoints, the
same architecture with random weights ("random", reading the same patches as the first checkpoint),
and "pixels" (the grey mouth box, no encoder: the baseline).

Numbers (`vsr_bench.json`), per encoder and split: wer, cer (jiwer; errors per reference word or
character, 0 is perfect, can exceed 1) of plain decoding (prefix beam search, no language model),
and with a grammar, grammar.wer / grammar.cer of grammar-constrained decoding; train_s, the head's
training time in seconds.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from synclipmae.config import IMG_SIZE
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.report import markdown_table
from synclipmae.tasks.vsr import SlotGrammar, VSRTrainConfig, file_crops, file_features, fit_and_score, split_rows

RANDOM = "random"   # the encoder spec of a random-init model (the first checkpoint's architecture)
PIXELS = "pixels"   # the pixel baseline: no encoder


def random_like(model: SyncLipMAE, seed: int = 0) -> SyncLipMAE:
    """The architecture of `model` with fresh random weights; it reads the same patches (the
    count buffers that choose the inference views are copied)."""
    torch.manual_seed(seed)
    fresh = SyncLipMAE(copy.deepcopy(model.cfg)).eval()
    for name in ("view_b_counts", "mouth_counts"):
        getattr(fresh, name).copy_(getattr(model, name))
    return fresh


def bench_vsr(examples, encoders: dict, cfg: VSRTrainConfig, beam: int = 8, grammar: SlotGrammar | None = None,
              backend: str = "auto", size: int = IMG_SIZE, heads_dir=None, log=None) -> dict:
    """encoders: {name: SyncLipMAE, or None for the pixel baseline}. Returns the result dict (see the
    module docstring): {"encoders": {name: {"inputs", "train_s", "n_train", "val", "test", "head"}},
    "failures"}. heads_dir: each head is saved in heads_dir/K-NAME (K: the encoder's place)."""
    kept, failures = file_crops(examples, size, backend, log=log)
    result = {"encoders": {}, "failures": failures, "head": cfg.head.to_dict(), "epochs": cfg.epochs,
              "minutes": cfg.minutes, "beam": beam, "grammar": grammar is not None}
    for name, model in encoders.items():
        run = copy.deepcopy(cfg)
        run.head.inputs = PIXELS if model is None else cfg.head.inputs
        rows = split_rows(file_features(model, kept, run.head.inputs))
        if log is not None:
            log(f"{name}: training a head on {len(rows['train'])} sentences ({run.head.inputs})")
        folder = None if heads_dir is None else Path(heads_dir) / f"{len(result['encoders'])}-{Path(name).name}"
        entry = fit_and_score(rows, run, beam=beam, grammar=grammar, out_dir=folder,
                              encoder=name if model is not None else None)
        result["encoders"][name] = entry
    return result


def report_table(result: dict, split: str = "test") -> str:
    """Markdown: one row per encoder, WER and CER of plain and grammar-constrained decoding."""
    rows = []
    for name, e in result["encoders"].items():
        s = e.get(split)
        if s is None:
            continue
        g = s.get("grammar", {})
        rows.append([name, e["inputs"], s["n"], round(s["wer"], 3), round(s["cer"], 3),
                     round(g["wer"], 3) if g else "-", round(g["cer"], 3) if g else "-", round(e["train_s"] / 60, 1)])
    return markdown_table([f"encoder ({split})", "head inputs", "sentences", "WER", "CER", "WER grammar",
                           "CER grammar", "head minutes"], rows)
