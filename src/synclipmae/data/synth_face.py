"""SynthTalk faces (private helper of `synclipmae.data.synth`, DESIGN §5).

`render_frames` draws one identity: every shape is an anti-aliased (soft-edged) ellipse or band
evaluated in the head's canonical coordinates at 2x resolution on a crop around the shape (big shapes
frame by frame, small ones for all frames at once), then each frame is box-filtered 2x2 down to the
output size.

Coordinates: frame units, the frame spans [-0.5, 0.5] in x (right) and y (down), so the same numbers
draw any size. Canonical head coordinates are frame coordinates at rest pose, relative to the head
centre. Head pose maps a canonical point q with depth z (how far it stands out of the face plane) to

    frame = head_centre + (tx, ty) + scale * R(roll) @ (cos(yaw) * (q.x + z sin(yaw)),
                                                         cos(pitch) * (q.y + z sin(pitch)))

so yaw squeezes the face horizontally and slides the features (nose most) sideways over it, and pitch
does the same vertically. Rendering inverts this map once per frame for every pixel and each shape
subtracts its own centre (shifted by its depth).
"""
from __future__ import annotations

import functools
import math

import numpy as np

HAIR_STYLES = ("short", "long", "buzz", "curly", "bangs", "sidepart", "bald")
BACKGROUND_PATTERNS = ("vertical", "diagonal", "stripes", "radial", "dots")

# Hair: centre y and radii (x face half-width, x face half-height), y above which the hair behind the
# face shows, hairline on the forehead y = h0 + curv x^2 + tilt x, density (alpha).
_HAIR = {
    "short": dict(cy=-0.06, rx=1.10, ry=1.02, cut=-0.04, h0=-0.245, curv=1.0, tilt=0.0, density=1.0),
    "long": dict(cy=0.07, rx=1.30, ry=1.30, cut=1.0, h0=-0.235, curv=1.5, tilt=0.0, density=1.0),
    "buzz": dict(cy=-0.045, rx=1.03, ry=1.0, cut=-0.08, h0=-0.26, curv=0.8, tilt=0.0, density=0.6),
    "curly": dict(cy=-0.11, rx=1.40, ry=1.10, cut=0.02, h0=-0.23, curv=0.6, tilt=0.0, density=1.0),
    "bangs": dict(cy=-0.06, rx=1.12, ry=1.04, cut=0.0, h0=-0.16, curv=0.4, tilt=0.0, density=1.0),
    "sidepart": dict(cy=-0.06, rx=1.10, ry=1.03, cut=-0.03, h0=-0.235, curv=0.9, tilt=0.3, density=1.0),
    "bald": dict(cy=0.0, rx=1.0, ry=1.0, cut=0.0, h0=-1.0, curv=0.0, tilt=0.0, density=0.0),
}

# Feature layout (canonical, frame units) and depths.
BASE_SCALE = 1.1        # head size at pose scale 1 (the face fills most of the frame, like an aligned crop)
HEAD_Y = -0.02          # head centre y at rest
EYE_Y = -0.075
BROW_GAP = 0.062        # brow above eye centre at brow = 0
BROW_RAISE = 0.035      # per unit of the ambient brow track
NOSE_Y = 0.085          # times the identity's nose length
MOUTH_Y = 0.205
Z_EYES, Z_NOSE, Z_MOUTH, Z_EARS, Z_NECK = 0.12, 0.2, 0.12, -0.15, -0.1   # depth out of the face plane
MOUTH_OPEN_H = 0.062    # inner half-height of the mouth at opening 1 (12 px full height at 96 px)
CORNER_LIFT = 0.032     # how far the mouth corners move at corner = +-1

# How emotion shows on the face (ambient, not vocal). Brow raise lives in the ambient brow track.
EMOTION_FACE: dict[str, dict[str, float]] = {
    "neutral": dict(corner=0.0, brow_tilt=0.0, aperture=1.0),
    "happy": dict(corner=0.85, brow_tilt=0.0, aperture=0.8),
    "sad": dict(corner=-0.6, brow_tilt=-0.9, aperture=0.8),
    "angry": dict(corner=-0.35, brow_tilt=1.0, aperture=0.78),
    "surprised": dict(corner=0.0, brow_tilt=-0.2, aperture=1.3),
}
SMILE_CORNER = 0.75     # the "smile" action's extra corner lift
CHUNK = 128             # frames whose small features are drawn in one batch



def _col(c) -> np.ndarray:
    """A colour as float32 [3, 1, 1], ready to broadcast over a planar [3, h, w] canvas. Clipped to
    0..1, so no pixel ever leaves 0..1 and the final uint8 cast needs no clip."""
    return np.clip(np.asarray(c, np.float32), 0.0, 1.0).reshape(3, 1, 1)


_WHITE = _col((0.95, 0.95, 0.93))
_PUPIL = _col((0.04, 0.03, 0.03))
_LASH = _col((0.10, 0.07, 0.07))
_MOUTH_IN = _col((0.20, 0.05, 0.07))
_TEETH = _col((0.94, 0.93, 0.87))
_TONGUE = _col((0.80, 0.36, 0.40))


def _clip01(a: np.ndarray) -> np.ndarray:
    np.maximum(a, 0.0, out=a)
    return np.minimum(a, 1.0, out=a)


def _ellipse(qx, qy, cx, cy, rx, ry, ppu, g2_out: bool = False):
    """Soft (about one 2x-pixel wide edge) coverage of an axis-aligned ellipse in canonical coords.
    The edge is exactly one pixel wide on the short axis and rx / ry times wider on the long one."""
    u = qx - cx
    u *= 1.0 / rx
    u *= u
    v = qy - cy
    v *= 1.0 / ry
    v *= v
    u += v                                   # g2 = normalized radius squared
    k = 0.5 * np.minimum(rx, ry) * ppu       # d(pixels) ~ (1 - g2) * r / 2 near the edge
    a = u * -k
    a += k + 0.5
    _clip01(a)
    return (a, u) if g2_out else a


def _soft_uv(u: np.ndarray, v: np.ndarray, rx, ry, ppu) -> np.ndarray:
    """Coverage of the unit disc in normalised coordinates u = dx / rx, v = dy / ry (consumed), with
    the distance to the rim normalised by the gradient: a one-pixel edge even on long thin shapes."""
    grad = u * u
    grad *= 1.0 / (rx * rx)
    g = v * v
    g *= 1.0 / (ry * ry)
    grad += g
    np.sqrt(grad, out=grad)
    np.maximum(grad, 1e-6, out=grad)                # |grad(u^2 + v^2)| / 2 in canonical units
    u *= u
    v *= v
    u += v
    np.subtract(1.0, u, out=u)
    u /= grad
    u *= 0.5 * ppu                                  # signed distance inside the rim, drawing pixels
    u += 0.5
    return _clip01(u)


def _ellipse_x(qx, qy, cx, cy, rx, ry, ppu) -> np.ndarray:
    """`_ellipse` with an exact-width edge, for elongated shapes (rx / ry far from 1)."""
    u = qx - cx
    u *= 1.0 / rx
    v = qy - cy
    v *= 1.0 / ry
    return _soft_uv(u, v, rx, ry, ppu)


def _over(dst: np.ndarray, alpha: np.ndarray, color) -> None:
    """Composite `color` ([3, 1, 1] or [3, h, w]) over the planar dst [3, h, w] in place with
    coverage alpha [h, w]. (Planar, so numpy's inner loops run along image rows, not over 3 channels.)"""
    dst += alpha * (color - dst)


@functools.lru_cache(maxsize=32)
def background(ident, size: int) -> np.ndarray:
    """Per-identity background at 2x, planar float32 [3, 2*size, 2*size]; does not move with the head."""
    n = 2 * size
    g = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    gx, gy = g[None, :], g[:, None]
    c1, c2 = _col(ident.background), _col(ident.background2)
    pattern = BACKGROUND_PATTERNS[ident.background_pattern]
    ca, sa = math.cos(ident.background_angle), math.sin(ident.background_angle)
    along = gx * ca + gy * sa
    if pattern == "vertical":
        w = np.broadcast_to(gy + 0.5, (n, n))
    elif pattern == "diagonal":
        w = along * 0.7 + 0.5
    elif pattern == "stripes":
        freq = 3.0 + 5.0 * ((ident.background_angle * 7.0) % 1.0)
        w = 0.5 + 0.5 * np.sin(2 * np.pi * freq * along)
        w = np.clip((w - 0.5) * 3.0 + 0.5, 0.0, 1.0)
    elif pattern == "radial":
        w = np.sqrt(gx * gx + gy * gy) / 0.7
    else:  # dots
        sp = 0.125
        dx = (gx - sp * np.round(gx / sp))
        dy = (gy - sp * np.round(gy / sp))
        w = np.clip((0.028 - np.sqrt(dx * dx + dy * dy)) * n + 0.5, 0.0, 1.0)
    w = np.clip(np.asarray(w, np.float32), 0.0, 1.0)
    return np.ascontiguousarray(c1 + (c2 - c1) * w, np.float32)


def face_geometry(ident) -> dict[str, float]:
    """The identity's static face layout (canonical units)."""
    rx_t = ident.face_width
    ry_t = ident.face_height
    return dict(rx_t=rx_t, rx_b=rx_t * ident.jaw, ry_t=ry_t, ry_b=ry_t * 1.06,
                ex=ident.eye_spacing, erx=0.056 * ident.eye_size, ery=0.030 * ident.eye_size,
                iris=0.024 * ident.eye_size, nose_y=NOSE_Y * ident.nose_length)


class _Pose:
    """Per-frame head transform, vectorised over frames (arrays [T], float64)."""

    def __init__(self, pose: np.ndarray, n: int):
        yaw, pitch, roll, tx, ty, sc = np.asarray(pose, np.float64).T
        self.s = sc * BASE_SCALE

        def trig(fn, x):  # scalar libm: numpy's SIMD sin/cos can differ by an ulp with array length,
            return np.array([fn(v) for v in x.tolist()])   # and a frame must not depend on its batch

        self.syw, self.cyw = trig(math.sin, yaw), trig(math.cos, yaw)
        self.sp, self.cp = trig(math.sin, pitch), trig(math.cos, pitch)
        cr, sr = trig(math.cos, roll), trig(math.sin, roll)
        self.hx, self.hy = tx, HEAD_Y + ty + 0.03 * self.sp
        s = self.s
        # forward linear part: canonical (after depth shift) -> frame
        self.m00, self.m01 = s * cr * self.cyw, -s * sr * self.cp
        self.m10, self.m11 = s * sr * self.cyw, s * cr * self.cp
        # inverse: q = (ax gx + bx gy + ox, ay gx + by gy + oy) for frame coordinates (gx, gy)
        self.ax, self.bx = cr / (s * self.cyw), sr / (s * self.cyw)
        self.ay, self.by = -sr / (s * self.cp), cr / (s * self.cp)
        self.ox = -(self.ax * self.hx + self.bx * self.hy)
        self.oy = -(self.ay * self.hx + self.by * self.hy)
        self.ppu = n * s                              # drawing pixels per canonical unit
        self.n = n

    def boxes(self, x0, x1, y0, y1, z):
        """Pixel boxes (r0, r1, c0, c1), arrays [T], of canonical rectangles (scalars or [T]) at depth z."""
        n = self.n
        mx, my = 0.5 * (x0 + x1) + z * self.syw, 0.5 * (y0 + y1) + z * self.sp
        hw, hh = 0.5 * (x1 - x0), 0.5 * (y1 - y0)
        fx, fy = self.hx + self.m00 * mx + self.m01 * my, self.hy + self.m10 * mx + self.m11 * my
        ex, ey = np.abs(self.m00) * hw + np.abs(self.m01) * hh, np.abs(self.m10) * hw + np.abs(self.m11) * hh
        c0 = np.clip(np.floor((fx - ex + 0.5) * n).astype(int) - 2, 0, n)   # 2 px for the soft edges
        c1 = np.clip(np.ceil((fx + ex + 0.5) * n).astype(int) + 2, 0, n)
        r0 = np.clip(np.floor((fy - ey + 0.5) * n).astype(int) - 2, 0, n)
        r1 = np.clip(np.ceil((fy + ey + 0.5) * n).astype(int) + 2, 0, n)
        return r0, np.maximum(r1, r0), c0, np.maximum(c1, c0)

    def maps(self, t: int, grid: np.ndarray):
        """Canonical coordinates (qx, qy) [len(grid), len(grid)] of every pixel of frame t."""
        ax, bx, ox = float(self.ax[t]), float(self.bx[t]), float(self.ox[t])
        ay, by, oy = float(self.ay[t]), float(self.by[t]), float(self.oy[t])
        qx = (bx * grid + ox)[:, None] + (ax * grid)[None, :]
        qy = (by * grid + oy)[:, None] + (ay * grid)[None, :]
        return qx, qy

    def batch_maps(self, grid: np.ndarray, r0, c0, h: int, w: int, z: float):
        """Canonical coordinates [T, h, w] of the crops at (r0, c0), shifted by depth z."""
        gy = grid[r0[:, None] + np.arange(h)]              # (T, h)
        gx = grid[c0[:, None] + np.arange(w)]              # (T, w)
        f = np.float32
        qx = (self.bx[:, None] * gy + (self.ox - z * self.syw)[:, None]).astype(f)[:, :, None] \
            + (self.ax[:, None] * gx).astype(f)[:, None, :]
        qy = (self.by[:, None] * gy + (self.oy - z * self.sp)[:, None]).astype(f)[:, :, None] \
            + (self.ay[:, None] * gx).astype(f)[:, None, :]
        return qx, qy


class _Patch:
    """One feature drawn for all frames at once on a fixed-size crop that follows the head.

    `layer(alpha [T, h, w], colour)` stacks shapes bottom to top; `finish` flattens them into a
    premultiplied colour C [3, T, h, w] and a transmittance [T, h, w] (1 - coverage), walking the
    layers top down; `paste` puts frame t's patch over the canvas. Batching over frames keeps numpy's
    per-call overhead off the small shapes.
    """

    def __init__(self, P: _Pose, grid: np.ndarray, x0, x1, y0, y1, z: float):
        n = P.n
        r0, r1, c0, c1 = P.boxes(x0, x1, y0, y1, z)
        self.h, self.w = int(min(max((r1 - r0).max(), 1), n)), int(min(max((c1 - c0).max(), 1), n))
        self.r0, self.c0 = np.minimum(r0, n - self.h), np.minimum(c0, n - self.w)
        self.qx, self.qy = P.batch_maps(grid, self.r0, self.c0, self.h, self.w, z)
        self.ppu = P.ppu.astype(np.float32)[:, None, None]
        self._layers: list[tuple[np.ndarray, np.ndarray]] = []
        self._r0, self._c0 = self.r0.tolist(), self.c0.tolist()

    def layer(self, alpha: np.ndarray, color) -> None:
        self._layers.append((alpha, np.asarray(color, np.float32).reshape(3)))

    def finish(self) -> None:
        T = len(self._r0)
        self.trans = np.ones((T, self.h, self.w), np.float32)
        self.C = np.zeros((3, T, self.h, self.w), np.float32)
        for alpha, color in reversed(self._layers):       # top layer first
            weight = alpha * self.trans                    # how much of this layer shows
            np.subtract(1.0, alpha, out=alpha)
            self.trans *= alpha
            for ch in range(3):
                self.C[ch] += weight * color[ch]
        self._layers = []
        del self.qx, self.qy

    def paste(self, canvas: np.ndarray, t: int) -> None:
        r, c = self._r0[t], self._c0[t]
        dst = canvas[:, r:r + self.h, c:c + self.w]
        dst *= self.trans[t]
        dst += self.C[:, t]


def _f(x) -> np.ndarray:
    """A per-frame parameter [T] as float32 [T, 1, 1], to broadcast over batched crops."""
    return np.asarray(x, np.float32)[:, None, None]


def _eye_patches(P, grid, ident, geo, side, eye_open, brow_y, emo) -> list[_Patch]:
    """Two patches per eye: the brow and the socket shadow (large, two layers), then the eyeball
    (small: white, iris, pupil, highlight, lid and lashes)."""
    ex, erx, iris = side * geo["ex"], geo["erx"], geo["iris"]
    ery = geo["ery"] * emo["aperture"]
    skin = _col(ident.skin)
    bx, bl, bt = side * (geo["ex"] + 0.004), 0.072, 0.0115 * ident.brow_thickness
    srx, sry = erx * 1.45, ery * 2.0 + 0.012                  # socket shadow radii
    half = max(srx, abs(bx - ex) + bl) + 0.01
    out = _Patch(P, grid, ex - half, ex + half, float(np.min(brow_y)) - bt - 0.03, EYE_Y + sry + 0.01, Z_EYES)
    qx, qy, ppu = out.qx, out.qy, out.ppu
    out.layer(_ellipse(qx, qy, ex, EYE_Y - 0.004, srx, sry, ppu) * 0.35, skin * 0.8)
    # brow: an arched band; tilt > 0 lowers the inner end (angry), < 0 raises it (sad)
    ub = qx - bx
    ub *= 1.0 / bl
    yl = ub * ub
    yl *= 0.022
    yl += ub * (0.012 * emo["brow_tilt"] * -side)
    yl += _f(brow_y)
    vb = qy - yl
    vb *= 1.0 / bt
    out.layer(_soft_uv(ub, vb, bl, bt, ppu) * 0.95, _col(np.asarray(ident.hair_color) * 0.55 + 0.05))
    out.finish()

    pt = _Patch(P, grid, ex - 1.05 * erx - 0.005, ex + 1.05 * erx + 0.005, EYE_Y - ery - 0.01,
                EYE_Y + ery + 0.01, Z_EYES)
    qx, qy, ppu = pt.qx, pt.qy, pt.ppu
    a_eye = _ellipse_x(qx, qy, ex, EYE_Y, erx, ery, ppu)
    uu = qx - ex
    uu *= 1.0 / erx
    lid = uu * uu
    np.subtract(1.0, lid, out=lid)
    np.maximum(lid, 0.0, out=lid)
    np.sqrt(lid, out=lid)
    lid *= _f((1.0 - 2.0 * np.asarray(eye_open)) * ery)      # lid edge: upper rim (open) .. lower rim
    d = qy - EYE_Y
    d -= lid                                                  # > 0 below the lid edge
    vis = d * ppu
    vis += 0.5
    a_vis = _clip01(vis)
    a_vis *= a_eye
    pt.layer(a_vis, _WHITE)
    pt.layer(_ellipse(qx, qy, ex, EYE_Y, iris, iris, ppu) * a_vis, _col(ident.eye_color))
    pt.layer(_ellipse(qx, qy, ex, EYE_Y, 0.45 * iris, 0.45 * iris, ppu) * a_vis, _PUPIL)
    pt.layer(_ellipse(qx, qy, ex + 0.35 * iris, EYE_Y - 0.35 * iris, 0.28 * iris, 0.28 * iris, ppu) * a_vis,
             _WHITE)
    lash = np.abs(d)
    lash *= -ppu
    lash += 1.8                                               # ~1.8 drawing-px lash line on the lid edge
    ends = np.abs(uu)
    ends *= -erx * ppu
    ends += 1.05 * erx * ppu
    pt.layer(_clip01(lash) * _clip01(ends), _LASH)
    pt.finish()
    return [out, pt]


def _nose_patch(P, grid, ident, geo) -> _Patch:
    ny, skin = geo["nose_y"], _col(ident.skin)
    pt = _Patch(P, grid, -0.06, 0.06, ny - 0.11, ny + 0.03, Z_NOSE)
    qx, qy, ppu = pt.qx, pt.qy, pt.ppu
    pt.layer(_ellipse_x(qx, qy, 0.026, ny - 0.05, 0.010, 0.055, ppu) * 0.22, skin * 0.7)   # bridge shadow
    pt.layer(_ellipse_x(qx, qy, 0.0, ny + 0.006, 0.046, 0.014, ppu) * 0.25, skin * 0.72)   # under the tip
    for side in (-1.0, 1.0):
        pt.layer(_ellipse(qx, qy, side * 0.021, ny, 0.012, 0.0075, ppu) * 0.8, skin * 0.42)  # nostrils
    pt.finish()
    return pt


def _mouth_patch(P, grid, ident, mouth, corner) -> _Patch:
    m = np.asarray(mouth, np.float64)
    op, wd, rd, te, tg = (m[:, k] for k in range(5))
    W_ = (0.072 + 0.052 * wd - 0.01 * rd) * (1.0 + 0.06 * max(corner, 0.0))   # half-width
    Hin_ = MOUTH_OPEN_H * op                                                   # inner half-height
    Lu_, Ll_ = 0.016 + 0.01 * rd, 0.02 + 0.01 * rd                            # lip thickness
    xr = float(W_.max()) + 0.02
    pt = _Patch(P, grid, -xr, xr, MOUTH_Y - float((Hin_ + Lu_).max()) - 0.05,
                MOUTH_Y + float((Hin_ + Ll_).max()) + 0.03, Z_MOUTH)
    ppu = pt.ppu
    W, Hin, Win = _f(W_), _f(Hin_), _f(W_ * (0.9 - 0.22 * rd))
    dx = pt.qx
    u2 = dx / W
    u2 *= u2
    dy = u2 * (CORNER_LIFT * corner)
    dy += pt.qy
    dy -= MOUTH_Y                                            # corners bent up (smile) or down
    prof = np.subtract(1.0, u2, out=u2)
    np.maximum(prof, 0.0, out=prof)
    np.sqrt(prof, out=prof)
    top = prof * (Hin + _f(Lu_))
    top += dy
    top *= ppu
    top += 0.5
    bot = prof * (Hin + _f(Ll_))
    bot -= dy
    bot *= ppu
    bot += 0.5
    side = np.abs(dx)
    side -= W
    side *= -ppu
    side += 0.5                                              # horizontal extent of the lips
    a_lip = _clip01(top)
    a_lip *= _clip01(bot)
    a_lip *= _clip01(side)
    pt.layer(a_lip, _col(ident.lip_color))
    ui = dx / Win
    ui *= ui
    np.subtract(1.0, ui, out=ui)
    np.maximum(ui, 0.0, out=ui)
    np.sqrt(ui, out=ui)                                      # inner profile
    hin = ui * Hin
    inner = hin - np.abs(dy)
    inner *= ppu
    inner += (ui > 0.05) * np.float32(0.7)                   # lip seam when closed
    a_in = _clip01(inner)
    pt.layer(a_in, _MOUTH_IN)
    # teeth and tongue need an opening to show
    te_ = np.minimum(te, 1.0) * np.clip(op / 0.1, 0.0, 1.0)
    tg_ = np.minimum(tg, 1.0) * np.clip(op / 0.15, 0.0, 1.0)
    th = _f(np.minimum(0.022, 0.9 * Hin_))
    up = dy + hin
    up -= th
    up *= -ppu
    up += 0.5                                                # upper teeth band
    a_t = _clip01(up)
    lo = dy - hin
    lo += th * 0.6
    lo *= ppu
    lo += 0.5                                                # lower teeth band (spread lips: i, s)
    np.maximum(a_t, _clip01(lo) * _f(np.clip((te - 0.6) / 0.4, 0.0, 1.0)), out=a_t)
    a_t *= a_in
    a_t *= _f(te_)
    pt.layer(a_t, _TEETH)
    a_tg = _ellipse(dx, dy, 0.0, 0.6 * Hin, 0.55 * Win, 0.5 * Hin + 0.003, ppu)
    a_tg *= a_in
    a_tg *= _f(tg_)
    pt.layer(a_tg, _TONGUE)
    pt.finish()
    return pt


def _ear_patch(P, grid, ident, geo, side) -> _Patch:
    cx = side * geo["rx_t"] * 0.97
    pt = _Patch(P, grid, cx - 0.04, cx + 0.04, -0.07, 0.07, Z_EARS)
    pt.layer(_ellipse(pt.qx, pt.qy, cx, 0.0, 0.036, 0.062, pt.ppu), _col(ident.skin) * 0.86)
    pt.finish()
    return pt


def _masks(P: _Pose, geo, size: int):
    """face_mask and mouth_mask [T, size, size] (hard, at output resolution), all frames at once."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    T = len(P.s)
    qx, qy = P.batch_maps(g, np.zeros(T, int), np.zeros(T, int), size, size, 0.0)
    upper = qy < 0
    u = qx * np.where(upper, np.float32(1.0 / geo["rx_t"]), np.float32(1.0 / geo["rx_b"]))
    v = qy * np.where(upper, np.float32(1.0 / geo["ry_t"]), np.float32(1.0 / geo["ry_b"]))
    u *= u
    v *= v
    u += v
    face = u < 1.0
    half_w = min(0.2, 0.85 * geo["rx_b"])
    mouth = np.abs(qx - _f(Z_MOUTH * P.syw)) < half_w
    mouth &= qy > _f(geo["nose_y"] + 0.035 + Z_MOUTH * P.sp)
    mouth &= face
    return face, mouth


def render_frames(ident, pose: np.ndarray, eye_open: np.ndarray, brow: np.ndarray,
                  mouth: np.ndarray, emotion: str, smile: bool, size: int):
    """Frames uint8 [T, size, size, 3], face_mask bool [T, size, size], mouth_mask bool [T, size, size].

    pose [T, 6] (yaw, pitch, roll, tx, ty, scale), eye_open [T], brow [T], mouth [T, 5] (opening,
    width, rounding, teeth, tongue). Big shapes (neck, shirt, hair, face) are drawn frame by frame on
    crops; small ones (ears, eyes, brows, nose, mouth) for all frames at once (`_Patch`).
    """
    T = len(eye_open)
    n = 2 * size                                   # drawing resolution
    geo = face_geometry(ident)
    rx_t, rx_b, ry_t, ry_b = geo["rx_t"], geo["rx_b"], geo["ry_t"], geo["ry_b"]
    emo = EMOTION_FACE[emotion]
    corner = min(emo["corner"] + (SMILE_CORNER if smile else 0.0), 1.2)
    skin = _col(ident.skin)
    hair_col = _col(ident.hair_color)
    hair = _HAIR[HAIR_STYLES[ident.hair_style]]
    h_cy = hair["cy"] * ident.hair_volume
    h_rx, h_ry = rx_t * hair["rx"] * ident.hair_volume, ry_t * hair["ry"] * ident.hair_volume
    # rows of the hair ellipse that can show behind the face / in front of it (hairline)
    back_y1 = min(h_cy + h_ry, hair["cut"] + 0.05)
    front_y1 = min(h_cy + h_ry, hair["h0"] + hair["curv"] * h_rx * h_rx + abs(hair["tilt"]) * h_rx + 0.02)
    shirt = _col(ident.shirt_color)
    neck_w = 0.55 * rx_b

    grid = (np.arange(n, dtype=np.float32) + 0.5) / n - 0.5
    brow_y = EYE_Y - BROW_GAP - BROW_RAISE * np.asarray(brow, np.float64)
    eye_open, mouth, pose = np.asarray(eye_open), np.asarray(mouth), np.asarray(pose)
    bg = background(ident, size)
    canvas = np.empty_like(bg)
    frames = np.empty((T, size, size, 3), np.uint8)
    face_mask = np.empty((T, size, size), bool)
    mouth_mask = np.empty((T, size, size), bool)

    def crop(bx, t):
        return (slice(int(bx[0][t]), int(bx[1][t])), slice(int(bx[2][t]), int(bx[3][t])))

    for s0 in range(0, T, CHUNK):                  # chunks of frames bound the batched patches' memory
        s1 = min(s0 + CHUNK, T)
        P = _Pose(pose[s0:s1], n)
        ears = [_ear_patch(P, grid, ident, geo, side) for side in (-1.0, 1.0)]
        features = [p for side in (-1.0, 1.0)
                    for p in _eye_patches(P, grid, ident, geo, side, eye_open[s0:s1], brow_y[s0:s1], emo)]
        features += [_nose_patch(P, grid, ident, geo), _mouth_patch(P, grid, ident, mouth[s0:s1], corner)]
        bx_neck = P.boxes(-neck_w, neck_w, 0.1, 0.75, Z_NECK)
        bx_shirt = P.boxes(-0.5, 0.5, 0.38, 0.8, Z_NECK)
        bx_hair_back = P.boxes(-h_rx, h_rx, h_cy - h_ry, back_y1, 0.0)
        bx_hair_front = P.boxes(-h_rx, h_rx, h_cy - h_ry, front_y1, 0.0)
        bx_face = P.boxes(-rx_t, rx_t, -ry_t, ry_b, 0.0)
        for t in range(s1 - s0):
            ppu, zx, zy = float(P.ppu[t]), Z_NECK * float(P.syw[t]), Z_NECK * float(P.sp[t])
            QX, QY = P.maps(t, grid)
            np.copyto(canvas, bg)

            # neck and shirt, behind the head
            b = crop(bx_neck, t)
            a = np.abs(QX[b] - zx)
            a *= -ppu
            a += neck_w * ppu + 0.5
            _over(canvas[(slice(None),) + b], _clip01(a), skin * 0.78)
            b = crop(bx_shirt, t)
            _over(canvas[(slice(None),) + b], _ellipse_x(QX[b], QY[b], zx, 0.6 + zy, 0.5, 0.2, ppu), shirt)
            for ear in ears:
                ear.paste(canvas, t)

            # hair behind the face (above the cut line), with a little volume shading
            if hair["density"] > 0:
                b = crop(bx_hair_back, t)
                hqy = QY[b]
                a_hair, g2 = _ellipse(QX[b], hqy, 0.0, h_cy, h_rx, h_ry, ppu, g2_out=True)
                cut = hqy - hair["cut"]
                cut *= -1.0 / 0.04
                a_hair *= _clip01(cut)
                a_hair *= hair["density"]
                g2 *= -0.3
                g2 += 1.0
                _over(canvas[(slice(None),) + b], a_hair, g2 * hair_col)

            # face: an egg (narrower jaw), shaded a little towards the rim
            b = crop(bx_face, t)
            fqx, fqy = QX[b], QY[b]
            upper = fqy < 0
            u = fqx * np.where(upper, np.float32(1.0 / rx_t), np.float32(1.0 / rx_b))
            u *= u
            v = fqy * np.where(upper, np.float32(1.0 / ry_t), np.float32(1.0 / ry_b))
            v *= v
            u += v
            k = 0.5 * rx_b * ppu
            a = u * -k
            a += k + 0.5
            u *= -0.15
            u += 1.0
            _over(canvas[(slice(None),) + b], _clip01(a), u * skin)

            # hair in front: the part of the hair ellipse above the hairline
            if hair["density"] > 0:
                b = crop(bx_hair_front, t)
                hqx, hqy = QX[b], QY[b]
                a_hair, g2 = _ellipse(hqx, hqy, 0.0, h_cy, h_rx, h_ry, ppu, g2_out=True)
                line = hqx * hqx
                line *= hair["curv"]
                line += hqx * hair["tilt"]
                line += hair["h0"]
                line -= hqy
                line *= ppu
                line += 0.5
                a_hair *= _clip01(line)
                a_hair *= hair["density"]
                g2 *= -0.3
                g2 += 1.0
                _over(canvas[(slice(None),) + b], a_hair, g2 * hair_col)

            for f in features:                         # eyes and brows, nose, mouth
                f.paste(canvas, t)

            # 2x2 box filter to the output size; every value is already in 0..1
            c = canvas[:, 0::2] + canvas[:, 1::2]
            c = c[:, :, 0::2] + c[:, :, 1::2]
            c *= 63.75
            c += 0.5
            frames[s0 + t] = c.transpose(1, 2, 0)
        face_mask[s0:s1], mouth_mask[s0:s1] = _masks(P, geo, size)
    return frames, face_mask, mouth_mask
