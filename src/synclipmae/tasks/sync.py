"""Zero-shot audio-visual sync scoring on token sequences (DESIGN §6).

    d_k = mean_t (1 - cos(v_t, a_{t+k}))       for k in [-K, K], over frames valid for every k
    offset = argmin_k d_k;  min_distance = min_k d_k;  confidence = median_k d_k - min_k d_k

Sign: offset > 0 means the audio is late (the sound comes after the lips) by that many frames;
offset_ms = offset * 40 (one video frame at 25 fps). Fixing a video shifts its audio earlier by
offset_ms. v and a are the L2-normalised sync embeddings (`SyncLipMAE.sync_embeddings`).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from synclipmae.timing import TIMING

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
# From a file to the DESIGN §7 record: decode -> face tracks -> crops -> tokens -> per-track scores
#
# The stages, in order (each re-usable: `prepare` shares the first three):
#   1. `iter_face_segments`: probe, then decode the file in segments of `SEGMENT_S` seconds (memory is
#      bounded by one segment) at `DETECT_SIDE` px, track faces, frame each track like a SynthTalk
#      frame (`CROP_FRAMING`) and crop it at the model's size (re-reading the video at a higher
#      resolution, streamed, when a face is too small in the detection copy); audio at 16 kHz mono.
#   2. `track_tokens` / `audio_tokens`: z_voc of each track's crops and a_t of the audio, then
#      `model.sync_embeddings` -> the normalised embeddings the distances are measured in.
#   3. `score_segment_track`: the distance curve over every frame whose audio exists K frames on
#      both sides, plus one local offset per second (the plot's strip).
#   4. `sync_file`: the record; every failure becomes {"status": "error", "error": one line}.
# `fix_offset` writes a copy of a file with its audio shifted; `plot_record` draws a record.
# ====================================================================================================

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
LOCAL_WINDOW = TIMING.fps    # default: local offsets are scored on 1 s windows
AUDIO_CHUNK = 750            # default: audio tokens are computed in 30 s chunks ...
AUDIO_OVERLAP = 32           # ... each with 32 frames of context on both sides (more than the encoder sees)
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".ts",
                    ".mts", ".3gp")


class SyncError(Exception):
    """A one-line, user-facing reason a file cannot be scored (no face, track too short, ...)."""


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True):
    """Send what native code writes to file descriptor 2 to /dev/null for the duration: mediapipe's
    C++ and TFLite log INFO/WARNING lines there when their graphs start, which no environment variable
    reliably turns off, and stderr is where our one-line errors and progress bars go."""
    if not enabled:
        yield
        return
    import sys

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


def model_framing(track, backend: str):
    """(FaceTrack with its boxes lifted, margin): pass both to `crops(frames, size, margin)` and
    `masks(size, margin)` to get the crop the model was trained on (see CROP_FRAMING)."""
    from synclipmae.media.faces import FaceTrack

    margin, lift = CROP_FRAMING.get(backend, CROP_FRAMING["mediapipe"])
    b = track.boxes.astype(np.float64).copy()
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    b[:, 1] -= lift * side
    b[:, 3] -= lift * side
    return FaceTrack(track.track, track.start_frame, track.end_frame, b.astype(np.float32), track.landmarks,
                     track.detected), margin


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


def _segments(duration_s: float | None, segment_s: float) -> list[tuple[float, float | None]]:
    """(start_s, duration_s or None for 'to the end') windows covering the file."""
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


def crop_square(frame: np.ndarray, cx: float, cy: float, side: float, size: int) -> tuple[np.ndarray, tuple]:
    """The crop `FaceTrack.crops` takes (the square rounded to whole pixels, resized to `size`) and
    that square as (x0, y0, s) in pixels of `frame`."""
    from synclipmae.media.faces import _crop_square

    s = max(1, int(round(side)))
    x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
    return _crop_square(frame, x0 + s / 2, y0 + s / 2, s, size), (x0, y0, s)


def crop_pieces(path, d, framed: list, size: int, start_s: float, duration_s: float | None) -> list:
    """Crop face pieces at `size` px.

    d: the segment decoded at detection size (`Decoded`); framed: [(FaceTrack, margin)] from
    `model_framing`, whole tracks or parts of them, boxes in pixels of d.frames. Returns per piece
    (crops uint8 [n, size, size, 3], rects float [n, 4]: each crop's square as x0, y0, width, height in
    pixels of the source video; NaN where no frame could be read). A piece whose crop is smaller than
    `size` in the detection copy, while the source is larger, is cropped from a streamed re-read at the
    resolution that brings the smallest such face to `size`; a re-read that comes up short repeats the
    piece's last crop."""
    from synclipmae.media.decode import iter_frames

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
    from synclipmae.media.decode import MediaError, decode, probe
    from synclipmae.media.faces import track_faces

    info = probe(path)
    name = Path(path).name
    if not info["has_video"]:
        raise MediaError(f"{name}: no video stream (audio only)")
    if audio is None and need_audio and not info["has_audio"]:
        raise MediaError(f"{name}: no audio stream{no_audio_hint}")
    use_file_audio = audio is None and info["has_audio"]
    start_frame = 0
    for i, (start_s, dur) in enumerate(_segments(info.get("duration_s"), segment_s)):
        try:
            d = decode(path, max_side=detect_side, start_s=start_s, duration_s=dur, need_audio=use_file_audio,
                       with_audio=use_file_audio, min_frames=min_frames if i == 0 else 1)
        except MediaError as err:
            if i > 0 and "no video frames" in str(err):
                break  # the container's duration overstated the video: nothing after the last segment
            raise
        T, fps_in = d.num_frames, d.fps_in
        meta = {**d.meta, "audio_mismatch_frames": d.audio_mismatch_frames}
        seg_audio = d.audio if use_file_audio else (_place_audio(audio, start_frame, T) if audio is not None else None)
        with quiet_native_stderr(quiet):
            faces = track_faces(d.frames, backend=backend, landmarks=masks, min_track_frames=min_track_frames)
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
# tokens and scores


def _device(model):
    return next(model.parameters()).device


@torch.no_grad()
def audio_tokens(model, audio: np.ndarray) -> torch.Tensor:
    """float32 [T * spf] at 16 kHz -> a_t float [T, D] (`model.encode_audio`); long audio in chunks of
    AUDIO_CHUNK frames with AUDIO_OVERLAP frames of context each side (bounded memory)."""
    spf = TIMING.samples_per_frame
    T = len(audio) // spf
    x = torch.from_numpy(np.ascontiguousarray(audio[:T * spf], np.float32)).to(_device(model))
    parts = []
    for c0 in range(0, T, AUDIO_CHUNK):
        lo, hi = max(0, c0 - AUDIO_OVERLAP), min(T, c0 + AUDIO_CHUNK + AUDIO_OVERLAP)
        a = model.encode_audio(x[None, lo * spf:hi * spf])[0]                 # (hi - lo, D)
        parts.append(a[c0 - lo:c0 - lo + min(AUDIO_CHUNK, T - c0)])
    return torch.cat(parts)                                                     # (T, D)


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


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _autocast(model, bf16: bool):
    """bf16 autocast for the model's matmuls (CPUs with AVX512-BF16/AMX and GPUs), else a no-op."""
    return torch.autocast(_device(model).type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


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
    from synclipmae import __version__
    from synclipmae.media.decode import MediaError, load_audio

    record = {"input": str(path), "status": "ok", "error": None, "fps_in": None, "frames": 0, "faceless_frames": 0,
              "tracks": [], "model": model_name, "version": __version__, "backend": None, "warnings": [],
              "short_tracks": []}
    K = max_offset
    try:
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
                    a_tok = audio_tokens(model, seg.audio).float()         # (T_seg, D)
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
    except (MediaError, SyncError) as err:
        record.update(status="error", error=_one_line(err))
    except Exception as err:  # noqa: BLE001 - a bad file must never stop a batch or print a traceback
        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise
        record.update(status="error", error=f"{Path(path).name}: {type(err).__name__}: {_one_line(err)}")
    return record


def main_track(record: dict) -> dict | None:
    """The track a file's single offset is read from: the one with the most scored frames."""
    tracks = record.get("tracks") or []
    return max(tracks, key=lambda t: (t.get("scored_frames", 0), t["confidence"])) if tracks else None


# ----------------------------------------------------------------------------------------------------
# fix: the same file with its audio shifted


def _audio_samples(av, container, stream, t_origin: float) -> tuple[np.ndarray, int, str]:
    """Decode `stream` to float32 [C, S] at its own rate and layout, placed so that sample 0 is at
    `t_origin` seconds (leading audio dropped, a late start preceded by silence)."""
    cc = stream.codec_context
    to_float = av.AudioResampler(format="fltp", layout=cc.layout, rate=cc.sample_rate)  # sample format only
    chunks, first_t = [], None
    for frame in container.decode(stream):
        if first_t is None:
            first_t = frame.time if frame.time is not None else 0.0
        for fr in to_float.resample(frame):
            chunks.append(fr.to_ndarray())
    for fr in to_float.resample(None):
        chunks.append(fr.to_ndarray())
    rate = stream.codec_context.sample_rate
    C = stream.codec_context.channels or 1
    x = np.concatenate(chunks, axis=1) if chunks else np.zeros((C, 0), np.float32)
    layout = stream.codec_context.layout.name
    if layout not in _ENCODABLE_LAYOUTS.values():
        if x.shape[0] in _ENCODABLE_LAYOUTS:   # "2 channels" (order unspecified) -> "stereo", ...
            layout = _ENCODABLE_LAYOUTS[x.shape[0]]
        else:                                  # an unusual layout: the mean of the channels, mono
            x, layout = x.mean(axis=0, keepdims=True), "mono"
    lead = int(round(((first_t or 0.0) - t_origin) * rate))
    if lead > 0:
        x = np.concatenate([np.zeros((x.shape[0], lead), np.float32), x], axis=1)
    elif lead < 0:
        x = x[:, -lead:]
    return np.ascontiguousarray(x, np.float32), rate, layout


FIX_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")  # containers `fix_offset` writes (video copied, AAC audio)
# channel count -> a layout AAC encodes; other layouts are re-labelled by their channel count or mixed to mono
_ENCODABLE_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


def shift_audio(x: np.ndarray, shift: int) -> np.ndarray:
    """[C, S] -> [C, S]: the same audio `shift` samples earlier (shift > 0: the first `shift` samples
    are dropped and silence appended) or later (shift < 0: silence first, the end cut)."""
    out = np.zeros_like(x)
    if shift >= 0:
        n = max(0, x.shape[1] - shift)
        out[:, :n] = x[:, shift:shift + n]
    else:
        n = max(0, x.shape[1] + shift)
        out[:, -shift:-shift + n] = x[:, :n]
    return out


def fix_offset(path, out, offset_ms: float, audio_path=None) -> Path:
    """Write `out`: the video of `path` with its audio (or that of `audio_path`) moved earlier by
    `offset_ms` (the sync offset: > 0 means the audio was late, so its first offset_ms are dropped;
    < 0 pads silence in front). The video stream is copied packet by packet (not re-encoded) where the
    output container accepts its codec, else re-encoded with H.264; the audio is re-encoded as AAC
    (FIX_SUFFIXES: containers that take AAC). Raises MediaError for unreadable input."""
    from synclipmae.media.decode import MediaError, _check_file, _import_av, _open

    av = _import_av()
    src = _check_file(path)
    out = Path(out)
    if out.suffix.lower() not in FIX_SUFFIXES:
        raise MediaError(f"{out.name}: the fixed file must be one of {', '.join(FIX_SUFFIXES)}")
    if out.resolve() == src.resolve():
        raise MediaError(f"{out.name}: --fix must write a new file, not the input")
    out.parent.mkdir(parents=True, exist_ok=True)
    inp = _open(av, src)
    try:
        if not inp.streams.video:
            raise MediaError(f"{src.name}: no video stream")
        vin = inp.streams.video[0]
        t0 = float(vin.start_time * vin.time_base) if vin.start_time is not None else 0.0
        if audio_path is not None:
            a_src = _check_file(audio_path)
            ac = _open(av, a_src)
            try:
                if not ac.streams.audio:
                    raise MediaError(f"{a_src.name}: no audio stream")
                samples, rate, layout = _audio_samples(av, ac, ac.streams.audio[0], 0.0)
            finally:
                ac.close()
            origin = t0  # sample 0 of the audio file plays with the first video frame
        else:
            if not inp.streams.audio:
                raise MediaError(f"{src.name}: no audio stream to shift")
            samples, rate, layout = _audio_samples(av, inp, inp.streams.audio[0], t0)
            origin = t0
        samples = shift_audio(samples, int(round(offset_ms / 1000.0 * rate)))
        tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
        try:
            _write_fixed(av, src, tmp, samples, rate, layout, origin)
            os.replace(tmp, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        inp.close()
    return out


def _encode_audio(av, container, samples: np.ndarray, rate: int, layout, origin: float) -> list:
    """Add an AAC stream to `container` and return its encoded packets (pts from `origin`)."""
    from fractions import Fraction

    stream = container.add_stream("aac", rate=rate, layout=layout)
    tb = Fraction(1, rate)
    stream.codec_context.time_base = tb
    chunk = stream.codec_context.frame_size or 1024
    packets = []
    start = int(round(origin * rate))
    for k in range(0, samples.shape[1], chunk):
        block = np.ascontiguousarray(samples[:, k:k + chunk], np.float32)   # (C, n) planar float
        fr = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        fr.sample_rate, fr.pts, fr.time_base = rate, start + k, tb
        packets += stream.encode(fr)
    packets += stream.encode(None)
    return packets


def _write_fixed(av, src: Path, out: Path, samples: np.ndarray, rate: int, layout, origin: float) -> None:
    try:
        _remux(av, src, out, samples, rate, layout, origin, copy_video=True)
    except Exception:  # noqa: BLE001 - the container refuses the codec: re-encode the video instead
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        _remux(av, src, out, samples, rate, layout, origin, copy_video=False)


def _remux(av, src: Path, out: Path, samples, rate, layout, origin, copy_video: bool) -> None:
    from fractions import Fraction

    inp = av.open(str(src))
    try:
        vin = inp.streams.video[0]
        with av.open(str(out), mode="w") as oc:
            if copy_video:
                vout = oc.add_stream_from_template(vin)
            else:
                rate_v = Fraction(vin.average_rate or TIMING.fps).limit_denominator(1001)
                vout = oc.add_stream("libx264", rate=rate_v)
                vout.width, vout.height = vin.codec_context.width // 2 * 2, vin.codec_context.height // 2 * 2
                vout.pix_fmt = "yuv420p"
                vout.options = {"crf": "18", "preset": "veryfast"}
            apackets = _encode_audio(av, oc, samples, rate, layout, origin)
            ai = 0

            def audio_until(t: float | None) -> None:
                nonlocal ai
                while ai < len(apackets) and (t is None or apackets[ai].pts is None
                                              or float(apackets[ai].pts * apackets[ai].time_base) <= t):
                    oc.mux(apackets[ai])
                    ai += 1

            if copy_video:
                for packet in inp.demux(vin):
                    if packet.dts is None:
                        continue
                    if packet.pts is not None:
                        audio_until(float(packet.pts * packet.time_base))
                    packet.stream = vout
                    oc.mux(packet)
            else:
                for frame in inp.decode(vin):
                    audio_until(frame.time)
                    img = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                    img.pts, img.time_base = None, None
                    oc.mux(vout.encode(img))
                oc.mux(vout.encode(None))
            audio_until(None)
    finally:
        inp.close()


# ----------------------------------------------------------------------------------------------------
# plot


def plot_record(record: dict, png, title: str | None = None) -> Path:
    """Draw a `sync_file` record: per track, the distance curve d_k against the offset k (minimum
    marked) and a strip of the local offsets of each second. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    tracks = record.get("tracks") or []
    rows = max(1, len(tracks))
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.8 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6]})
    fig.suptitle(title or Path(record["input"]).name, fontsize=10)
    if not tracks:
        axes[0, 0].text(0.5, 0.5, record.get("error") or "no track", ha="center", va="center", wrap=True)
        axes[0, 0].set_axis_off()
        axes[0, 1].set_axis_off()
    for row, tr in zip(axes, tracks):
        d = np.asarray(tr["distances"])
        K = (len(d) - 1) // 2
        ks = np.arange(-K, K + 1)
        ax = row[0]
        ax.plot(ks, d, marker=".", lw=1)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.plot([tr["offset_frames"]], [tr["min_distance"]], "o", color="C3")
        ax.set_xlabel("offset k (frames; > 0: audio late)")
        ax.set_ylabel("distance d_k")
        ax.set_title(f"track {tr['track']}: offset {tr['offset_frames']:+d} ({tr['offset_ms']:+.0f} ms), "
                     f"conf {tr['confidence']:.3f}, min {tr['min_distance']:.3f}", fontsize=9)
        ax = row[1]
        local = tr.get("local_offsets") or []
        if local:
            t = np.array([x["start_frame"] for x in local]) / TIMING.fps
            o = np.array([x["offset_frames"] for x in local])
            c = np.array([x["confidence"] for x in local])
            sc = ax.scatter(t + 0.5, o, c=c, cmap="viridis", s=40, vmin=0)
            fig.colorbar(sc, ax=ax, label="confidence", pad=0.01)
            ax.axhline(tr["offset_frames"], color="C3", lw=0.8, ls="--")
            ax.set_ylim(-K - 1, K + 1)
        else:
            ax.text(0.5, 0.5, "track shorter than one 1 s window", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("local offset (frames)")
        ax.set_xlim(tr["start_frame"] / TIMING.fps, tr["end_frame"] / TIMING.fps)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
