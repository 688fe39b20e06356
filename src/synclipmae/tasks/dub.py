"""Dubbing real video (DESIGN §2 "Downstream interface" 4, §7): `dub_file` and `synclipmae dub`.

A video's main face gets a new mouth that follows new speech (audio-driven) or another video's face
(video-driven); the result is written with the new soundtrack. The stages, in order:

1. `media.pipeline.main_face_frames`: the real-video pipeline `sync` uses, keeping for every frame the
   face of the longest track present in it: its crop at the generator's size, the lower-face mask of
   the crop and the crop's rectangle in source pixels (the similarity transform paste-back inverts).
   Memory: the crops and rectangles (memory-mapped temporary files for a video read in several
   segments), never the full-resolution video.
2. `output_order`: the source frame shown at each output frame. The driving audio sets the length:
   longer than the video, the video plays back and forth (0, 1, ..., N-1, N-2, ..., 1, 0, 1, ...);
   shorter, the video is cut.
3. `dub_file`: the generator (`models.dubbing.dub_crops`) in chunks of about `CHUNK` output frames,
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
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synclipmae.errors import one_line
from synclipmae.media.decode import MediaError, iter_frames, probe, resample
from synclipmae.media.pipeline import SEGMENT_S, FaceFrames, main_face_frames
from synclipmae.media.rewrite import FIX_SUFFIXES, read_soundtrack, video_start
from synclipmae.media.tracks import import_cv2
from synclipmae.media.write import VideoWriter
from synclipmae.models.dubber import dilate_masks
from synclipmae.models.dubbing import dub_crops
from synclipmae.timing import TIMING
from synclipmae.version import __version__

CHUNK = 250                   # default: output frames per generator call (10 s), rounded to whole segments
FEATHER = 0.04                # default: width of the pasted region's soft edge, as a fraction of the crop side
REVERSE_BUDGET = 512 * 2**20  # default: bytes of full-resolution frames held while a loop plays backwards
OUT_SUFFIXES = FIX_SUFFIXES   # containers the dubbed video can be written as (H.264 + AAC)


class DubError(Exception):
    """A one-line, user-facing reason a video cannot be dubbed (no face, ...); starts with the file name."""


# ----------------------------------------------------------------------------------------------------
# 1. the output's timeline


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
# 2. paste-back and the whole file


def paste_crop(frame: np.ndarray, crop: np.ndarray, mask: np.ndarray, rect, feather: float = FEATHER) -> np.ndarray:
    """`frame` uint8 [H, W, 3] with the generated `crop` uint8 [S, S, 3] blended in where `mask` bool
    [S, S] is set. The crop is mapped back by the inverse of its similarity transform (`rect`: x0, y0,
    w, h of the crop in frame pixels); the mask's edge is feathered over `feather` of the crop side,
    inside the mask, so pixels outside it keep their values. Returns a new frame (or `frame` itself
    when nothing is pasted)."""
    cv2 = import_cv2()
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
                sound, rate, layout = read_soundtrack(audio_path, 0.0)                # (C, S) at the file's rate
                if sound.shape[1] == 0:
                    raise MediaError(f"{d_name}: audio stream is empty")
                speech = resample(sound.mean(axis=0), rate, TIMING.sample_rate)  # (S16,) what the model hears
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
                src = main_face_frames(video, size, backend=backend, masks=True, segment_s=segment_s, bar=bar,
                                       spill=Path(spill) / "video")
            record.update(backend=src.backend, fps_in=round(src.fps_in, 3), source_frames=src.num_frames)
            if src.faceless == src.num_frames:
                raise DubError(f"{name}: no face found in {src.num_frames} frames")
            drv = None
            if driving_path is not None:
                with tqdm(desc=f"faces {d_name}", unit="frame", file=sys.stderr, disable=show) as bar:
                    drv = main_face_frames(driving_path, size, backend=backend, masks=False, segment_s=segment_s,
                                           bar=bar, spill=Path(spill) / "driving")
                if drv.faceless == drv.num_frames:
                    raise DubError(f"{d_name}: no face found in {drv.num_frames} frames (nothing to drive the mouth)")
                num_out = drv.num_frames
                sound, rate, layout = read_soundtrack(driving_path, video_start(driving_path), num_out / fps)
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
        record.update(status="error", error=one_line(err))
    except Exception as err:  # noqa: BLE001 - a bad file must never print a traceback
        if os.environ.get("SYNCLIPMAE_DEBUG"):
            raise
        record.update(status="error", error=f"{name}: {type(err).__name__}: {one_line(err)}")
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
