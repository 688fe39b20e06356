"""Zero-shot audio-visual sync scoring on token sequences (DESIGN §6).

    d_k = mean_t (1 - cos(v_t, a_{t+k}))       for k in [-K, K], over frames valid for every k
    offset = argmin_k d_k;  min_distance = min_k d_k;  confidence = median_k d_k - min_k d_k

Sign: offset > 0 means the audio is late (the sound comes after the lips) by that many frames;
offset_ms = offset * 40 (one video frame at 25 fps). Fixing a video shifts its audio earlier by
offset_ms. v and a are the L2-normalised sync embeddings (`SyncLipMAE.sync_embeddings`).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from synclipmae.media.decode import load_audio
from synclipmae.media.pipeline import SEGMENT_S, FaceError, errors_into, iter_face_segments
from synclipmae.timing import TIMING
from synclipmae.version import __version__

MAX_OFFSET = 15  # default K: offsets searched are -15..15 frames (+-600 ms)


@dataclass
class SyncScore:
    offset_frames: int      # > 0: audio late (sound after lips); < 0: audio early
    offset_ms: float        # offset_frames * 40
    confidence: float       # median_k d_k - min_k d_k; higher = a clearer minimum (SyncNet's "confidence")
    min_distance: float     # min_k d_k in [0, 2]; lower = better match (SyncNet's "min dist", LSE-D-like)
    distances: list         # d_k for k = -K..K (2K+1 values)

    def to_dict(self) -> dict:
        return asdict(self)


def distance_curve(v: torch.Tensor, a: torch.Tensor, max_offset: int = MAX_OFFSET) -> torch.Tensor:
    """v float [W, E] (frames of the scored window), a float [W + 2K, E] with a[K + t] the audio
    token at the time of v[t]. Returns d float [2K + 1], d[K + k] = mean_t (1 - cos(v_t, a_{t+k}))."""
    W, K = v.shape[0], max_offset
    if a.shape[0] != W + 2 * K:
        raise ValueError(f"audio tokens must cover the window plus {K} frames each side: got {a.shape[0]}, need {W + 2 * K}")
    v = torch.nn.functional.normalize(v.float(), dim=-1)
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    windows = a.unfold(0, W, 1).transpose(1, 2)  # (2K+1, W, E): windows[j] = a[j : j+W]
    return 1.0 - (windows * v[None]).sum(-1).mean(-1)


def score_curve(d: torch.Tensor, max_offset: int = MAX_OFFSET) -> SyncScore:
    d = d.detach().cpu().double()
    j = int(torch.argmin(d))
    offset = j - max_offset
    return SyncScore(offset_frames=offset, offset_ms=offset * TIMING.ms_per_frame,
                     confidence=float(d.median() - d.min()), min_distance=float(d.min()),
                     distances=[round(float(x), 6) for x in d])


def score_window(v: torch.Tensor, a: torch.Tensor, max_offset: int = MAX_OFFSET) -> SyncScore:
    """Score a window whose audio stream extends K frames beyond it on both sides (see distance_curve)."""
    return score_curve(distance_curve(v, a, max_offset), max_offset)


def score_track(v: torch.Tensor, a: torch.Tensor, max_offset: int = MAX_OFFSET) -> SyncScore:
    """Score a face track whose video and audio tokens cover the same N frames: v, a float [N, E].
    Frames valid for every offset are t in [K, N - K), so N must exceed 2K."""
    N, K = v.shape[0], max_offset
    if N <= 2 * K:
        raise ValueError(f"a track needs more than {2 * K} frames to score offsets +-{K}; it has {N}")
    return score_window(v[K:N - K], a, max_offset)


# ====================================================================================================
# From a file to the DESIGN §7 record: the real-video pipeline -> tokens -> per-track scores
#
#   1. `media.pipeline.iter_face_segments`: the file's segments, face tracks cropped for the model and
#      the audio on the video's timeline (`prepare`, `embed` and `dub` read video the same way).
#   2. `track_tokens` / `SyncLipMAE.audio_tokens`: z_voc of each track's crops and a_t of the audio,
#      then `model.sync_embeddings` -> the normalised embeddings the distances are measured in.
#   3. `score_segment_track`: the distance curve over every frame whose audio exists K frames on
#      both sides, plus one local offset per second (the plot's strip).
#   4. `sync_file`: the record; every failure becomes {"status": "error", "error": one line}.
# `media.rewrite.fix_offset` writes a copy of a file with its audio shifted; `report.plot_record`
# draws a record.
# ====================================================================================================

LOCAL_WINDOW = TIMING.fps    # default: local offsets are scored on 1 s windows


class SyncError(FaceError):
    """A one-line, user-facing reason a file or track cannot be scored (no face, track too short, ...)."""


def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def track_tokens(model, crops: np.ndarray) -> torch.Tensor:
    """uint8 [N, S, S, 3] crops at model.cfg.model.img_size -> z_voc float [N, D] (`model.encode`)."""
    return model.encode(torch.from_numpy(np.ascontiguousarray(crops)).to(_device(model)), None, names=("z_voc",))["z_voc"]


def scored_range(start: int, end: int, num_frames: int, max_offset: int = MAX_OFFSET) -> tuple[int, int]:
    """[t0, t1): the frames of a track [start, end) whose audio exists for every offset in [-K, K]
    within a stretch of `num_frames` frames of audio (empty when t1 <= t0)."""
    return max(start, max_offset), min(end, num_frames - max_offset)


def score_segment_track(v: torch.Tensor, a: torch.Tensor, start: int, end: int, max_offset: int = MAX_OFFSET,
                        local_window: int = LOCAL_WINDOW) -> tuple[SyncScore, list[dict], int]:
    """Score one track: v float [N, E] (its frames [start, end) of a stretch), a float [T, E] (the whole
    stretch's audio). Returns (score over every frame valid for all offsets, local scores of
    consecutive `local_window`-frame windows [{start_frame, offset_frames, confidence}] with frame
    indices of the stretch, number of scored frames)."""
    K = max_offset
    t0, t1 = scored_range(start, end, a.shape[0], K)
    if t1 <= t0:
        raise SyncError(f"no frame of track [{start}, {end}) has audio {K} frames either side")
    score = score_window(v[t0 - start:t1 - start], a[t0 - K:t1 + K], K)
    local = []
    for w0 in range(t0, t1 - local_window + 1, local_window):
        s = score_window(v[w0 - start:w0 - start + local_window], a[w0 - K:w0 + local_window + K], K)
        local.append({"start_frame": w0, "offset_frames": s.offset_frames, "confidence": round(s.confidence, 6)})
    return score, local, t1 - t0


def _autocast(model, bf16: bool):
    """bf16 autocast for the model's matmuls (CPUs with AVX512-BF16/AMX and GPUs), else a no-op."""
    return torch.autocast(_device(model).type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def new_record(path, model_name: str | None = None, error: str | None = None) -> dict:
    """A §7 record with nothing scored yet: status "ok", or "error" with `error` (one line) when given."""
    return {"input": str(path), "status": "error" if error else "ok", "error": error, "fps_in": None, "frames": 0,
            "faceless_frames": 0, "tracks": [], "model": model_name, "version": __version__, "backend": None,
            "warnings": [], "short_tracks": []}


def sync_file(path, model, audio_path=None, audio: np.ndarray | None = None, max_offset: int = MAX_OFFSET,
              backend: str = "auto", model_name: str | None = None, segment_s: float = SEGMENT_S,
              bf16: bool = False) -> dict:
    """Score the lip sync of every face track of a video file (DESIGN §6, §7). Never raises for a bad
    file: the record's status is "error" and `error` says why in one line.

    audio_path / audio: score the video against this soundtrack instead of its own (a file of any
        format, or float32 [S] at 16 kHz; sample 0 is the first video frame).
    bf16: run the model under bfloat16 autocast (faster on CPUs with AVX512-BF16 or AMX, and on GPUs;
        distances differ from float32 in the third decimal).
    Returns the §7 record: input, status ("ok" | "error"), error, fps_in, frames, faceless_frames,
    tracks [{track, start_frame, end_frame, offset_frames, offset_ms, confidence, min_distance,
    distances[2K+1], scored_frames, local_offsets}], model, version; plus backend, warnings (list of
    one-line notes) and short_tracks (tracks too short to score: {track, start_frame, end_frame, error})."""
    record = new_record(path, model_name)
    K = max_offset
    with errors_into(record, path):
        if audio is None and audio_path is not None:
            audio = load_audio(audio_path)
        n_track = 0
        for seg in iter_face_segments(path, model.cfg.model.img_size, audio=audio, need_audio=True,
                                      min_frames=2 * K + 1, backend=backend, segment_s=segment_s,
                                      no_audio_hint=" (score it against a separate file with --audio WAV)"):
            record["fps_in"] = round(seg.fps_in, 3)
            record["backend"] = seg.backend
            record["frames"] += seg.num_frames
            record["faceless_frames"] += seg.faceless_frames
            mismatch = seg.meta.get("audio_mismatch_frames", 0.0)
            if seg.start_frame == 0 and audio is None and mismatch > 2:
                record["warnings"].append(f"audio and video durations differ by {mismatch / TIMING.fps:.2f} s "
                                          f"(the audio was padded with silence or cut to the video)")
            if seg.tracks:
                with _autocast(model, bf16):
                    a_tok = model.audio_tokens(seg.audio).float()         # (T_seg, D)
            for tc in seg.tracks:
                ident = {"track": n_track, "start_frame": tc.start_frame, "end_frame": tc.end_frame}
                n_track += 1
                if len(tc) <= 2 * K:
                    record["short_tracks"].append({**ident, "error": f"track too short: {len(tc)} frames, sync needs "
                                                                     f"more than {2 * K} ({2 * K / TIMING.fps:.1f} s)"})
                    continue
                with torch.no_grad():  # the normalised projections L_con aligned
                    with _autocast(model, bf16):
                        z_voc = track_tokens(model, tc.crops).float()       # (N, D)
                    v, a_emb = model.sync_embeddings(z_voc, a_tok)
                try:
                    score, local, n = score_segment_track(v, a_emb, tc.start_frame - seg.start_frame,
                                                          tc.end_frame - seg.start_frame, K)
                except SyncError as err:
                    record["short_tracks"].append({**ident, "error": str(err)})
                    continue
                for item in local:
                    item["start_frame"] += seg.start_frame
                record["tracks"].append({**ident, **score.to_dict(), "scored_frames": n, "local_offsets": local})
        if not record["tracks"]:
            name = Path(path).name
            if record["short_tracks"]:
                longest = max(t["end_frame"] - t["start_frame"] for t in record["short_tracks"])
                raise SyncError(f"{name}: no face track long enough to score: the longest has {longest} frames, "
                                f"sync needs more than {2 * K} ({2 * K / TIMING.fps:.1f} s)")
            raise SyncError(f"{name}: no face found in {record['frames']} frames")
    return record


def main_track(record: dict) -> dict | None:
    """The track a file's single offset is read from: the one with the most scored frames."""
    tracks = record.get("tracks") or []
    return max(tracks, key=lambda t: (t.get("scored_frames", 0), t["confidence"])) if tracks else None
