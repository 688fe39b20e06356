"""Find, track and crop faces in a clip on the `TIMING.fps` timeline (DESIGN §4 media/faces.py).

Stages, in order (each a function that takes what it uses):

1. `detect_faces`: per-frame face boxes on a downscaled copy of the frames (`max_side`), optionally on
   every k-th frame only. Backends: mediapipe 0.10.21 BlazeFace (`mediapipe.solutions.face_detection`,
   short-range model with the full-range model as a second try; the models ship inside the wheel, so
   it works offline) or OpenCV's bundled Haar cascade when mediapipe is not importable.
2. `_shot_cuts`: shot changes, from large jumps of the mean absolute difference of tiny grey thumbnails.
3. `_link`: detections are linked into tracks by IoU (or centre distance for fast motion); a track
   survives gaps of at most `max_gap` frames (bridged by linear interpolation), longer gaps and shot
   cuts end it; several faces give several tracks; tracks shorter than `min_track_frames` are dropped.
4. `_smooth`: zero-phase Gaussian smoothing of box centre and log-size over time.
5. `_mesh_landmarks` (mediapipe only): the 468-point face mesh run on a stabilised crop of each track
   (its tracking mode, so it is cheap), mapped back to frame pixels and lightly smoothed.

Frames where no track is present are counted in `FaceResult.faceless_frames`; they are never an error.
`FaceTrack.crops` and `FaceTrack.masks` (media/tracks.py, with the box geometry) give square face
crops and the matching face / lower-face masks. Boxes and landmarks are in pixels of the frames given
to `track_faces`; `FaceTrack.scaled` maps them to another resolution of the same video (e.g. detect
at `decode(max_side=480)`, crop from full-resolution frames).

OpenCV (`pip install 'synclipmae[faces]'`) is needed for detection; mediapipe is optional
(`pip install --no-deps mediapipe==0.10.21` plus `protobuf>=4.25.3,<5 absl-py attrs flatbuffers`).
"""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from synclipmae.media.tracks import (FACES_EXTRA, MESH_POINTS, FaceResult, FaceTrack, box_area, box_iou, crop_square,
                                     import_cv2, resize_image)

__all__ = ["FaceDetector", "detect_faces", "track_faces", "available_backends"]

MEDIAPIPE_EXTRA = ("pip install --no-deps mediapipe==0.10.21 && "
                   "pip install 'protobuf>=4.25.3,<5' absl-py attrs flatbuffers")

# per backend (default): side of the downscaled copy detection runs on, detect every k-th frame,
# threshold on each detection's score, threshold on the median detection score of a track. BlazeFace
# takes ~1 ms a frame; the Haar cascade ~30 ms at 320 px and its false positives have low level weights.
_BACKEND_DEFAULTS = {
    "mediapipe": {"max_side": 480, "detect_every": 1, "min_score": 0.5, "min_track_score": 0.5},
    "haar": {"max_side": 320, "detect_every": 2, "min_score": float("-inf"), "min_track_score": 2.0},
}


# ----------------------------------------------------------------------------------------------------
# optional dependencies


def _import_mediapipe(out: list) -> None:
    try:
        import mediapipe.python.solutions.face_detection  # noqa: F401, PLC0415
        import mediapipe.python.solutions.face_mesh  # noqa: F401, PLC0415
        from mediapipe.python import solutions  # noqa: PLC0415
    except Exception:  # ImportError, or a binary incompatibility raised as another error
        return
    out.append(solutions)


def _mediapipe_solutions():
    """The `mediapipe.solutions` module, or None when mediapipe cannot be imported.

    The import runs on a thread of its own. mediapipe keeps an ImportError it catches while importing
    (`audio_record.sd_error`, sounddevice missing), and that error's traceback holds every frame of the
    stack that imported mediapipe: imported from `track_faces`, it kept the first segment's decoded
    frames (hundreds of MB) alive for the life of the process (issue 22). A thread's stack holds none."""
    out: list = []
    loader = threading.Thread(target=_import_mediapipe, args=(out,), name="import-mediapipe")
    loader.start()
    loader.join()
    return out[0] if out else None


def available_backends() -> list[str]:
    """Backends that can run here, best first: "mediapipe", "haar"."""
    out = []
    if _mediapipe_solutions() is not None:
        out.append("mediapipe")
    with contextlib.suppress(ImportError):
        import_cv2()
        out.append("haar")
    return out


def _resolve_backend(backend: str) -> str:
    if backend not in ("auto", "mediapipe", "haar"):
        raise ValueError(f"backend must be 'auto', 'mediapipe' or 'haar', got {backend!r}")
    import_cv2()  # both backends resize with OpenCV
    if backend == "auto":
        return "mediapipe" if _mediapipe_solutions() is not None else "haar"
    if backend == "mediapipe" and _mediapipe_solutions() is None:
        raise ImportError(f"backend='mediapipe' but mediapipe cannot be imported: {MEDIAPIPE_EXTRA}")
    return backend


# ----------------------------------------------------------------------------------------------------
# 1. detection


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float = 0.3) -> np.ndarray:
    order = np.argsort(-scores)
    keep: list[int] = []
    for i in order:
        if not keep or box_iou(boxes[i:i + 1], boxes[keep]).max() < thr:
            keep.append(int(i))
    return np.array(keep, dtype=np.int64)


class _MediapipeDetector:
    """BlazeFace short-range model; the full-range model is tried on frames where it finds nothing."""

    def __init__(self, min_score: float):
        sol = _mediapipe_solutions()
        self.short = sol.face_detection.FaceDetection(model_selection=0, min_detection_confidence=min_score)
        self.full = sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_score)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H, W = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        res = self.short.process(rgb)
        if not res.detections:
            res = self.full.process(rgb)
        boxes, scores = [], []
        for det in res.detections or []:
            bb = det.location_data.relative_bounding_box
            boxes.append([bb.xmin * W, bb.ymin * H, (bb.xmin + bb.width) * W, (bb.ymin + bb.height) * H])
            scores.append(det.score[0] if det.score else 1.0)
        return np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)

    def close(self) -> None:
        self.short.close()
        self.full.close()


class _HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade; the score is the cascade's level weight."""

    def __init__(self, min_score: float):
        cv2 = import_cv2()
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ImportError(f"OpenCV's Haar cascade is missing ({path}); {FACES_EXTRA}")
        self.cv2 = cv2
        self.min_score = min_score

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self.cv2
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        m = max(20, int(0.05 * min(gray.shape)))
        rects, _, weights = self.cascade.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=5, minSize=(m, m),
                                                           outputRejectLevels=True)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        r = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], axis=1)
        scores = np.asarray(weights, np.float32).reshape(-1)
        # Haar boxes are square and sit higher than BlazeFace's: move them down to cover the chin
        boxes[:, [1, 3]] += 0.08 * r[:, 3:4]
        keep = _nms(boxes, scores)
        return boxes[keep], scores[keep]

    def close(self) -> None:
        pass


def _haar_has_eyes(frames: np.ndarray, boxes: np.ndarray, samples: int = 8, min_hits: int = 2) -> bool:
    """Haar false positives (necks, shirts, shelves) rarely contain eyes: look for them with OpenCV's
    eye cascade in the upper part of the box on `samples` frames spread over the track."""
    cv2 = import_cv2()
    eye = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_eye.xml"))
    if eye.empty():
        return True
    hits = 0
    for i in np.linspace(0, len(boxes) - 1, min(samples, len(boxes))).round().astype(int):
        x0, y0, x1, y1 = boxes[i]
        crop = crop_square(frames[i], (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0), 128)[0]
        gray = cv2.equalizeHist(cv2.cvtColor(crop[:72], cv2.COLOR_RGB2GRAY))  # upper 56%: the eye band
        hits += len(eye.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(12, 12))) > 0
        if hits >= min_hits:
            return True
    return False


def _make_detector(backend: str, min_score: float):
    return _MediapipeDetector(min_score) if backend == "mediapipe" else _HaarDetector(min_score)


def _small_frame(frame: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    H, W = frame.shape[:2]
    if max_side is None or max(H, W) <= max_side:
        return np.ascontiguousarray(frame), 1.0
    s = max_side / max(H, W)
    return resize_image(frame, max(1, round(W * s)), max(1, round(H * s))), s


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3] RGB, got {frames.dtype} {frames.shape}")
    return frames


class FaceDetector:
    """Stage 1 one frame at a time: `det(frame)` -> (boxes float32 [n, 4] x0, y0, x1, y1 in pixels of
    `frame`, scores [n]) with a backend's defaults (see `detect_faces`). `every`: the backend's
    default k of detect-every-k-th-frame. A context manager (closes the backend's graphs).
    `track_faces(..., detections=)` takes what it found, so a caller can detect the first frames of a
    clip while the rest decode (`media.pipeline.decode_and_track`)."""

    def __init__(self, backend: str = "auto", max_side: int | None = None, min_score: float | None = None):
        self.backend = _resolve_backend(backend)
        d = _BACKEND_DEFAULTS[self.backend]
        self.max_side = d["max_side"] if max_side is None else max_side
        self.min_score = d["min_score"] if min_score is None else min_score
        self.every = d["detect_every"]
        self.detector = _make_detector(self.backend, max(0.05, min(self.min_score, 1.0)))

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small, s = _small_frame(frame, self.max_side)
        boxes, scores = self.detector(small)
        keep = scores >= self.min_score
        return boxes[keep] / s, scores[keep]

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _detect(frames: np.ndarray, which: list[int], backend: str, max_side: int | None,
            min_score: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{frame index: (boxes [n, 4] in frame pixels, scores [n])} for the frames in `which`."""
    with FaceDetector(backend, max_side, min_score) as det:
        return {t: det(frames[t]) for t in which}


def detect_faces(frames: np.ndarray, backend: str = "auto", detect_every: int = 1, max_side: int | None = None,
                 min_score: float | None = None) -> list[np.ndarray | None]:
    """Face boxes per frame: a list of T float32 [n, 4] arrays (x0, y0, x1, y1 in pixels of `frames`,
    n = 0 when no face was found), None for frames skipped because of `detect_every`.

    backend: "auto" (mediapipe if importable, else Haar), "mediapipe" or "haar".
    max_side: detection runs on a copy downscaled so that max(H, W) <= max_side (None: 480 for
        mediapipe, 320 for Haar).
    min_score: minimum detection score (None: 0.5 for mediapipe's confidence; Haar keeps all).
    `track_faces` links, fills and smooths these boxes."""
    frames = _check_frames(frames)
    backend = _resolve_backend(backend)
    d = _BACKEND_DEFAULTS[backend]
    max_side = d["max_side"] if max_side is None else max_side
    min_score = d["min_score"] if min_score is None else min_score
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    which = list(range(0, len(frames), detect_every))
    dets = _detect(frames, which, backend, max_side, min_score)
    return [dets[t][0].astype(np.float32) if t in dets else None for t in range(len(frames))]


# ----------------------------------------------------------------------------------------------------
# 2. shot cuts


def _shot_cuts(frames: np.ndarray, threshold: float) -> list[int]:
    """Frames t where a new shot starts: the mean absolute difference of 32x32 grey thumbnails
    jumps above `threshold` (0-255 scale) and above 4x its local median."""
    if len(frames) < 2 or threshold <= 0:
        return []
    thumbs = np.stack([resize_image(np.ascontiguousarray(f), 32, 32).mean(axis=2) for f in frames])  # (T, 32, 32)
    d = np.abs(np.diff(thumbs, axis=0)).mean(axis=(1, 2))       # (T-1,) d[t-1] = change into frame t
    cuts = []
    for i, v in enumerate(d):
        local = np.median(d[max(0, i - 12):i + 13])
        if v > threshold and v > 4 * local + 1:
            cuts.append(i + 1)
    return cuts


# ----------------------------------------------------------------------------------------------------
# 3. linking


@dataclass
class _Obs:
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def _link(dets: dict[int, tuple[np.ndarray, np.ndarray]], shots: list[tuple[int, int]], max_gap: int,
          iou_threshold: float) -> list[_Obs]:
    """Greedy frame-to-frame association within each shot."""
    done: list[_Obs] = []
    for s0, s1 in shots:
        active: list[_Obs] = []
        for t in sorted(k for k in dets if s0 <= k < s1):
            boxes, scores = dets[t]
            still = []
            for tr in active:  # tracks unseen for too long end here
                (still if t - tr.frames[-1] - 1 <= max_gap else done).append(tr)
            active = still
            used_t, used_d = set(), set()
            if active and len(boxes):
                last = np.stack([tr.boxes[-1] for tr in active])
                score = box_iou(last, boxes)
                # centre distance relative to size rescues fast motion with little overlap
                lc = (last[:, :2] + last[:, 2:]) / 2
                dc = (boxes[:, :2] + boxes[:, 2:]) / 2
                lsize = np.sqrt(box_area(last))[:, None]
                dsize = np.sqrt(box_area(boxes))[None, :]
                dist = np.linalg.norm(lc[:, None] - dc[None], axis=2) / np.maximum(lsize, 1e-6)
                similar = (dsize / np.maximum(lsize, 1e-6) > 0.6) & (dsize / np.maximum(lsize, 1e-6) < 1.6)
                score = np.where((score < iou_threshold) & (dist < 0.5) & similar, iou_threshold, score)
                for flat in np.argsort(-score, axis=None):
                    i, j = np.unravel_index(flat, score.shape)
                    if score[i, j] < iou_threshold:
                        break
                    if i in used_t or j in used_d:
                        continue
                    active[i].frames.append(t)
                    active[i].boxes.append(boxes[j])
                    active[i].scores.append(float(scores[j]))
                    used_t.add(i)
                    used_d.add(j)
            for j in range(len(boxes)):
                if j not in used_d:
                    active.append(_Obs([t], [boxes[j]], [float(scores[j])]))
        done.extend(active)
    return done


# ----------------------------------------------------------------------------------------------------
# 4. filling and smoothing


def _fill(obs: _Obs) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(start, end, boxes [N, 4], detected [N]) with boxes linearly interpolated between observations."""
    f = np.array(obs.frames)
    b = np.stack(obs.boxes).astype(np.float64)
    start, end = int(f[0]), int(f[-1]) + 1
    grid = np.arange(start, end)
    boxes = np.stack([np.interp(grid, f, b[:, k]) for k in range(4)], axis=1)
    detected = np.zeros(end - start, bool)
    detected[f - start] = True
    return start, end, boxes, detected


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(x) < 2:
        return x
    from scipy.ndimage import gaussian_filter1d  # noqa: PLC0415

    return gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def _smooth_boxes(boxes: np.ndarray, sigma_centre: float, sigma_size: float) -> np.ndarray:
    """Zero-phase smoothing of centre and log width / height (so scale changes smooth evenly)."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = np.log(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-3))
    c, wh = _gauss(c, sigma_centre), np.exp(_gauss(wh, sigma_size))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def _drop_nested(tracks: list[FaceTrack], thr: float = 0.5) -> list[FaceTrack]:
    """Drop a track when, over the frames it shares with a longer track, its box lies mostly inside
    the other's (a second detection of the same face, e.g. the Haar cascade's inner boxes)."""
    kept: list[FaceTrack] = []
    for tr in sorted(tracks, key=len, reverse=True):
        nested = False
        for big in kept:
            a, b = max(tr.start_frame, big.start_frame), min(tr.end_frame, big.end_frame)
            if b <= a:
                continue
            x = tr.boxes[a - tr.start_frame:b - tr.start_frame]
            y = big.boxes[a - big.start_frame:b - big.start_frame]
            iw = np.clip(np.minimum(x[:, 2], y[:, 2]) - np.maximum(x[:, 0], y[:, 0]), 0, None)
            ih = np.clip(np.minimum(x[:, 3], y[:, 3]) - np.maximum(x[:, 1], y[:, 1]), 0, None)
            inside = iw * ih / np.maximum(np.minimum(box_area(x), box_area(y)), 1e-6)
            if float(inside.mean()) > thr:
                nested = True
                break
        if not nested:
            kept.append(tr)
    return kept


# ----------------------------------------------------------------------------------------------------
# 5. landmarks


def _mesh_landmarks(frames: np.ndarray, boxes: np.ndarray, crop_size: int = 256,
                    margin: float = 0.5) -> np.ndarray | None:
    """float64 [N, 468, 2] face-mesh landmarks in frame pixels (gaps interpolated), or None when the
    mesh finds the face in fewer than half of the frames. Runs mediapipe's face mesh in tracking mode
    on a crop that follows the (smoothed) box, so the face stays still in the crop."""
    sol = _mediapipe_solutions()
    n = len(boxes)
    tmp = FaceTrack(0, 0, n, boxes.astype(np.float32))
    squares = tmp.crop_squares(margin).astype(np.float64)
    lm = np.full((n, MESH_POINTS, 2), np.nan)
    with sol.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                min_detection_confidence=0.5, min_tracking_confidence=0.5) as mesh:
        for i in range(n):
            cx, cy, side = squares[i]
            crop = crop_square(frames[i], cx, cy, side, crop_size)[0]
            res = mesh.process(crop)
            if not res.multi_face_landmarks:
                continue
            pts = np.array([(p.x, p.y) for p in res.multi_face_landmarks[0].landmark[:MESH_POINTS]])  # (468, 2)
            s0 = max(1, int(round(side)))
            x0, y0 = round(cx - s0 / 2), round(cy - s0 / 2)
            lm[i] = pts * s0 + np.array([x0, y0])
    ok = np.isfinite(lm[:, 0, 0])
    if ok.sum() < max(1, n / 2):
        return None
    idx = np.flatnonzero(ok)
    grid = np.arange(n)
    flat = lm.reshape(n, -1)
    for k in range(flat.shape[1]):
        flat[:, k] = np.interp(grid, idx, flat[idx, k])
    return flat.reshape(n, MESH_POINTS, 2)


# ----------------------------------------------------------------------------------------------------
# the whole stage


def track_faces(frames: np.ndarray, backend: str = "auto", min_track_frames: int = 10,
                detect_every: int | None = None, max_side: int | None = None, max_gap: int = 8,
                iou_threshold: float = 0.3, min_track_score: float | None = None, smooth_sigma: float = 1.5,
                landmarks: bool = True, shot_threshold: float = 40.0,
                detections: dict | None = None) -> FaceResult:
    """Detect, link, fill and smooth the faces of a clip.

    frames: uint8 [T, H, W, 3] RGB on the `TIMING.fps` timeline (e.g. `decode(...).frames`).
    backend: "auto" (mediapipe if importable, else Haar), "mediapipe" or "haar".
    min_track_frames: tracks shorter than this are dropped (their frames count as faceless).
    detect_every: run the detector on every k-th frame only (plus the first and last frame of every
        shot) and interpolate in between; None: 1 for mediapipe, 2 for Haar.
    max_side: detection runs on a copy downscaled so that max(H, W) <= max_side (None: 480 for
        mediapipe, 320 for Haar).
    max_gap: a track survives up to this many frames without a detection (bridged by interpolation).
    iou_threshold: minimum overlap to link a detection to a track (close centres of similar size also link).
    min_track_score: tracks whose median detection score is lower are dropped (None: 0.5 for
        mediapipe's confidence, 2.0 for the Haar cascade's level weight, which rejects most of its
        false positives). Haar tracks must also show eyes (OpenCV's eye cascade) in 2 of 8 frames.
    smooth_sigma: Gaussian sigma in frames for box centres (sizes use 2x); 0 disables smoothing.
    landmarks: run the mediapipe face mesh on each track (ignored with the Haar backend).
    shot_threshold: mean grey-level jump (0-255) that counts as a shot cut; 0 disables cut detection.
    detections: {frame index: (boxes, scores)} already found by a `FaceDetector` of the same backend
        and max_side (e.g. while the clip decoded); the detector runs only on the other frames it needs.
    """
    frames = _check_frames(frames)
    backend = _resolve_backend(backend)
    d = _BACKEND_DEFAULTS[backend]
    detect_every = d["detect_every"] if detect_every is None else detect_every
    max_side = d["max_side"] if max_side is None else max_side
    min_track_score = d["min_track_score"] if min_track_score is None else min_track_score
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    T = len(frames)
    cuts = _shot_cuts(frames, shot_threshold)
    bounds = [0, *cuts, T]
    shots = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    which = set(range(0, T, detect_every))
    for a, b in shots:
        which.update((a, b - 1))
    known = {t: v for t, v in (detections or {}).items() if t in which}
    todo = sorted(which - known.keys())  # none when every frame was detected while decoding
    dets = {**known, **(_detect(frames, todo, backend, max_side, d["min_score"]) if todo else {})}
    gap = max(max_gap, detect_every)  # a skipped stretch is not a gap
    tracks: list[FaceTrack] = []
    for obs in _link(dets, shots, gap, iou_threshold):
        start, end, boxes, detected = _fill(obs)
        if end - start < min_track_frames or float(np.median(obs.scores)) < min_track_score:
            continue
        if backend == "haar" and not _haar_has_eyes(frames[start:end], boxes):
            continue
        boxes = _smooth_boxes(boxes, smooth_sigma, 2 * smooth_sigma)
        tracks.append(FaceTrack(0, start, end, boxes.astype(np.float32), None, detected))
    tracks = _drop_nested(tracks)
    if landmarks and backend == "mediapipe":
        for tr in tracks:
            lm = _mesh_landmarks(frames[tr.start_frame:tr.end_frame], tr.boxes)
            tr.landmarks = None if lm is None else _gauss(lm, 0.5 * smooth_sigma).astype(np.float32)
    tracks.sort(key=lambda tr: (tr.start_frame, float(tr.boxes[0, 0])))
    covered = np.zeros(T, bool)
    for i, tr in enumerate(tracks):
        tr.track = i
        covered[tr.start_frame:tr.end_frame] = True
    return FaceResult(tracks=tracks, faceless_frames=int(T - covered.sum()), backend=backend, num_frames=T,
                      shot_cuts=cuts)
