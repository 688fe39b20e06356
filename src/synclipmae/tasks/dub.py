"""Dubbing real video (DESIGN §2 "Downstream interface" 4, §7): `dub_file` and `synclipmae dub`.

A video's main face gets a new mouth that follows new speech (audio-driven) or another video's face
(video-driven); the result is written with the new soundtrack. The stages, in order:

1. `find_faces`: decode the video at `DETECT_SIDE` px (in `SEGMENT_S` segments, like `sync`), track
   faces, and for every frame keep the face of the longest track present in it: its crop at the
   generator's size framed as `sync` frames it (`model_framing`), the lower-face mask of the crop and
   the crop's rectangle in source pixels (the similarity transform paste-back inverts). Memory: the
   crops and rectangles (memory-mapped temporary files for a video read in several segments), never
   the full-resolution video.
2. `output_order`: the source frame shown at each output frame. The driving audio sets the length:
   longer than the video, the video plays back and forth (0, 1, ..., N-1, N-2, ..., 1, 0, 1, ...);
   shorter, the video is cut.
3. `dub_file`: the generator (`models.dubber.dub_crops`) in chunks of about `CHUNK` output frames,
   each conditioned on the last generated frame before it; the source re-read at full resolution in
   output order (`frames_in_order`); each generated crop pasted back with a feathered mask
   (`paste_crop`); frames without a face copied unchanged; written by a streaming H.264 + AAC writer
   to a temporary file renamed at the end. Every failure becomes a one-line error in the record.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synclipmae.tasks.sync import (DETECT_SIDE, FIX_SUFFIXES, SEGMENT_S, _segments, crop_pieces, model_framing,
                                   quiet_native_stderr)
from synclipmae.timing import TIMING

CHUNK = 250                   # default: output frames per generator call (10 s), rounded to whole segments
FEATHER = 0.04                # default: width of the pasted region's soft edge, as a fraction of the crop side
REVERSE_BUDGET = 512 * 2**20  # default: bytes of full-resolution frames held while a loop plays backwards
OUT_SUFFIXES = FIX_SUFFIXES   # containers the dubbed video can be written as (H.264 + AAC)
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


class DubError(Exception):
    """A one-line, user-facing reason a video cannot be dubbed (no face, ...); starts with the file name."""


# ----------------------------------------------------------------------------------------------------
# 1. faces: one crop per frame, with its mask and its place in the source frame


class Stacked:
    """Per-frame arrays of several segments read as one: `x[idx]` for an int or an int array gathers
    from the segment each frame lies in (the segments may be memory-mapped files)."""

    def __init__(self, parts: list):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, idx):
        if np.isscalar(idx):
            k = int(np.searchsorted(self.starts, idx, side="right")) - 1
            return self.parts[k][idx - self.starts[k]]
        idx = np.asarray(idx)
        seg = np.searchsorted(self.starts, idx, side="right") - 1
        out = np.empty((len(idx), *self.parts[0].shape[1:]), self.parts[0].dtype)
        for k in np.unique(seg):
            out[seg == k] = self.parts[k][idx[seg == k] - self.starts[k]]
        return out


def _spill(x: np.ndarray, folder: Path | None, name: str) -> np.ndarray:
    """`x`, or a read-only memory map of it saved in `folder` (so a long video's crops live on disk)."""
    if folder is None:
        return x
    path = Path(folder) / f"{name}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return np.load(path, mmap_mode="r")


@dataclass
class FaceFrames:
    """The face of each frame of a video on the TIMING.fps timeline: the longest track present."""
    num_frames: int            # N: frames of the video at TIMING.fps
    fps_in: float
    width: int                 # source frame size (after rotation), the pixels `rects` are in
    height: int
    backend: str
    track: np.ndarray          # int64 [N]: id of the track whose face is used; -1: no face
    crops: np.ndarray | Stacked         # uint8 [N, S, S, 3] (zeros where no face)
    mouth: np.ndarray | Stacked | None  # bool [N, S, S]: the lower-face mask of each crop (with masks=True)
    rects: np.ndarray          # float64 [N, 4]: x0, y0, w, h of each crop in source pixels: crop pixel
                               # (u, v) covers x0 + [u, u + 1) * w / S, y0 + [v, v + 1) * h / S

    @property
    def faceless(self) -> int:
        return int((self.track < 0).sum())


def _main_face_pieces(tracks: list, T: int) -> list:
    """Per frame, the longest track present in it (ties: the larger face): [FaceTrack] pieces over
    disjoint frame ranges, each a contiguous part of one track."""
    from synclipmae.media.faces import FaceTrack

    owner = np.full(T, -1)
    ranked = sorted(range(len(tracks)), key=lambda i: (len(tracks[i]), float(np.mean(
        (tracks[i].boxes[:, 2] - tracks[i].boxes[:, 0]) * (tracks[i].boxes[:, 3] - tracks[i].boxes[:, 1])))),
        reverse=True)
    for i in ranked:
        tr = tracks[i]
        span = owner[tr.start_frame:tr.end_frame]
        span[span < 0] = i
    pieces = []
    for i, tr in enumerate(tracks):
        mine = np.flatnonzero(owner == i)
        if not len(mine):
            continue
        breaks = np.flatnonzero(np.diff(mine) > 1)
        for a, b in zip(np.r_[mine[0], mine[breaks + 1]], np.r_[mine[breaks], mine[-1]] + 1):
            lo, hi = a - tr.start_frame, b - tr.start_frame
            pieces.append(FaceTrack(tr.track, int(a), int(b), tr.boxes[lo:hi],
                                    None if tr.landmarks is None else tr.landmarks[lo:hi],
                                    None if tr.detected is None else tr.detected[lo:hi]))
    return pieces


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two rectangles x0, y0, w, h."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-9)


def find_faces(path, size: int, backend: str = "auto", masks: bool = True, segment_s: float = SEGMENT_S,
               detect_side: int = DETECT_SIDE, bar=None, quiet: bool = True, spill: Path | None = None) -> FaceFrames:
    """Decode `path` at `detect_side` px in segments, track faces, and crop the main face of each
    frame at `size` px with `sync`'s framing (from a streamed higher-resolution re-read where the
    face is smaller than `size` in the detection copy, as `sync` does). masks: also the lower-face
    mask of each crop (runs the face mesh). bar: a tqdm bar advanced by the frames read. spill: a
    folder where the crops and masks of a video read in several segments are kept (memory-mapped),
    so memory does not grow with the video's length. Raises MediaError for unusable files; frames
    without a face are only marked (track -1)."""
    from synclipmae.media.decode import MediaError, decode, probe
    from synclipmae.media.faces import track_faces

    info = probe(path)
    if not info["has_video"]:
        raise MediaError(f"{Path(path).name}: no video stream (audio only)")
    parts: list[dict] = []
    next_id = 0
    backend_used, fps_in, W, H = backend, 0.0, 0, 0
    segments = _segments(info.get("duration_s"), segment_s)
    spill = spill if len(segments) > 1 else None
    for i, (start_s, dur) in enumerate(segments):
        try:
            d = decode(path, max_side=detect_side, start_s=start_s, duration_s=dur, with_audio=False)
        except MediaError as err:
            if i > 0 and "no video frames" in str(err):
                break  # the container's duration overstated the video
            raise
        T, fps_in = d.num_frames, d.fps_in
        W, H = int(d.meta["width"]), int(d.meta["height"])
        with quiet_native_stderr(quiet):
            faces = track_faces(d.frames, backend=backend, landmarks=masks)
        backend_used = faces.backend
        track = np.full(T, -1, np.int64)
        crops = np.zeros((T, size, size, 3), np.uint8)
        mouth = np.zeros((T, size, size), bool) if masks else None
        rects = np.zeros((T, 4), np.float64)
        framed = [model_framing(piece, faces.backend) for piece in _main_face_pieces(faces.tracks, T)]
        for (piece, margin), (piece_crops, piece_rects) in zip(framed, crop_pieces(path, d, framed, size, start_s, dur)):
            frames_of = slice(piece.start_frame, piece.end_frame)
            read = np.isfinite(piece_rects[:, 0])                           # frames a short re-read never reached
            track[frames_of] = np.where(read, next_id + piece.track, -1)
            crops[frames_of], rects[frames_of] = piece_crops, np.nan_to_num(piece_rects)
            if masks:
                mouth[frames_of] = piece.masks(size, margin)[1]
        d = None  # the detection copy is no longer needed
        parts.append({"track": track, "crops": _spill(crops, spill, f"crops{i}"), "rects": rects,
                      "mouth": None if mouth is None else _spill(mouth, spill, f"mouth{i}")})
        next_id += max((tr.track for tr in faces.tracks), default=-1) + 1
        if len(parts) > 1:  # a face that goes on across the segment boundary keeps its track id
            prev, cur = parts[-2], parts[-1]
            if prev["track"][-1] >= 0 and cur["track"][0] >= 0 and _iou(prev["rects"][-1], cur["rects"][0]) >= 0.5:
                cur["track"][cur["track"] == cur["track"][0]] = prev["track"][-1]
        if bar is not None:
            bar.update(T)

    def join(key):
        return parts[0][key] if len(parts) == 1 else Stacked([p[key] for p in parts])

    return FaceFrames(num_frames=sum(len(p["track"]) for p in parts), fps_in=fps_in, width=W, height=H,
                      backend=backend_used, track=np.concatenate([p["track"] for p in parts]), crops=join("crops"),
                      mouth=join("mouth") if masks else None, rects=np.concatenate([p["rects"] for p in parts]))


# ----------------------------------------------------------------------------------------------------
# 2. the output's timeline


def output_order(num_out: int, num_src: int) -> np.ndarray:
    """int64 [num_out]: the source frame shown at each output frame. The source plays forwards, then
    backwards and forwards again (0, 1, ..., N-1, N-2, ..., 1, 0, 1, ...) as long as needed; a shorter
    output is the source's first num_out frames."""
    j = np.arange(num_out, dtype=np.int64)
    if num_src <= 1:
        return np.zeros(num_out, np.int64)
    period = 2 * (num_src - 1)
    k = j % period
    return np.where(k < num_src, k, period - k)


def _runs(order: np.ndarray) -> list[tuple[int, int, int]]:
    """Split `order` into runs [(first, length, step)] with order[a + i] = first + i * step, step in
    {1, -1, 0} (0: one frame repeated)."""
    runs, a = [], 0
    while a < len(order):
        step = int(order[a + 1] - order[a]) if a + 1 < len(order) else 1
        step = step if abs(step) <= 1 else 1
        b = a
        while b + 1 < len(order) and order[b + 1] - order[b] == step:
            b += 1
        runs.append((int(order[a]), b - a + 1, step))
        a = b + 1
    return runs


def _read(path, start: int, count: int):
    """Full-resolution frames start .. start + count - 1 of the TIMING.fps timeline (the last one
    repeated if the file comes up short)."""
    from synclipmae.media.decode import iter_frames

    fps, last, n = TIMING.fps, None, 0
    for frame in iter_frames(path, start_s=start / fps, duration_s=count / fps):
        last = frame
        n += 1
        yield frame
    if last is None:
        raise DubError(f"{Path(path).name}: no video frames after {start / fps:.2f} s")
    for _ in range(count - n):
        yield last


def frames_in_order(path, order: np.ndarray, budget: int = REVERSE_BUDGET):
    """Yield the full-resolution frame order[j] of `path` for each j, reading the file as little as
    possible: forward runs are streamed; backward runs are decoded in blocks of at most `budget` bytes
    and played backwards, so memory stays bounded whatever the video's length."""
    block = None
    for first, length, step in _runs(order):
        if step == 1:
            yield from _read(path, first, length)
        elif step == 0:
            frame = next(_read(path, first, 1))
            for _ in range(length):
                yield frame
        else:
            hi, last = first, first - length + 1
            while hi >= last:
                if block is None:
                    frame = next(_read(path, hi, 1))
                    block = int(max(1, min(CHUNK, budget // max(frame.nbytes, 1))))
                lo = max(last, hi - block + 1)
                yield from reversed(list(_read(path, lo, hi - lo + 1)))
                hi = lo - 1


# ----------------------------------------------------------------------------------------------------
# 3. paste-back, soundtrack, and the whole file


def paste_crop(frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, rect, feather: float = FEATHER) -> np.ndarray:
    """`frame` uint8 [H, W, 3] with the generated `crop` uint8 [S, S, 3] blended in where `mask` bool
    [S, S] is set. The crop is mapped back by the inverse of its similarity transform (`rect`: x0, y0,
    w, h of the crop in frame pixels); the mask's edge is feathered over `feather` of the crop side,
    inside the mask, so pixels outside it keep their values. Returns a new frame (or `frame` itself
    when nothing is pasted)."""
    from synclipmae.media.faces import _cv2

    cv2 = _cv2()
    H, W = frame.shape[:2]
    S = crop.shape[0]
    x0, y0, w, h = (float(v) for v in rect)
    X0, Y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    X1, Y1 = min(W, math.ceil(x0 + w)), min(H, math.ceil(y0 + h))
    if X1 <= X0 or Y1 <= Y0 or not mask.any():
        return frame
    kx, ky = w / S, h / S
    # crop pixel centre u + 1/2 lies at frame coordinate x0 + (u + 1/2) kx, i.e. at frame pixel
    # index kx u + x0 + kx/2 - 1/2; shifted into the region of interest [X0, X1) x [Y0, Y1)
    M = np.array([[kx, 0.0, x0 + kx / 2 - 0.5 - X0], [0.0, ky, y0 + ky / 2 - 0.5 - Y0]])
    roi = (X1 - X0, Y1 - Y0)
    gen = cv2.warpAffine(crop, M, roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    soft = cv2.warpAffine(mask.astype(np.float32), M, roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0)
    sigma = max(0.5, feather * max(w, h) / 2)
    # 2 * blur - 1: 0 on the mask's edge, 1 about 2 sigma inside it; < 0 (clipped) everywhere outside
    alpha = np.clip(2.0 * cv2.GaussianBlur(soft, (0, 0), sigma) - 1.0, 0.0, 1.0)[..., None]
    out = frame.copy()
    part = out[Y0:Y1, X0:X1].astype(np.float32)                                  # (h, w, 3)
    out[Y0:Y1, X0:X1] = np.rint(part + alpha * (gen - part)).astype(np.uint8)
    return out


def _soundtrack(path, t_origin: float, seconds: float | None = None) -> tuple[np.ndarray, int, str]:
    """The audio of `path` at its own rate and layout, float32 planar [C, S], sample 0 at `t_origin`
    seconds of the file's clock, cut to `seconds`; rates AAC cannot store are resampled to 48 kHz."""
    from synclipmae.media.decode import MediaError, _check_file, _import_av, _open, _resample
    from synclipmae.tasks.sync import _audio_samples

    av = _import_av()
    p = _check_file(path)
    container = _open(av, p)
    try:
        if not container.streams.audio:
            raise MediaError(f"{p.name}: no audio stream")
        try:
            x, rate, layout = _audio_samples(av, container, container.streams.audio[0], t_origin)
        except Exception as err:  # noqa: BLE001 - FFmpeg errors of a corrupt stream
            raise MediaError(f"{p.name}: cannot decode audio: {' '.join(str(err).split())}") from err
    finally:
        container.close()
    if rate not in AAC_RATES:
        x, rate = np.stack([_resample(c, rate, 48000) for c in x]), 48000
    if seconds is not None:
        x = x[:, :int(round(seconds * rate))]
    return x, rate, layout


def _video_start(path) -> float:
    """Time of the first video frame on the file's clock (the origin of the TIMING.fps timeline)."""
    from synclipmae.media.decode import _check_file, _import_av, _open

    av = _import_av()
    container = _open(av, _check_file(path))
    try:
        v = container.streams.video[0]
        return float(v.start_time * v.time_base) if v.start_time is not None else 0.0
    finally:
        container.close()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def dub_file(video, out, dubber, audio_path=None, driving_path=None, backend: str = "auto", progress: bool = True,
             *, crf: int = 18, chunk: int = CHUNK, model_name: str | None = None,
             segment_s: float = SEGMENT_S) -> dict:
    """Dub `video` and write the result to `out` (.mp4, .mov, .m4v or .mkv; H.264 + AAC, 25 fps, the
    source's resolution). Exactly one of:

    audio_path: audio-driven: the mouth follows this speech (any audio or video file; sample 0 is
        time 0 of that file) and the output carries it as its soundtrack, at its own rate and channels.
    driving_path: video-driven: the mouth follows the main face of this video, and the output carries
        its soundtrack.

    The output lasts as long as the driving audio (audio-driven) or the driving video (video-driven),
    to within one frame: a shorter source video is played back and forth, a longer one is cut.
    Frames where the source (or, video-driven, the driving video) shows no face are copied unchanged.
    `out` is written atomically (a temporary file in its folder, renamed at the end). Never raises for
    a bad input file: the record's status is "error" and `error` says why in one line.
    crf: H.264 quality (0 lossless); chunk: output frames per generator call; segment_s: videos
    longer than 1.5 x this are read for faces in segments of this many seconds (as `sync` does).

    Returns {input, status ("ok" | "error"), error, output, mode ("audio" | "video"), driving, model,
    version, backend, fps_in, source_frames, frames, seconds, looped, trimmed, dubbed_frames,
    faceless_frames, undriven_frames, warnings}."""
    import tempfile

    from tqdm import tqdm

    from synclipmae import __version__
    from synclipmae.media.decode import MediaError, _resample, probe

    if (audio_path is None) == (driving_path is None):
        raise ValueError("give exactly one of audio_path (audio-driven) or driving_path (video-driven)")
    out = Path(out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ValueError(f"{out.name}: the dubbed video must be one of {', '.join(OUT_SUFFIXES)}")
    fps, spf = TIMING.fps, TIMING.samples_per_frame
    record = {"input": str(video), "status": "ok", "error": None, "output": None,
              "mode": "audio" if audio_path is not None else "video", "driving": str(audio_path or driving_path),
              "model": model_name, "version": __version__, "backend": None, "fps_in": None, "source_frames": 0,
              "frames": 0, "seconds": 0.0, "looped": False, "trimmed": False, "dubbed_frames": 0,
              "faceless_frames": 0, "undriven_frames": 0, "warnings": []}
    name = Path(video).name
    d_name = Path(driving_path or audio_path).name
    show = None if progress else True  # tqdm: None draws on a terminal only
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    try:
        with tempfile.TemporaryDirectory(prefix="synclipmae-dub-") as spill:
            # cheap checks first: both inputs open and have the streams they need
            if not probe(video)["has_video"]:
                raise MediaError(f"{name}: no video stream (audio only)")
            if audio_path is not None:
                sound, rate, layout = _soundtrack(audio_path, 0.0)                # (C, S) at the file's rate
                if sound.shape[1] == 0:
                    raise MediaError(f"{d_name}: audio stream is empty")
                speech = _resample(sound.mean(axis=0), rate, TIMING.sample_rate)  # (S16,) what the model hears
                num_out = math.ceil(len(speech) / spf)
                speech = np.pad(speech, (0, num_out * spf - len(speech)))
            else:
                info = probe(driving_path)
                if not info["has_video"]:
                    raise MediaError(f"{d_name}: no video stream (the driving video must show a face)")
                if not info["has_audio"]:
                    raise MediaError(f"{d_name}: no audio stream (the dubbed video takes the driving video's "
                                     f"soundtrack)")
            size = dubber.img_size
            with tqdm(desc=f"faces {name}", unit="frame", file=sys.stderr, disable=show) as bar:
                src = find_faces(video, size, backend=backend, masks=True, segment_s=segment_s, bar=bar,
                                 spill=Path(spill) / "video")
            record.update(backend=src.backend, fps_in=round(src.fps_in, 3), source_frames=src.num_frames)
            if src.faceless == src.num_frames:
                raise DubError(f"{name}: no face found in {src.num_frames} frames")
            drv = None
            if driving_path is not None:
                with tqdm(desc=f"faces {d_name}", unit="frame", file=sys.stderr, disable=show) as bar:
                    drv = find_faces(driving_path, size, backend=backend, masks=False, segment_s=segment_s, bar=bar,
                                     spill=Path(spill) / "driving")
                if drv.faceless == drv.num_frames:
                    raise DubError(f"{d_name}: no face found in {drv.num_frames} frames (nothing to drive the mouth)")
                num_out = drv.num_frames
                sound, rate, layout = _soundtrack(driving_path, _video_start(driving_path), num_out / fps)
            order = output_order(num_out, src.num_frames)
            face = src.track[order] >= 0                                                 # (num_out,)
            ok = face & (drv.track >= 0) if drv is not None else face
            record.update(frames=num_out, seconds=round(num_out / fps, 3), looped=num_out > src.num_frames,
                          trimmed=num_out < src.num_frames, faceless_frames=int((~face).sum()),
                          undriven_frames=int((face & ~ok).sum()), dubbed_frames=int(ok.sum()))
            if not ok.any():
                raise DubError(f"{name}: {d_name} shows no face while {name} does: nothing to dub")
            if record["faceless_frames"]:
                record["warnings"].append(f"{record['faceless_frames']} of {num_out} frames show no face in {name}: "
                                          f"copied unchanged")
            if record["undriven_frames"]:
                record["warnings"].append(f"{record['undriven_frames']} frames of {d_name} show no face: those "
                                          f"frames of {name} are copied unchanged")
            with tqdm(total=num_out, desc=f"dub {name}", unit="frame", file=sys.stderr, disable=show) as bar:
                _write_dubbed(video, tmp, dubber, src, order, ok, speech if drv is None else None, drv,
                              (sound, rate, layout), crf, chunk, bar)
            out.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, out)
            record["output"] = str(out)
    except (MediaError, DubError) as err:
        record.update(status="error", error=_one_line(err))
    except Exception as err:  # noqa: BLE001 - a bad file must never print a traceback
        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise
        record.update(status="error", error=f"{name}: {type(err).__name__}: {_one_line(err)}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return record


def _write_dubbed(video, tmp: Path, dubber, src: FaceFrames, order: np.ndarray, ok: np.ndarray,
                  speech: np.ndarray | None, drv: FaceFrames | None, soundtrack: tuple, crf: int, chunk: int,
                  bar) -> None:
    """Generate and write `tmp`: output frame j shows source frame order[j], dubbed where ok[j], driven by
    `speech` float32 [num_out * 640] (16 kHz) or the crops of `drv`. Output frames go in chunks of
    whole generator segments; a run of frames of one face carries its last generated frame over as
    `prev`; a new face (a cut, another track, a frame not dubbed) starts without one."""
    from synclipmae.media.write import VideoWriter
    from synclipmae.models.dubber import dilate_masks, dub_crops

    spf = TIMING.samples_per_frame
    seg = int(dubber.cfg.segment)
    step = max(seg, int(round(chunk / seg)) * seg)
    same_face = np.r_[False, src.track[order[1:]] == src.track[order[:-1]]]       # (num_out,)
    frames = frames_in_order(video, order)
    sound, rate, layout = soundtrack
    tmp.parent.mkdir(parents=True, exist_ok=True)
    prev = None
    with VideoWriter(tmp, TIMING.fps, audio=sound, sample_rate=rate, layout=layout, crf=crf) as writer:
        for c0 in range(0, len(order), step):
            c1 = min(len(order), c0 + step)
            gen = {}                                                                 # output frame -> (crop, mask)
            j = c0
            while j < c1:
                if not ok[j]:
                    prev, j = None, j + 1
                    continue
                a = j
                if not same_face[a]:
                    prev = None
                while j + 1 < c1 and ok[j + 1] and same_face[j + 1]:
                    j += 1
                b, j = j + 1, j + 1
                idx = order[a:b]
                masks = dilate_masks(src.mouth[idx], dubber.cfg.mask_dilation)      # the region repainted
                drive = {"audio": speech[a * spf:b * spf]} if drv is None else {"driving": drv.crops[np.arange(a, b)]}
                made = dub_crops(dubber, src.crops[idx], masks, prev=prev, **drive)
                prev = made[-1]
                gen.update((a + k, (made[k], masks[k])) for k in range(b - a))
            for j in range(c0, c1):
                frame = next(frames)
                if j in gen:
                    frame = paste_crop(frame, *gen[j], src.rects[order[j]])
                writer.write(frame)
                bar.update(1)
