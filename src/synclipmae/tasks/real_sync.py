"""`bench real-sync`: planted offsets on real clips' own soundtracks, scored through the whole file path.

For each clip: decode -> face tracks -> crops (once, shared by every model and offset), then for each
model the video tokens of the main track (the longest; once) and, for each planted offset k, the audio
tokens of the clip's own soundtrack moved by k frames (k > 0: audio late; k < 0: early) and the
DESIGN §6 score. The move cuts rather than pads: the video frames left without audio are dropped
(`planted`), so no silence enters the clip and a moved clip is scored like a natural one:

- whole clip: the offset found over every frame valid for all offsets; correct when |found - k| <= 1;
- 1 s windows: consecutive windows of 25 frames, each scored alone, correct the same way;
- ROC AUC of in sync (|k| <= 1) against moved (|k| >= 5), whole clip, for two numbers: the record's
  `confidence` (median_k d_k - min_k d_k, SyncNet's convention: how clear the best offset is, wherever
  it lies) and `zero_margin` (median_k d_k - d_0: how much better offset 0 fits than a typical offset,
  read from the record's `distances`), the number to filter a dataset for clips already in sync.

Every model sees the same clips and offsets. `mouth-energy` (no training) is always included as the
floor. A clip that cannot be read is listed with its one-line error and counted in no accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from synclipmae.errors import one_line
from synclipmae.media.decode import MediaError
from synclipmae.media.pipeline import FaceError, expand_inputs, iter_face_segments
from synclipmae.report import markdown_table
from synclipmae.tasks.sync import MAX_OFFSET, score_segment_track, track_tokens
from synclipmae.timing import TIMING

OFFSETS = tuple(range(-15, 16))  # default: every planted offset in [-15, 15] frames
IN_SYNC = 1                      # |k| <= 1: in sync, for the confidence's ROC AUC
MOVED = 5                        # |k| >= 5: moved, for the confidence's ROC AUC


@dataclass
class ClipCase:
    """One clip's main face track, read once for every model and offset."""
    path: Path
    crops: np.ndarray          # uint8 [N, S, S, 3]
    audio: np.ndarray          # float32 [T * spf], the clip's own soundtrack on its timeline
    start: int                 # the track's frames [start, end) of the clip's T frames
    end: int


def named_inputs(items) -> dict[str, list[Path]]:
    """["NAME=PATH", "PATH", ...] -> {set name: [video files]}: a PATH (file, folder or list) without
    a NAME is its own set, named after the folder or list's stem."""
    sets: dict[str, list[Path]] = {}
    for item in items:
        name, _, path = str(item).rpartition("=")                          # ("", "", PATH) without a NAME
        p = Path(path)
        if not name:
            name = p.stem if p.suffix.lower() in (".txt", ".lst", ".list") else p.name if p.is_dir() else p.parent.name
        sets.setdefault(name, []).extend(expand_inputs([p]))
    return sets


def read_case(path: Path, size: int, max_offset: int = MAX_OFFSET, backend: str = "auto",
              max_planted: int = max(abs(k) for k in OFFSETS)) -> ClipCase:
    """The main (longest) face track of the first segment of `path`, cropped at `size` px, with the
    clip's audio. Raises MediaError / FaceError (one line) when the file cannot be scored: the track
    must keep more than 2 K frames once a planted offset of `max_planted` has cut it."""
    need = 2 * max_offset + max_planted
    for seg in iter_face_segments(path, size, need_audio=True, min_frames=need + 1, backend=backend):
        if not seg.tracks:
            raise FaceError(f"{Path(path).name}: no face found in {seg.num_frames} frames")
        tc = max(seg.tracks, key=len)
        if len(tc) <= need:
            raise FaceError(f"{Path(path).name}: the longest face track has {len(tc)} frames; planted offsets "
                            f"up to {max_planted} need more than {need}")
        return ClipCase(Path(path), tc.crops, seg.audio, tc.start_frame - seg.start_frame,
                        tc.end_frame - seg.start_frame)
    raise FaceError(f"{Path(path).name}: no frames")


def planted(audio: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """The clip with its soundtrack moved k frames later (k > 0: audio late) or earlier (k < 0), cut
    rather than padded, so no silence is added: returns (audio of the new timeline, first video frame
    of the clip on it). k > 0 keeps video frames [k, T) with audio [0, T - k); k < 0 keeps video frames
    [0, T - |k|) with audio [|k|, T)."""
    spf, T = TIMING.samples_per_frame, len(audio) // TIMING.samples_per_frame
    if k >= 0:
        return audio[:(T - k) * spf], k
    return audio[-k * spf:T * spf], 0


@torch.no_grad()
def score_case(model, case: ClipCase, offsets=OFFSETS, max_offset: int = MAX_OFFSET) -> list[dict]:
    """One model on one clip: a row per planted offset {k, found, confidence, zero_margin, correct,
    windows, windows_correct}."""
    z = track_tokens(model, case.crops).float()                                  # (N, D)
    rows = []
    for k in offsets:
        audio, first = planted(case.audio, k)
        T = len(audio) // TIMING.samples_per_frame
        start, end = max(case.start, first), min(case.end, first + T)            # on the clip's frames
        v, a = model.sync_embeddings(z[start - case.start:end - case.start], model.audio_tokens(audio).float())
        score, local, _ = score_segment_track(v, a, start - first, end - first, max_offset)
        hits = [abs(w["offset_frames"] - k) <= 1 for w in local]
        d = np.asarray(score.distances)
        rows.append({"k": k, "found": score.offset_frames, "confidence": round(score.confidence, 6),
                     "zero_margin": round(float(np.median(d) - d[max_offset]), 6),
                     "correct": abs(score.offset_frames - k) <= 1, "windows": len(hits), "windows_correct": sum(hits)})
    return rows


def roc_auc(positive, negative) -> float | None:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney U / (n_p n_n))."""
    p, n = np.asarray(positive, float), np.asarray(negative, float)
    if not len(p) or not len(n):
        return None
    greater = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
    return float(greater / (len(p) * len(n)))


def _auc(rows: list[dict], key: str) -> float | None:
    auc = roc_auc([r[key] for r in rows if abs(r["k"]) <= IN_SYNC], [r[key] for r in rows if abs(r["k"]) >= MOVED])
    return None if auc is None else round(auc, 4)


def summarise(rows: list[dict]) -> dict:
    """Accuracy over clips x offsets (whole clip and 1 s windows) and two ROC AUCs of in sync against
    moved: of `confidence` (SyncNet's median - min, the record's number) and of `zero_margin`
    (median_k d_k - d_0: how much better offset 0 fits than a typical offset)."""
    if not rows:
        return {"cases": 0, "accuracy": None, "window_accuracy": None, "auc": None, "auc_zero_margin": None}
    windows = sum(r["windows"] for r in rows)
    return {
        "cases": len(rows),
        "accuracy": round(float(np.mean([r["correct"] for r in rows])), 4),
        "window_accuracy": round(sum(r["windows_correct"] for r in rows) / windows, 4) if windows else None,
        "auc": _auc(rows, "confidence"),
        "auc_zero_margin": _auc(rows, "zero_margin"),
    }


def bench_real_sync(inputs, models: dict, offsets=OFFSETS, max_offset: int = MAX_OFFSET, backend: str = "auto",
                    progress: bool = True) -> dict:
    """inputs: ["NAME=PATH" | "PATH", ...] (see named_inputs); models: {name: model} (SyncLipMAE or
    MouthEnergyModel, all of one img_size). Returns {"offsets", "sets": {set: {"clips", "failed",
    "models": {model: summary}}}, "clips": [{set, input, model, rows}]}."""
    sizes = {m.cfg.model.img_size for m in models.values()}
    if len(sizes) != 1:
        raise ValueError(f"every model must take crops of one size; got {sorted(sizes)}")
    size = sizes.pop()
    sets = named_inputs(inputs)
    result = {"offsets": list(offsets), "max_offset": max_offset, "sets": {}, "clips": []}
    files = [(s, p) for s, paths in sets.items() for p in paths]
    per_model = {s: {m: [] for m in models} for s in sets}
    failed = {s: [] for s in sets}
    for set_name, path in tqdm(files, desc="bench real-sync", unit="clip", disable=not progress):
        try:
            case = read_case(path, size, max_offset, backend, max(abs(k) for k in offsets))
        except (MediaError, FaceError) as err:
            failed[set_name].append({"input": str(path), "error": one_line(err)})
            continue
        for name, model in models.items():
            rows = score_case(model, case, offsets, max_offset)
            per_model[set_name][name] += rows
            result["clips"].append({"set": set_name, "input": str(path), "model": name, "rows": rows})
    for s in sets:
        result["sets"][s] = {"clips": len(sets[s]) - len(failed[s]), "failed": failed[s],
                             "models": {m: summarise(per_model[s][m]) for m in models}}
    return result


def report_table(result: dict) -> str:
    """A Markdown table: one row per set and model."""
    header = ["set", "clips", "model", "whole clip", "1 s windows", "AUC confidence", "AUC zero margin"]
    return markdown_table(header, [[s, r["clips"], m, x["accuracy"], x["window_accuracy"], x["auc"], x["auc_zero_margin"]]
                                   for s, r in result["sets"].items() for m, x in r["models"].items()])
