"""Face tracks as data, and the crops and masks they give (DESIGN §4 media/).

`FaceTrack` is one face followed through consecutive frames (boxes x0, y0, x1, y1 in frame pixels:
the one box format, `box_iou`), `FaceResult` what `faces.track_faces` returns. `FaceTrack.crops` and
`FaceTrack.masks` give square face crops (`crop_square`) and the matching face / lower-face masks
(the convex hull of the face mesh, or ellipses in the box without it). OpenCV resizes the crops when
it is installed (`import_cv2`), torch otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["FaceTrack", "FaceResult", "box_iou", "box_area", "crop_square", "resize_image", "import_cv2",
           "FACES_EXTRA", "MESH_POINTS"]

FACES_EXTRA = "pip install 'synclipmae[faces]'  (opencv-python-headless>=4.10,<5)"

# mediapipe face-mesh indices (468-point topology): the lower face is the jaw line from one cheek at
# nose height through the chin to the other, closed by the base of the nose
_MESH_LOWER_FACE = (323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58,
                    132, 93, 98, 2, 327)
MESH_POINTS = 468


def import_cv2():
    """The `cv2` module; an ImportError naming the extra to install when OpenCV is missing."""
    try:
        import cv2  # noqa: PLC0415
    except ImportError as err:
        raise ImportError(f"face detection needs OpenCV: {FACES_EXTRA}") from err
    return cv2


# ----------------------------------------------------------------------------------------------------
# results


@dataclass
class FaceTrack:
    """One face followed through consecutive frames [start_frame, end_frame) of the clip."""

    track: int
    start_frame: int
    end_frame: int                   # exclusive
    boxes: np.ndarray                # float32 [N, 4] x0, y0, x1, y1 per frame (smoothed), frame pixels
    landmarks: np.ndarray | None = None  # float32 [N, K, 2] x, y (smoothed) when the mesh ran, else None
    detected: np.ndarray | None = None   # bool [N]: a detector saw the face here (else interpolated)

    def __len__(self) -> int:
        return self.end_frame - self.start_frame

    def scaled(self, factor: float) -> "FaceTrack":
        """The same track in pixels of the video resized by `factor` (e.g. 1 / Decoded.meta["scale"])."""
        lm = None if self.landmarks is None else (self.landmarks * factor).astype(np.float32)
        return FaceTrack(self.track, self.start_frame, self.end_frame, (self.boxes * factor).astype(np.float32),
                         lm, None if self.detected is None else self.detected.copy())

    def crop_squares(self, margin: float = 0.25) -> np.ndarray:
        """float32 [N, 3]: centre x, centre y and side of the square crop of each frame: the box's
        longer side plus `margin` of it on every side."""
        b = self.boxes.astype(np.float64)
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * (1 + 2 * margin)
        return np.stack([cx, cy, np.maximum(side, 1.0)], axis=1).astype(np.float32)

    def crops(self, frames: np.ndarray, size: int, margin: float = 0.25) -> np.ndarray:
        """uint8 [N, size, size, 3] square crops centred on the box, side = longer box side * (1 + 2 margin);
        parts outside the frame are black. `frames` is the whole clip ([T, H, W, 3], T >= end_frame) or
        already this track's frames ([N, H, W, 3])."""
        frames = self._own_frames(frames)
        out = np.zeros((len(self), size, size, 3), np.uint8)
        for i, (cx, cy, side) in enumerate(self.crop_squares(margin)):
            out[i] = crop_square(frames[i], float(cx), float(cy), float(side), size)[0]
        return out

    def masks(self, size: int, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
        """(face_mask, mouth_mask), bool [N, size, size] each, in the coordinates of `crops(size, margin)`.
        With landmarks: the convex hull of the face mesh and of its lower face (nose base to chin);
        without: an ellipse inscribed in the box and its lower part (from 55% of the box height down)."""
        sq = self.crop_squares(margin).astype(np.float64)
        scale = size / sq[:, 2]                                      # crop pixels per frame pixel
        origin = sq[:, :2] - sq[:, 2:3] / 2                          # frame pixel at crop (0, 0)
        face = np.zeros((len(self), size, size), bool)
        mouth = np.zeros((len(self), size, size), bool)
        use_mesh = self.landmarks is not None and self.landmarks.shape[1] >= MESH_POINTS
        for i in range(len(self)):
            if use_mesh:
                pts = (self.landmarks[i].astype(np.float64) - origin[i]) * scale[i]    # (K, 2) crop pixels
                face[i] = _fill_convex(pts, size)
                mouth[i] = _fill_convex(pts[list(_MESH_LOWER_FACE)], size) & face[i]
            else:
                x0, y0, x1, y1 = ((self.boxes[i].astype(np.float64).reshape(2, 2) - origin[i]) * scale[i]).ravel()
                face[i], mouth[i] = _box_masks(x0, y0, x1, y1, size)
        return face, mouth

    def _own_frames(self, frames: np.ndarray) -> np.ndarray:
        n = len(self)
        if len(frames) >= self.end_frame:
            return frames[self.start_frame:self.end_frame]
        if len(frames) == n:
            return frames
        raise ValueError(f"track {self.track} covers frames [{self.start_frame}, {self.end_frame}) but "
                         f"{len(frames)} frames were given")


@dataclass
class FaceResult:
    tracks: list[FaceTrack]
    faceless_frames: int             # frames of the clip covered by no track (skipped and counted)
    backend: str                     # "mediapipe" or "haar"
    num_frames: int = 0              # frames in the clip
    shot_cuts: list[int] = field(default_factory=list)  # first frame of each new shot

    @property
    def face_fraction(self) -> float:
        """Fraction of frames covered by at least one track."""
        return 1.0 - self.faceless_frames / self.num_frames if self.num_frames else 0.0

    def main_track(self) -> FaceTrack | None:
        """The longest track (ties: the one with the larger mean box), or None without tracks."""
        if not self.tracks:
            return None
        return max(self.tracks, key=lambda tr: (len(tr), float(np.mean(box_area(tr.boxes)))))


# ----------------------------------------------------------------------------------------------------
# geometry


def box_area(b: np.ndarray) -> np.ndarray:
    """[..., 4] boxes x0, y0, x1, y1 -> [...] their areas (0 for empty boxes)."""
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n, 4] x [m, 4] -> [n, m] intersection over union of boxes x0, y0, x1, y1 (the one box format)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def resize_image(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """uint8 [H, W, C] -> [h, w, C]: OpenCV (area when shrinking, bilinear when growing), or torch's
    antialiased bilinear without OpenCV."""
    if img.shape[1] == w and img.shape[0] == h:
        return img
    try:
        cv2 = import_cv2()
    except ImportError:  # crops without OpenCV: torch (a core dependency) does the resize
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()  # (1, 3, H, W)
        y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    down = w < img.shape[1] or h < img.shape[0]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)


def crop_square(frame: np.ndarray, cx: float, cy: float, side: float, size: int) -> tuple[np.ndarray, tuple]:
    """The square of `side` pixels centred on (cx, cy), rounded to whole pixels, black outside the
    frame, resized to uint8 [size, size, 3]; and that square as (x0, y0, s) in pixels of `frame`."""
    H, W = frame.shape[:2]
    s = max(1, int(round(side)))
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x0 + s), min(H, y0 + s)
    if sx0 == x0 and sy0 == y0 and sx1 == x0 + s and sy1 == y0 + s:
        region = frame[sy0:sy1, sx0:sx1]
    else:
        region = np.zeros((s, s, frame.shape[2]), frame.dtype)
        if sx1 > sx0 and sy1 > sy0:
            region[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return resize_image(np.ascontiguousarray(region), size, size), (x0, y0, s)


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain: [n, 2] -> hull vertices [m, 2], counter-clockwise."""
    p = np.unique(pts[np.isfinite(pts).all(axis=1)], axis=0)
    if len(p) < 3:
        return p

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in p[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1])


def _fill_convex(pts: np.ndarray, size: int) -> np.ndarray:
    """bool [size, size]: pixel centres inside the convex hull of `pts` (scanline fill, numpy only)."""
    hull = _convex_hull(pts)
    mask = np.zeros((size, size), bool)
    if len(hull) < 3:
        return mask
    ys = np.arange(size) + 0.5                                   # (size,) pixel-centre rows
    a, b = hull, np.roll(hull, -1, axis=0)                       # (E, 2) edge ends
    dy = b[:, 1] - a[:, 1]
    ok = np.abs(dy) > 1e-12
    a, b, dy = a[ok], b[ok], dy[ok]
    t = (ys[None, :] - a[:, 1:2]) / dy[:, None]                  # (E, size) edge parameter per row
    inside = (t >= 0) & (t <= 1)
    x = a[:, 0:1] + t * (b[:, 0:1] - a[:, 0:1])                  # (E, size) crossing x per row
    xl = np.where(inside, x, np.inf).min(axis=0)
    xr = np.where(inside, x, -np.inf).max(axis=0)
    xs = np.arange(size) + 0.5
    return (xs[None, :] >= xl[:, None]) & (xs[None, :] <= xr[:, None])


def _box_masks(x0: float, y0: float, x1: float, y1: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Face = ellipse inscribed in the box, stretched 10% up (forehead); lower face = the part of the
    face ellipse from 55% of the box height down to 10% below the box (chin), middle 80% of the width."""
    w, h = x1 - x0, y1 - y0
    ys, xs = np.mgrid[0:size, 0:size] + 0.5                      # (size, size) pixel centres
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.05 * h
    rx, ry = max(w / 2, 1e-6), max(0.55 * h, 1e-6)
    face = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0
    lower_ellipse = ((xs - cx) / (1.05 * rx)) ** 2 + ((ys - cy) / (1.1 * ry)) ** 2 <= 1.0
    mouth = lower_ellipse & (ys >= y0 + 0.55 * h) & (ys <= y1 + 0.1 * h) & (np.abs(xs - cx) <= 0.4 * w)
    return face, mouth
