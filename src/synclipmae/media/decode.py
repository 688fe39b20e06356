"""Decode any video file to the project's timeline: RGB frames at `TIMING.fps` and mono audio at
`TIMING.sample_rate` (DESIGN §3).

Stages, in order:

1. `probe(path)`: stream facts without decoding (`MediaError` if the file cannot be used at all).
2. `iter_frames(...)`: decode the video stream and resample it to `TIMING.fps` by **presentation
   timestamps**: output frame j shows the source frame whose timestamp is nearest to
   `t0 + start_s + j / fps` (ties go to the earlier frame), where `t0` is the first video timestamp.
   Variable-frame-rate files therefore stay in sync with their audio. Only the frames chosen are
   converted to RGB, optionally downscaled (`max_side`) by FFmpeg's scaler while converting, so memory
   is bounded by the output, never by the source resolution or length.
3. `_read_audio(...)`: decode the audio stream, mix it down to mono (the mean of the channels other
   than LFE: equal channels keep their level, nothing clips), resample it to `TIMING.sample_rate`
   with `scipy.signal.resample_poly` (zero-phase, so no delay) and place it on the video's timeline
   (audio that starts before the first video frame is dropped, audio that starts later is preceded
   by silence), padded with zeros or trimmed to `T * TIMING.samples_per_frame` samples.

Every failure is raised as `MediaError` with a one-line message naming the file; no FFmpeg traceback
reaches the user. PyAV (`av`) is a core dependency but is imported inside the functions that use it.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from synclipmae.timing import TIMING, AVTiming

CONVERT_AHEAD = 8  # default: frames whose RGB conversion may run ahead of the consumer (bounded memory)

__all__ = ["MediaError", "Decoded", "probe", "decode", "iter_frames", "load_audio", "import_av", "check_file",
           "open_container", "open_media", "resample"]


class MediaError(Exception):
    """One-line, user-facing reason a file cannot be used (missing, empty, corrupt, no video stream,
    no audio stream, too short, ...). `str(err)` starts with the file name."""


@dataclass
class Decoded:
    frames: np.ndarray            # uint8 [T, H, W, 3] RGB on the TIMING.fps timeline
    audio: np.ndarray | None      # float32 [T * samples_per_frame] mono at TIMING.sample_rate; None: no audio stream
    fps_in: float                 # average frame rate of the source video stream
    audio_mismatch_frames: float  # |audio duration - video duration| in output frames, before pad/trim
    meta: dict = field(default_factory=dict)  # source, start_s, duration_s, width, height, scale, ... (see decode)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


# ----------------------------------------------------------------------------------------------------
# errors


def import_av():
    """The `av` module (PyAV), with FFmpeg's own logging off; MediaError naming the package if missing."""
    try:
        import av  # noqa: PLC0415 - heavy import kept local (DESIGN §4)
    except ImportError as err:  # pragma: no cover - av is a core dependency
        raise MediaError(f"PyAV is not installed ({err}); run `pip install av`") from err
    with contextlib.suppress(Exception):
        # no log callback at all: FFmpeg's own log lines are not our messages, and PyAV's callback
        # (installed by any numeric level) takes the GIL for ERROR lines, which deadlocks when a
        # frame-threaded decoder logs one from its thread while the main thread, holding the GIL,
        # closes that decoder (a reader stopped before the end of the file)
        av.logging.set_level(None)
    return av


def _ffmpeg_message(err: BaseException) -> str:
    """The last line of an FFmpeg / PyAV error without its errno and file name."""
    if isinstance(err, UnicodeDecodeError):  # PyAV reading a damaged tag or stream name
        return "damaged metadata (text that is not UTF-8)"
    if isinstance(err, IndexError):  # PyAV indexing a stream or packet list the damage emptied
        return f"damaged stream data ({err})"
    text = str(err).strip().splitlines()
    msg = text[-1].strip() if text else type(err).__name__
    # PyAV messages look like "[Errno 1094995529] Invalid data found when processing input: 'x.mp4'"
    if msg.startswith("[Errno") and "]" in msg:
        msg = msg.split("]", 1)[1].strip()
    if ": '" in msg:
        msg = msg.split(": '", 1)[0]
    return msg or type(err).__name__


@contextlib.contextmanager
def _as_media_error(path: Path, what: str):
    """Turn any decoding exception into a one-line `MediaError` that names the file."""
    try:
        yield
    except MediaError:
        raise
    except MemoryError as err:
        raise MediaError(f"{path.name}: out of memory while {what} (use max_side or duration_s)") from err
    except Exception as err:  # av.FFmpegError, OSError, ValueError, ... from a corrupt file
        raise MediaError(f"{path.name}: cannot {what}: {_ffmpeg_message(err)}") from err


def check_file(path: str | os.PathLike) -> Path:
    """`path` as a Path when it is a non-empty file, else a one-line MediaError naming it."""
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p.name}: file not found ({p})")
    if p.is_dir():
        raise MediaError(f"{p.name}: is a directory, not a media file")
    try:
        size = p.stat().st_size
    except OSError as err:
        raise MediaError(f"{p.name}: cannot read file: {_ffmpeg_message(err)}") from err
    if size == 0:
        raise MediaError(f"{p.name}: file is empty (0 bytes)")
    return p


def open_container(av, p: Path):
    """`av.open(p)` for reading; any failure is a one-line MediaError naming the file."""
    with _as_media_error(p, "open file (not a readable media file)"):
        return av.open(str(p), mode="r")


def open_media(path: str | os.PathLike):
    """(av, Path, container): the media file at `path` checked (`check_file`) and opened for reading."""
    av = import_av()
    p = check_file(path)
    return av, p, open_container(av, p)


# ----------------------------------------------------------------------------------------------------
# probe


def _stream_duration(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _container_duration(container) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _rate(stream) -> float | None:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r is not None and float(r) > 0:
            return float(r)
    return None


def probe(path: str | os.PathLike) -> dict:
    """Quick stream facts of a media file, without decoding. Raises `MediaError` when the file is
    missing, empty, not a media file, or has neither a video nor an audio stream.

    Keys: source, format, size_bytes, duration_s (None if unknown), has_video, has_audio, width,
    height, fps, frames (declared count, 0 if unknown), video_codec, audio_rate, audio_channels,
    audio_codec (video_* / audio_* keys are None when that stream is absent)."""
    av, p, container = open_media(path)
    try:
        with _as_media_error(p, "read stream information"):
            vs = container.streams.video[0] if container.streams.video else None
            aus = container.streams.audio[0] if container.streams.audio else None
            if vs is None and aus is None:
                raise MediaError(f"{p.name}: no video or audio stream")
            dur = _container_duration(container)
            info = {
                "source": str(p),
                "format": container.format.name,
                "size_bytes": p.stat().st_size,
                "duration_s": dur,
                "has_video": vs is not None,
                "has_audio": aus is not None,
                "width": None, "height": None, "fps": None, "frames": 0, "video_codec": None,
                "audio_rate": None, "audio_channels": None, "audio_codec": None,
            }
            if vs is not None:
                info.update(width=vs.codec_context.width, height=vs.codec_context.height, fps=_rate(vs),
                            frames=int(vs.frames or 0), video_codec=vs.codec_context.name,
                            video_duration_s=_stream_duration(vs))
            if aus is not None:
                info.update(audio_rate=aus.codec_context.sample_rate, audio_channels=aus.codec_context.channels,
                            audio_codec=aus.codec_context.name, audio_duration_s=_stream_duration(aus))
            if info["duration_s"] is None:
                info["duration_s"] = info.get("video_duration_s") or info.get("audio_duration_s")
            return info
    finally:
        container.close()


# ----------------------------------------------------------------------------------------------------
# video


def _out_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(w, h) after downscaling so that max(w, h) <= max_side; never upscales."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 2:
        raise ValueError(f"max_side must be >= 2, got {max_side}")
    s = max_side / max(width, height)
    return max(1, int(round(width * s))), max(1, int(round(height * s)))


class _FrameReader:
    """Resamples the video stream of an open container to `timing.fps` by presentation timestamps.

    Iterating yields uint8 [H, W, 3] RGB frames; afterwards the attributes describe what was read
    (frames_in, t0, video_end, fps_in, rotation, width, height, out_size, error)."""

    def __init__(self, av, container, p: Path, max_side: int | None, start_s: float, duration_s: float | None,
                 timing: AVTiming, allow_partial: bool = False):
        if not container.streams.video:
            raise MediaError(f"{p.name}: no video stream")
        self.av, self.container, self.p, self.timing = av, container, p, timing
        self.stream = container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame + slice threads: the decoder is the bottleneck on 1080p
        self.max_side = max_side
        self.allow_partial = allow_partial
        self.start_s = max(0.0, float(start_s))
        self.max_out = None if duration_s is None else max(0, int(round(duration_s * timing.fps)))
        tb = self.stream.time_base
        self.t0 = float(self.stream.start_time * tb) if (self.stream.start_time is not None and tb) else None
        self.fps_in = _rate(self.stream) or 0.0
        self.frames_in = 0          # source frames decoded
        self.video_end: float | None = None  # timestamp just after the last source frame (seconds)
        self.rotation = 0            # quarter turns applied to display the frame (display matrix)
        self.rotation_deg = 0
        self.width = self.stream.codec_context.width
        self.height = self.stream.codec_context.height
        self.out_size: tuple[int, int] | None = None
        self.error: str | None = None  # decode error after some frames were read (file truncated)
        self.count = 0               # output frames yielded
        self.stopped_early = False  # True when reading stopped at the end of the window

    # -- decoding ------------------------------------------------------------------------------------
    def _source_frames(self) -> Iterator[tuple[float, object]]:
        """(time in seconds, av.VideoFrame) in presentation order, strictly increasing times."""
        last_t = None
        step = 1.0 / self.fps_in if self.fps_in else 1.0 / self.timing.fps
        if self.start_s > 0 and self.t0 is not None and self.stream.time_base:
            target = self.t0 + self.start_s
            with contextlib.suppress(Exception):  # unseekable input: decode from the start instead
                self.container.seek(int(target / self.stream.time_base), stream=self.stream, backward=True)
        # FFmpeg's guess_correct_pts (its "best effort timestamp"): trust pts unless pts has gone
        # backwards more often than dts, as happens with packed B-frames in AVI files
        faulty_pts = faulty_dts = 0
        last_pts = last_dts = None
        try:
            for frame in self.container.decode(self.stream):
                pts, dts = frame.pts, frame.dts
                if dts is not None:
                    faulty_dts += last_dts is not None and dts <= last_dts
                    last_dts = dts
                if pts is not None:
                    faulty_pts += last_pts is not None and pts <= last_pts
                    last_pts = pts
                ts = pts if pts is not None and (faulty_pts <= faulty_dts or dts is None) else dts
                if ts is not None and frame.time_base is not None:
                    t = float(ts * frame.time_base)
                else:  # no timestamps (raw streams): assume the nominal rate
                    t = 0.0 if last_t is None else last_t + step
                if last_t is not None and t <= last_t:
                    continue  # duplicated / out-of-order timestamp: keep the first frame shown at t
                if self.frames_in == 0:
                    self.rotation_deg = int(round(getattr(frame, "rotation", 0) or 0))
                    self.rotation = int(round(self.rotation_deg / 90.0)) % 4  # quarter turns, counter-clockwise
                    if self.rotation % 2 == 1:
                        self.width, self.height = self.height, self.width
                self.frames_in += 1
                last_t = t
                yield t, frame
        except self.av.error.FFmpegError as err:
            if self.frames_in == 0:
                raise MediaError(f"{self.p.name}: cannot decode video: {_ffmpeg_message(err)}") from err
            self.error = f"corrupt or truncated after {last_t - (self.t0 or 0.0):.2f} s: {_ffmpeg_message(err)}"
            if not self.allow_partial:
                raise MediaError(f"{self.p.name}: {self.error}") from err

    def _to_rgb(self, frame) -> np.ndarray:
        if self.out_size is None:
            self.out_size = _out_size(frame.width, frame.height, self.max_side)
        w, h = self.out_size
        if (w, h) == (frame.width, frame.height):
            arr = frame.to_ndarray(format="rgb24")
        else:
            arr = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
        if self.rotation:
            arr = np.ascontiguousarray(np.rot90(arr, k=self.rotation))  # display matrix: CCW degrees
        return arr

    def __iter__(self) -> Iterator[np.ndarray]:
        """Output frames in order. The RGB conversion (and downscaling) of each runs on a worker
        thread, overlapping the decoding of the next frames (FFmpeg releases the GIL in both)."""
        pending: deque = deque()  # [decoded frame, future RGB array, times it is shown]
        with ThreadPoolExecutor(1) as pool:
            for frame in self._schedule():
                if pending and pending[-1][0] is frame:
                    pending[-1][2] += 1  # a repeated frame is converted once
                else:
                    pending.append([frame, pool.submit(self._to_rgb, frame), 1])
                while len(pending) > CONVERT_AHEAD:
                    yield from self._converted(*pending.popleft())
            while pending:
                yield from self._converted(*pending.popleft())

    def _converted(self, _frame, future, times: int) -> Iterator[np.ndarray]:
        with _as_media_error(self.p, "decode video"):
            rgb = future.result()
        for _ in range(times):
            yield rgb

    def _schedule(self):
        """The decoded frame shown at each output time t_start + j / fps (the same object when a
        frame is repeated), in order: nearest-timestamp resampling to the output rate."""
        fps = self.timing.fps
        if self.max_out == 0:
            return
        prev_t, prev_f, last_dt = None, None, None
        t_start = None
        j = 0  # next output index; output j is shown at t_start + j / fps
        with _as_media_error(self.p, "decode video"):
            for t, f in self._source_frames():
                if t_start is None:
                    self.t0 = t if self.t0 is None else self.t0
                    t_start = self.t0 + self.start_s
                if prev_f is not None:
                    mid = 0.5 * (prev_t + t)
                    # every target time up to the midpoint is nearest to the previous frame
                    while (self.max_out is None or j < self.max_out) and t_start + j / fps <= mid + 1e-9:
                        yield prev_f
                        j += 1
                    if self.max_out is not None and j >= self.max_out:
                        self.stopped_early = True  # window filled: the rest of the file is not read
                        break
                    last_dt = t - prev_t
                prev_t, prev_f = t, f
            if prev_f is None:
                raise MediaError(f"{self.p.name}: video stream has no decodable frames")
            # the last frame read lasts its own duration (else the previous interval, else 1 / fps_in)
            dur = None
            if getattr(prev_f, "duration", None) and prev_f.time_base is not None:
                dur = float(prev_f.duration * prev_f.time_base)
            if not dur or dur <= 0:
                dur = last_dt or (1.0 / self.fps_in if self.fps_in else 1.0 / fps)
            self.video_end = prev_t + dur
            declared = _stream_duration(self.stream)
            if self.stopped_early:  # the end of the file was not reached: trust the container
                declared = declared or _container_duration(self.container)
                if declared:
                    self.video_end = max(self.video_end, self.t0 + declared)
            elif declared and self.error is None and self.video_end - self.t0 < declared - max(0.5, 0.05 * declared):
                # the stream's own index promises more frames than the file holds (cut-off download)
                ends = self.video_end - self.t0
                self.error = f"truncated: video ends at {ends:.2f} s of the declared {declared:.2f} s"
                if not self.allow_partial:
                    raise MediaError(f"{self.p.name}: {self.error}")
            n_end = int(round((self.video_end - t_start) * fps))
            if j == 0 and self.video_end > t_start:
                n_end = max(n_end, 1)  # a video shorter than one output frame still gives one frame
            if self.max_out is not None:
                n_end = min(n_end, self.max_out)
            while j < n_end:
                yield prev_f
                j += 1
        self.count = j


def iter_frames(path: str | os.PathLike, max_side: int | None = None, start_s: float = 0.0,
                duration_s: float | None = None, allow_partial: bool = False,
                timing: AVTiming = TIMING) -> Iterator[np.ndarray]:
    """Yield uint8 [H, W, 3] RGB frames of `path` resampled to `timing.fps` (nearest frame by
    presentation timestamp), starting `start_s` after the first frame, for at most `duration_s`.
    Memory stays at a couple of frames however long the file is. Raises `MediaError` (also part-way
    through a corrupt or truncated file, unless `allow_partial`)."""
    av, p, container = open_media(path)
    try:
        reader = _FrameReader(av, container, p, max_side, start_s, duration_s, timing, allow_partial)
        yield from reader
    finally:
        container.close()


# ----------------------------------------------------------------------------------------------------
# audio


def _mix_to_mono(planes: np.ndarray, channel_names: list[str]) -> np.ndarray:
    """float32 [C, S] -> [S]: the mean of the channels other than LFE (predictable, never clips)."""
    if planes.shape[0] == 1:
        return planes[0]
    keep = list(range(planes.shape[0]))
    if len(channel_names) == planes.shape[0]:
        keep = [i for i, name in enumerate(channel_names) if not name.startswith("LFE")] or keep
    return planes[keep].mean(axis=0)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Zero-phase polyphase resampling (scipy), so sample k stays at time k / rate."""
    if rate_in == rate_out or x.size == 0:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly  # noqa: PLC0415

    g = math.gcd(int(rate_in), int(rate_out))
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def _read_audio(av, container, p: Path, start: float | None, end: float | None,
                timing: AVTiming, allow_partial: bool = False) -> tuple[np.ndarray, float, dict]:
    """Decode the first audio stream between `start` and `end` (seconds on the file's clock; None:
    from the beginning / to the end) to float32 mono at `timing.sample_rate`.

    Channels are mixed down by `_mix_to_mono` and resampled by `scipy.signal.resample_poly`.
    Returns (samples, time of samples[0] in seconds, info dict)."""
    if not container.streams.audio:
        raise MediaError(f"{p.name}: no audio stream")
    stream = container.streams.audio[0]
    rate_in = stream.codec_context.sample_rate
    info = {"audio_rate_in": rate_in, "audio_channels_in": stream.codec_context.channels,
            "audio_codec": stream.codec_context.name}
    margin = 1.0  # seconds decoded on each side of a window, so the resampling filter sees context
    if start is not None and start > 0 and stream.time_base:
        with contextlib.suppress(Exception):
            container.seek(int(max(0.0, start - margin) / stream.time_base), stream=stream, backward=True)
    to_float = av.AudioResampler(format="fltp")  # sample format only: rate and layout unchanged
    chunks: list[np.ndarray] = []
    first_t: float | None = None
    n_in = 0
    error = None
    try:
        for frame in container.decode(stream):
            if first_t is None:
                first_t = frame.time if frame.time is not None else 0.0
                rate_in = frame.sample_rate or rate_in
            for fr in to_float.resample(frame):
                planes = fr.to_ndarray()  # (C, S) float32
                chunks.append(_mix_to_mono(planes, [c.name for c in fr.layout.channels]))
                n_in += planes.shape[1]
            if end is not None and first_t + n_in / rate_in > end + margin:
                break
        for fr in to_float.resample(None):
            chunks.append(_mix_to_mono(fr.to_ndarray(), [c.name for c in fr.layout.channels]))
    except av.error.FFmpegError as err:
        if n_in == 0:
            raise MediaError(f"{p.name}: cannot decode audio: {_ffmpeg_message(err)}") from err
        error = f"audio corrupt or truncated after {n_in / rate_in:.2f} s: {_ffmpeg_message(err)}"
        if not allow_partial:
            raise MediaError(f"{p.name}: {error}") from err
    if first_t is None:
        raise MediaError(f"{p.name}: audio stream has no decodable samples")
    mono = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    info["audio_duration_in_s"] = mono.shape[0] / rate_in
    sr = timing.sample_rate
    audio = resample(mono, rate_in, sr)
    if start is not None and first_t < start:  # drop what precedes the requested start
        k = min(audio.shape[0], int(round((start - first_t) * sr)))
        audio, first_t = audio[k:], first_t + k / sr
    if end is not None and first_t + audio.shape[0] / sr > end:
        audio = audio[: max(0, int(round((end - first_t) * sr)))]
    if error:
        info["audio_decode_error"] = error
    return np.ascontiguousarray(audio, dtype=np.float32), float(first_t), info


def load_audio(path: str | os.PathLike, allow_partial: bool = False, timing: AVTiming = TIMING) -> np.ndarray:
    """Any audio or video file -> float32 [S] mono at `timing.sample_rate`: the mean of the channels
    other than LFE, resampled with `scipy.signal.resample_poly` (zero-phase: no delay). Raises
    `MediaError` (also for a corrupt or truncated stream, unless `allow_partial`)."""
    av, p, container = open_media(path)
    try:
        with _as_media_error(p, "decode audio"):
            audio, _, _ = _read_audio(av, container, p, None, None, timing, allow_partial)
    finally:
        container.close()
    if audio.shape[0] == 0:
        raise MediaError(f"{p.name}: audio stream is empty")
    return audio


# ----------------------------------------------------------------------------------------------------
# decode


def decode(path: str | os.PathLike, max_side: int | None = None, start_s: float = 0.0,
           duration_s: float | None = None, need_audio: bool = False, with_audio: bool = True,
           min_frames: int = 1, allow_partial: bool = False, timing: AVTiming = TIMING,
           on_frame=None) -> Decoded:
    """Decode `path` to frames on the `timing.fps` timeline and the matching mono audio.

    max_side: downscale on decode so that max(H, W) <= max_side (aspect kept; `meta["scale"]` is
        the factor from source pixels to output pixels).
    start_s, duration_s: the window to decode, in seconds from the first video frame; with
        duration_s set, memory is bounded by the window whatever the file's length.
    need_audio: raise `MediaError` when the file has no audio stream (otherwise `audio` is None).
    with_audio: False skips audio decoding (audio is None) when only frames are wanted.
    min_frames: raise `MediaError` ("too short") when fewer output frames than this are available.
    allow_partial: keep the readable prefix of a corrupt or truncated file (noted in
        `meta["decode_error"]`) instead of raising `MediaError`.
    on_frame: called with each output frame (uint8 [H, W, 3], to read, not to change) as soon as it is
        decoded, in order, so a caller can work on the first frames while the rest decode.

    meta: source, start_s, duration_s (of the output), duration_in_s (source video), frames_in,
    fps_in, width, height (source, after rotation), out_width, out_height, scale, rotation (degrees
    counter-clockwise from the display matrix, applied as FFmpeg's autorotate does),
    video_codec, and when audio exists: audio_rate_in, audio_channels_in, audio_codec,
    audio_offset_s (audio start - video start in the source); decode_error when the file is
    truncated but a prefix was readable.
    """
    av = import_av()
    p = check_file(path)
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    if start_s < 0:
        raise ValueError(f"start_s must be >= 0, got {start_s}")
    container = open_container(av, p)
    try:
        if not container.streams.video:
            raise MediaError(f"{p.name}: no video stream" + (" (audio only)" if container.streams.audio else ""))
        if need_audio and not container.streams.audio:
            raise MediaError(f"{p.name}: no audio stream")
        reader = _FrameReader(av, container, p, max_side, start_s, duration_s, timing, allow_partial)
        buf, T = None, 0
        for rgb in reader:  # into one preallocated array: no list of frames, no np.stack copy
            if buf is None:
                declared = _stream_duration(reader.stream) or _container_duration(container) or 10.0
                cap = reader.max_out or int((declared - reader.start_s) * timing.fps) + 2
                buf = np.empty((max(cap, 1), *rgb.shape), np.uint8)  # (T, H, W, 3), pages touched as filled
            elif T == buf.shape[0]:
                grown = np.empty((2 * T, *rgb.shape), np.uint8)
                grown[:T] = buf
                buf = grown
            buf[T] = rgb
            T += 1
            if on_frame is not None:
                on_frame(rgb)
        codec = reader.stream.codec_context.name
    finally:
        container.close()
    if T < max(1, min_frames):
        if T == 0:
            raise MediaError(f"{p.name}: no video frames at or after start_s={start_s:g} s")
        raise MediaError(f"{p.name}: too short: {T} frames at {timing.fps} fps, need at least {min_frames}")
    frames = buf[:T]  # (T, H, W, 3)
    t0 = reader.t0 or 0.0
    t_start = t0 + reader.start_s
    video_dur_in = reader.video_end - t0
    h_out, w_out = frames.shape[1:3]
    meta = {
        "source": str(p), "start_s": reader.start_s, "duration_s": T / timing.fps,
        "duration_in_s": video_dur_in, "frames_in": reader.frames_in, "fps_in": reader.fps_in,
        "width": reader.width, "height": reader.height, "out_width": int(w_out), "out_height": int(h_out),
        "scale": w_out / reader.width, "rotation": reader.rotation_deg, "video_codec": codec,
    }
    if reader.error:
        meta["decode_error"] = reader.error

    audio, mismatch = None, 0.0
    has_audio = False
    if with_audio:
        container = open_container(av, p)
        try:
            has_audio = bool(container.streams.audio)
            if has_audio:
                full = reader.start_s == 0 and duration_s is None
                with _as_media_error(p, "decode audio"):
                    end = t_start + T / timing.fps
                    raw, a_t, info = _read_audio(av, container, p, None if full else t_start, None if full else end,
                                                 timing, allow_partial)
                    stream = container.streams.audio[0]
                meta.update(info)
                if full:  # the whole file: compare what was decoded
                    audio_dur = (a_t - t0) + raw.shape[0] / timing.sample_rate if raw.size else 0.0
                    meta["audio_offset_s"] = a_t - t0
                else:  # a window: compare the streams' declared durations
                    a_dur = _stream_duration(stream)
                    a_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
                    audio_dur = (a_start - t0) + a_dur if a_dur is not None else video_dur_in
                    meta["audio_offset_s"] = a_start - t0
                mismatch = abs(audio_dur - video_dur_in) * timing.fps
                audio = _place(raw, a_t - t_start, T * timing.samples_per_frame, timing.sample_rate)
        finally:
            container.close()
    return Decoded(frames=frames, audio=audio, fps_in=float(reader.fps_in), audio_mismatch_frames=float(mismatch),
                   meta=meta)


def _place(raw: np.ndarray, offset_s: float, n: int, sr: int) -> np.ndarray:
    """float32 [n]: `raw` starting `offset_s` seconds after sample 0, zeros elsewhere."""
    out = np.zeros(n, np.float32)
    k = int(round(offset_s * sr))
    src0, dst0 = (0, k) if k >= 0 else (-k, 0)
    m = min(raw.shape[0] - src0, n - dst0)
    if m > 0:
        out[dst0:dst0 + m] = raw[src0:src0 + m]
    return out
