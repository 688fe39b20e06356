"""Features of a raw video file: per face track, per frame, the named tokens of `SyncLipMAE.encode`
(DESIGN §2 "Downstream interface").

    extract(path, model) -> [TrackFeatures]     decode -> face tracks -> crops -> z_id, z_voc, z_amb, a
    save_features(tracks, out.safetensors)      one file, tensors named "track{k}.{name}"
    load_features(path) -> [TrackFeatures]

Frames are on the 25 fps timeline of the file (`TIMING.fps`): frame i covers [i/25, (i+1)/25) s and
`times` holds each frame's start in seconds. `a` is the audio token of the same frame (absent when
the file has no audio stream and no separate audio was given).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from synclipmae.media.decode import load_audio
from synclipmae.media.pipeline import FaceError, iter_face_segments
from synclipmae.timing import TIMING

TOKEN_NAMES = ("z_id", "z_voc", "z_amb", "a")
POOLINGS = ("mean", "mean+std", "mean+std+motion")


def pool(tokens: dict, names, how: str) -> np.ndarray:
    """Per-clip features [C, F]: each available token of `names` [C, Tc, D] pooled over time and
    concatenated. "mean" is the paper's time average; "+std" adds each feature's standard deviation
    over time (how far it moves); "+motion" adds its mean absolute frame-to-frame change (how fast it
    moves: a nod or shake oscillates within a second, the pose random walk drifts over seconds; 0 for a
    single frame). `how` is one of POOLINGS (ValueError otherwise)."""
    if how not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {how!r}")
    stats = how.split("+")
    parts = []
    for n in names:
        if n in tokens:
            x = tokens[n]
            parts.append(x.mean(1))
            if "std" in stats:
                parts.append(x.std(1))
            if "motion" in stats:
                parts.append(np.abs(np.diff(x, axis=1)).sum(1) / max(x.shape[1] - 1, 1))
    return np.concatenate(parts, 1)


@dataclass
class TrackFeatures:
    track: int                 # track number in the file (in order of first appearance)
    start_frame: int           # first frame of the track on the file's 25 fps timeline
    end_frame: int             # one past its last frame
    tokens: dict = field(default_factory=dict)  # name -> float32 [N, D], N = end_frame - start_frame

    @property
    def times(self) -> np.ndarray:
        """float64 [N]: start time in seconds of each frame of the track."""
        return np.arange(self.start_frame, self.end_frame) / TIMING.fps

    def pooled(self, names, how: str = "mean") -> np.ndarray:
        """Tokens `names` pooled over the track's frames (`pool`), concatenated: float32 [F]."""
        return pool({n: self.tokens[n][None] for n in names}, names, how)[0]


@torch.no_grad()
def extract(path, model, audio_path=None, backend: str = "auto", chunk: int = 256,
            with_audio: bool = True) -> list[TrackFeatures]:
    """Per-track, per-frame tokens of the video file `path` (every face track of at least 10 frames,
    also those shorter than a sync window). Faceless frames belong to no track. with_audio=False
    skips the audio tokens `a`. Raises `MediaError` for unusable files and `FaceError` when no face
    is found."""
    device = next(model.parameters()).device
    audio = load_audio(audio_path) if audio_path is not None else None
    out: list[TrackFeatures] = []
    frames = 0
    for seg in iter_face_segments(path, model.cfg.model.img_size, audio=audio, need_audio=False,
                                  backend=backend):
        frames += seg.num_frames
        a = None
        if with_audio and seg.audio is not None and seg.tracks:
            a = model.audio_tokens(seg.audio).float().cpu().numpy()                # (T_seg, D)
        for tc in seg.tracks:
            crops = torch.from_numpy(np.ascontiguousarray(tc.crops)).to(device)
            tokens = {k: v.float().cpu().numpy() for k, v in model.encode(crops, None, chunk=chunk).items()}
            if a is not None:
                tokens["a"] = a[tc.start_frame - seg.start_frame:tc.end_frame - seg.start_frame]
            out.append(TrackFeatures(len(out), tc.start_frame, tc.end_frame, tokens))
    if not out:
        raise FaceError(f"{Path(path).name}: no face found in {frames} frames")
    return out


def longest_track(tracks: list[TrackFeatures]) -> TrackFeatures:
    """The track with the most frames: the speaker of a one-speaker clip."""
    return max(tracks, key=lambda t: t.end_frame - t.start_frame)


def save_features(tracks: list[TrackFeatures], out, meta: dict | None = None) -> Path:
    """Write tracks to one safetensors file: tensors "track{k}.{name}" float32 [N, D] and
    "track{k}.times" float64 [N]; metadata "tracks" (JSON: track, start_frame, end_frame) and "meta"."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, tr in enumerate(tracks):
        tensors[f"track{k}.times"] = tr.times
        for name, value in tr.tokens.items():
            tensors[f"track{k}.{name}"] = np.ascontiguousarray(value, np.float32)
    info = [{"track": t.track, "start_frame": t.start_frame, "end_frame": t.end_frame} for t in tracks]
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"tracks": json.dumps(info), "meta": json.dumps(meta or {}),
                                           "fps": str(TIMING.fps)})
    tmp.replace(out)
    return out


def load_features(path) -> list[TrackFeatures]:
    """Read a file written by `save_features`."""
    with safe_open(str(path), framework="numpy") as f:
        info = json.loads(f.metadata()["tracks"])
        keys = set(f.keys())
        tracks = []
        for k, t in enumerate(info):
            tokens = {n: f.get_tensor(f"track{k}.{n}") for n in TOKEN_NAMES if f"track{k}.{n}" in keys}
            tracks.append(TrackFeatures(t["track"], t["start_frame"], t["end_frame"], tokens))
    return tracks
