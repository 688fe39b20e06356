"""The real-video pipeline: a file -> segments -> face tracks -> framed crops + audio on the video's
timeline (DESIGN §4). `sync`, `embed`, `probe`, `prepare` and `dub` all read video through it.

The stages, in order (each re-usable):
  1. `expand_inputs`: files, folders and text lists -> a flat list of paths.
  2. `segment_windows`: a file longer than 1.5 x `SEGMENT_S` seconds is read in segments of
     `SEGMENT_S` seconds (memory is bounded by one segment); a face track never crosses a boundary.
  3. `decode_segment` + `track_segment`: a segment decoded at `DETECT_SIDE` px and its face tracks;
     `decode_and_track` runs the two overlapped (faces are detected while the segment decodes).
  4. `model_framing`: each track framed like a SynthTalk frame (`CROP_FRAMING`).
  5. `crop_pieces`: the crops at the model's size (from a streamed re-read at a higher resolution
     when a face is too small in the detection copy).
  6. Two ways to read a whole file:
     - `iter_face_segments`: every face track of each segment (`FaceSegment` of `TrackClip`s) with
       the segment's 16 kHz mono audio: what sync, embed, probe and prepare score or store.
     - `main_face_frames`: per frame, the face of the longest track present (`FaceFrames`), with the
       crop's rectangle in source pixels: what dub repaints and pastes back.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synclipmae.errors import one_line
from synclipmae.media.decode import Decoded, MediaError, decode, iter_frames, probe
from synclipmae.media.faces import FaceDetector, track_faces
from synclipmae.media.tracks import FaceResult, FaceTrack, box_iou, crop_square
from synclipmae.timing import TIMING

__all__ = ["CROP_FRAMING", "DETECT_SIDE", "SEGMENT_S", "VIDEO_EXTENSIONS", "FaceError", "TrackClip", "FaceSegment",
           "FaceFrames", "Stacked", "expand_inputs", "segment_windows", "quiet_native_stderr", "model_framing",
           "crop_pieces", "decode_segment", "track_segment", "decode_and_track", "iter_face_segments", "main_face_frames",
           "errors_into"]

# How a face track is framed for the model, per detector backend: (margin, lift). The square crop is
# centred `lift` box sides above the box centre with side = longer box side * (1 + 2 * margin).
# Pretraining sees whole SynthTalk frames (the face fills most of them), so these are measured on
# SynthTalk itself: 24 test clips (1200 frames) written to mp4, decoded and tracked; the crop that
# reproduces the original 96x96 frame has, at the median, side = 1.61 box sides (margin 0.305) and
# centre 0.098 box sides above the detector box's (mediapipe boxes start at the brows; SynthTalk
# frames show the forehead and hair). On 12 other clips the crop square's IoU with the original frame
# is 0.925 with (0.30, 0.10) against 0.813 with FaceTrack's generic default (0.25, 0), and the
# re-crop's PSNR against the original frame 18.7 dB against 15.8 dB (the rest is head motion, which
# the tracked crop follows and the fixed SynthTalk frame does not). Haar boxes (the fallback) sit
# lower and are larger: median side 1.40 box sides, centre 0.036 sides higher.
CROP_FRAMING = {"mediapipe": (0.30, 0.10), "haar": (0.20, 0.04)}
DETECT_SIDE = 480            # default: frames are decoded for face detection with max(H, W) <= 480 px
SEGMENT_S = 60.0             # default: a file longer than 1.5 x 60 s is read in 60 s segments (bounded
                             # memory); a face track never crosses a segment boundary
DETECT_AHEAD = 16            # default: decoded frames that may wait for the face detector (bounded memory)
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".ts",
                    ".mts", ".3gp")


class FaceError(Exception):
    """A one-line, user-facing reason a file gives nothing to work on (no face, every track too short,
    ...); starts with the file name."""


# ----------------------------------------------------------------------------------------------------
# 1-2. inputs and segments


def expand_inputs(inputs) -> list[Path]:
    """Files, folders (every video file below them, sorted) and text lists (`.txt`/`.lst`/`.list`:
    one path per line, relative paths from the list's folder, `#` comments) -> a flat list of paths,
    in the given order. Paths that do not exist are kept, so they are reported as failures."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file() and p.suffix.lower() in (".txt", ".lst", ".list"):
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line).expanduser()
                    out += expand_inputs([q if q.is_absolute() else p.parent / q])
        else:
            out.append(p)
    return out


def segment_windows(duration_s: float | None, segment_s: float = SEGMENT_S) -> list[tuple[float, float | None]]:
    """(start_s, duration_s or None for 'to the end') windows covering a file of `duration_s` seconds."""
    if duration_s is None or duration_s <= 1.5 * segment_s:
        return [(0.0, None)]
    n = int(np.ceil(duration_s / segment_s))
    return [(i * segment_s, None if i == n - 1 else segment_s) for i in range(n)]


def _place_audio(audio: np.ndarray, start_frame: int, num_frames: int) -> np.ndarray:
    """float32 [num_frames * spf]: `audio` (starting at frame 0 of the video) for the segment, zeros past its end."""
    spf = TIMING.samples_per_frame
    out = np.zeros(num_frames * spf, np.float32)
    piece = audio[start_frame * spf:(start_frame + num_frames) * spf]
    out[:len(piece)] = piece
    return out


def _check_video(path, info: dict) -> None:
    if not info["has_video"]:
        raise MediaError(f"{Path(path).name}: no video stream (audio only)")


# ----------------------------------------------------------------------------------------------------
# 3. a segment: decoded at detection size, faces tracked


@contextlib.contextmanager
def errors_into(record: dict, path):
    """Any exception inside becomes the file's record's one-line `error` (status "error"): a bad file
    must never stop a batch or print a traceback. SYNCLIPMAE_DEBUG=1 re-raises what is not a
    MediaError or FaceError."""
    try:
        yield
    except (MediaError, FaceError) as err:
        record.update(status="error", error=one_line(err))
    except Exception as err:  # noqa: BLE001
        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise
        record.update(status="error", error=f"{Path(path).name}: {type(err).__name__}: {one_line(err)}")


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True):
    """Send what native code writes to file descriptor 2 to /dev/null for the duration: mediapipe's
    C++ and TFLite log INFO/WARNING lines there when their graphs start, which no environment variable
    reliably turns off, and stderr is where our one-line errors and progress bars go."""
    if not enabled:
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def decode_segment(path, i: int, start_s: float, duration_s: float | None, detect_side: int = DETECT_SIDE,
                   with_audio: bool = False, min_frames: int = 1, on_frame=None) -> Decoded | None:
    """Segment i of `segment_windows` decoded with max(H, W) <= detect_side (its audio when
    `with_audio`, then required). None: a segment after the first has no frames (the container's
    duration overstated the video). on_frame: see `decode`."""
    try:
        return decode(path, max_side=detect_side, start_s=start_s, duration_s=duration_s, need_audio=with_audio,
                      with_audio=with_audio, min_frames=min_frames if i == 0 else 1, on_frame=on_frame)
    except MediaError as err:
        if i > 0 and "no video frames" in str(err):
            return None
        raise


def track_segment(d: Decoded, backend: str = "auto", landmarks: bool = False, min_track_frames: int = 10,
                  quiet: bool = True) -> FaceResult:
    """The face tracks of a decoded segment (`track_faces`), the detector's native log lines silenced
    when `quiet`."""
    with quiet_native_stderr(quiet):
        return track_faces(d.frames, backend=backend, landmarks=landmarks, min_track_frames=min_track_frames)


class _Stop(Exception):
    """Raised in the decoding thread when the detecting side has stopped (it failed)."""


def decode_and_track(path, i: int, start_s: float, duration_s: float | None, detect_side: int = DETECT_SIDE,
                     with_audio: bool = False, min_frames: int = 1, backend: str = "auto", landmarks: bool = False,
                     min_track_frames: int = 10, quiet: bool = True) -> tuple[Decoded | None, FaceResult | None]:
    """`decode_segment` and `track_segment` overlapped: the segment decodes on a thread while this one
    runs the face detector on each frame as it arrives (FFmpeg releases the GIL), then links, fills
    and smooths the tracks. The same result as the two in a row; (None, None) where decode_segment
    gives None. At most DETECT_AHEAD decoded frames wait for the detector (bounded memory)."""
    ready: queue.Queue = queue.Queue(DETECT_AHEAD)
    stop = threading.Event()

    def feed(frame):
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(frame, timeout=0.1)
                return
        raise _Stop

    def run():
        try:
            return decode_segment(path, i, start_s, duration_s, detect_side, with_audio, min_frames, on_frame=feed)
        finally:
            ready.put(None)  # the end of the frames (there is always room: the detector drains the queue)

    found = {}
    with quiet_native_stderr(quiet), ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
        decoding = pool.submit(run)
        try:
            with FaceDetector(backend) as det:
                for t in itertools.count():
                    frame = ready.get()
                    if frame is None:
                        break
                    if t % det.every == 0:
                        found[t] = det(frame)
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:  # free the decoding thread if it waits for room
                    ready.get_nowait()
        d = decoding.result()
        if d is None:
            return None, None
        return d, track_faces(d.frames, backend=backend, landmarks=landmarks, min_track_frames=min_track_frames,
                              detections=found)


# ----------------------------------------------------------------------------------------------------
# 4-5. framing and crops


def model_framing(track: FaceTrack, backend: str) -> tuple[FaceTrack, float]:
    """(FaceTrack with its boxes lifted, margin): pass both to `crops(frames, size, margin)` and
    `masks(size, margin)` to get the crop the model was trained on (see CROP_FRAMING)."""
    margin, lift = CROP_FRAMING.get(backend, CROP_FRAMING["mediapipe"])
    b = track.boxes.astype(np.float64).copy()
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    b[:, 1] -= lift * side
    b[:, 3] -= lift * side
    return FaceTrack(track.track, track.start_frame, track.end_frame, b.astype(np.float32), track.landmarks,
                     track.detected), margin


def crop_pieces(path, d: Decoded, framed: list, size: int, start_s: float, duration_s: float | None) -> list:
    """Crop face pieces at `size` px.

    d: the segment decoded at detection size; framed: [(FaceTrack, margin)] from `model_framing`,
    whole tracks or parts of them, boxes in pixels of d.frames. Returns per piece (crops uint8
    [n, size, size, 3], rects float [n, 4]: each crop's square as x0, y0, width, height in pixels of
    the source video; NaN where no frame could be read). A piece whose crop is smaller than `size` in
    the detection copy, while the source is larger, is cropped from a streamed re-read at the
    resolution that brings the smallest such face to `size`; a re-read that comes up short repeats the
    piece's last crop."""
    W, H = int(d.meta["width"]), int(d.meta["height"])
    out, small = [], {}
    for k, (piece, margin) in enumerate(framed):
        squares = piece.crop_squares(margin).astype(np.float64)                 # (n, 3) cx, cy, side
        out.append((np.zeros((len(piece), size, size, 3), np.uint8), np.full((len(piece), 4), np.nan)))
        if np.median(squares[:, 2]) < size and d.meta["scale"] < 0.999:
            small[k] = squares
            continue
        for i, square in enumerate(squares):
            _crop_into(out[k], i, d.frames[piece.start_frame + i], square, size, W, H)
    if small:
        need = size / min(float(np.median(sq[:, 2])) for sq in small.values())
        hi_side = int(min(max(W, H), np.ceil(max(d.frames.shape[1:3]) * need / 16) * 16))
        read = 0
        for t, frame in enumerate(iter_frames(path, max_side=hi_side, start_s=start_s, duration_s=duration_s)):
            if t >= d.num_frames:
                break
            read, f = t + 1, frame.shape[1] / d.frames.shape[2]                # f: hi-res px per detection px
            for k, squares in small.items():
                i = t - framed[k][0].start_frame
                if 0 <= i < len(squares):
                    _crop_into(out[k], i, frame, squares[i] * f, size, W, H)
        for k in small:
            crops, rects = out[k]
            last = min(len(crops), max(0, read - framed[k][0].start_frame))
            if 0 < last < len(crops):
                crops[last:], rects[last:] = crops[last - 1], rects[last - 1]
    return out


def _crop_into(out: tuple, i: int, frame: np.ndarray, square, size: int, W: int, H: int) -> None:
    """Crop `frame` at square (cx, cy, side) into row i of out = (crops, rects); rects in pixels of
    the W x H source video."""
    crops, rects = out
    crops[i], (x0, y0, s) = crop_square(frame, *square, size)
    kx, ky = W / frame.shape[1], H / frame.shape[0]
    rects[i] = x0 * kx, y0 * ky, s * kx, s * ky


# ----------------------------------------------------------------------------------------------------
# 6a. every face track of each segment, with the segment's audio


@dataclass
class TrackClip:
    """One face track of a segment, cropped for the model. Frame indices are on the file's
    TIMING.fps timeline (end exclusive)."""
    track: int
    start_frame: int
    end_frame: int
    crops: np.ndarray                    # uint8 [N, S, S, 3]
    face_mask: np.ndarray | None = None  # bool [N, S, S] (with masks=True)
    mouth_mask: np.ndarray | None = None  # bool [N, S, S]

    def __len__(self) -> int:
        return self.end_frame - self.start_frame


@dataclass
class FaceSegment:
    """A stretch of a file read for the model."""
    start_frame: int          # first frame of the segment on the file's timeline
    num_frames: int
    audio: np.ndarray | None  # float32 [num_frames * samples_per_frame], 16 kHz mono
    tracks: list              # [TrackClip]
    faceless_frames: int
    backend: str
    fps_in: float
    meta: dict                # decode's meta for the segment


def iter_face_segments(path, size: int, audio: np.ndarray | None = None, need_audio: bool = True,
                       masks: bool = False, min_frames: int = 1, backend: str = "auto",
                       segment_s: float = SEGMENT_S, detect_side: int = DETECT_SIDE,
                       min_track_frames: int = 10, quiet: bool = True, no_audio_hint: str = ""):
    """Yield the `FaceSegment`s of a video file: face tracks cropped at `size` px, framed like
    SynthTalk frames (CROP_FRAMING), with the segment's 16 kHz mono audio.

    audio: float32 [S] at 16 kHz to use instead of the file's soundtrack (sample 0 = first frame).
    need_audio: a file without an audio stream (and no `audio`) is a MediaError (`no_audio_hint` is
        appended to its message).
    masks: also compute face / lower-face masks (runs the face mesh; slower).
    min_frames: a file with fewer frames (at TIMING.fps) is a MediaError ("too short").
    quiet: silence the face detector's native log lines on stderr (`quiet_native_stderr`).
    Raises `MediaError` for unusable files; faceless frames are only counted."""
    info = probe(path)
    _check_video(path, info)
    if audio is None and need_audio and not info["has_audio"]:
        raise MediaError(f"{Path(path).name}: no audio stream{no_audio_hint}")
    use_file_audio = audio is None and info["has_audio"]
    start_frame = 0
    for i, (start_s, dur) in enumerate(segment_windows(info.get("duration_s"), segment_s)):
        d, faces = decode_and_track(path, i, start_s, dur, detect_side, with_audio=use_file_audio,
                                    min_frames=min_frames, backend=backend, landmarks=masks,
                                    min_track_frames=min_track_frames, quiet=quiet)
        if d is None:
            break
        T, fps_in = d.num_frames, d.fps_in
        meta = {**d.meta, "audio_mismatch_frames": d.audio_mismatch_frames}
        seg_audio = d.audio if use_file_audio else (_place_audio(audio, start_frame, T) if audio is not None else None)
        framed = [model_framing(tr, faces.backend) for tr in faces.tracks]
        cropped = crop_pieces(path, d, framed, size, start_s, dur)
        d = None  # the segment's frames are no longer needed
        out = []
        for (tr, margin), (crops, _) in sorted(zip(framed, cropped), key=lambda x: x[0][0].track):
            fm = mm = None
            if masks:
                fm, mm = tr.masks(size, margin)
            out.append(TrackClip(tr.track, start_frame + tr.start_frame, start_frame + tr.end_frame, crops, fm, mm))
        yield FaceSegment(start_frame=start_frame, num_frames=T, audio=seg_audio, tracks=out,
                          faceless_frames=faces.faceless_frames, backend=faces.backend, fps_in=fps_in, meta=meta)
        start_frame += T


# ----------------------------------------------------------------------------------------------------
# 6b. one face per frame: the longest track present, with the crop's place in the source frame


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


def _rect_box(rect: np.ndarray) -> np.ndarray:
    """x0, y0, w, h -> [1, 4] x0, y0, x1, y1 (the box format of `box_iou`)."""
    return np.array([[rect[0], rect[1], rect[0] + rect[2], rect[1] + rect[3]]], np.float64)


def main_face_frames(path, size: int, backend: str = "auto", masks: bool = True, segment_s: float = SEGMENT_S,
                     detect_side: int = DETECT_SIDE, bar=None, quiet: bool = True,
                     spill: Path | None = None) -> FaceFrames:
    """Decode `path` at `detect_side` px in segments, track faces, and crop the main face of each
    frame at `size` px with the model's framing (from a streamed higher-resolution re-read where the
    face is smaller than `size` in the detection copy, as `iter_face_segments` does). masks: also the
    lower-face mask of each crop (runs the face mesh). bar: a tqdm bar advanced by the frames read.
    spill: a folder where the crops and masks of a video read in several segments are kept
    (memory-mapped), so memory does not grow with the video's length. Raises MediaError for unusable
    files; frames without a face are only marked (track -1)."""
    info = probe(path)
    _check_video(path, info)
    parts: list[dict] = []
    next_id = 0
    backend_used, fps_in, W, H = backend, 0.0, 0, 0
    segments = segment_windows(info.get("duration_s"), segment_s)
    spill = spill if len(segments) > 1 else None
    for i, (start_s, dur) in enumerate(segments):
        d, faces = decode_and_track(path, i, start_s, dur, detect_side, backend=backend, landmarks=masks,
                                    quiet=quiet)
        if d is None:
            break
        T, fps_in = d.num_frames, d.fps_in
        W, H = int(d.meta["width"]), int(d.meta["height"])
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
            if (prev["track"][-1] >= 0 and cur["track"][0] >= 0
                    and box_iou(_rect_box(prev["rects"][-1]), _rect_box(cur["rects"][0]))[0, 0] >= 0.5):
                cur["track"][cur["track"] == cur["track"][0]] = prev["track"][-1]
        if bar is not None:
            bar.update(T)

    def join(key):
        return parts[0][key] if len(parts) == 1 else Stacked([p[key] for p in parts])

    return FaceFrames(num_frames=sum(len(p["track"]) for p in parts), fps_in=fps_in, width=W, height=H,
                      backend=backend_used, track=np.concatenate([p["track"] for p in parts]), crops=join("crops"),
                      mouth=join("mouth") if masks else None, rects=np.concatenate([p["rects"] for p in parts]))
