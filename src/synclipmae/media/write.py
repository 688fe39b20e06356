"""Write video files: H.264 (yuv420p) mp4 with an optional AAC mono soundtrack, and wav files.

`write_video(path, frames, fps, audio, sample_rate)` encodes RGB frames uint8 [T, H, W, 3] and, when
given, audio float32 [S] (mono, -1..1) into one mp4, interleaving the two streams in time order so any
player or decoder can stream it. `write_wav(path, audio, sample_rate)` writes a mono wav with
soundfile. PyAV and soundfile are imported inside the functions (DESIGN §4).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["write_video", "write_wav", "VideoWriter"]


def _even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: repeat the last row / column where they are odd."""
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def write_video(path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                sample_rate: int | None = None, crf: int = 18, preset: str = "veryfast") -> Path:
    """Write frames uint8 [T, H, W, 3] (RGB) at `fps` and optional mono audio float32 [S] at
    `sample_rate` to an mp4 (H.264 yuv420p, AAC). Odd sizes are padded by one edge row/column.
    Returns the path."""
    import av  # noqa: PLC0415

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    if len(frames) == 0:
        raise ValueError("frames is empty: nothing to write")
    if audio is not None:
        audio = np.asarray(audio, np.float32).reshape(-1)
        if sample_rate is None:
            raise ValueError("sample_rate is required with audio")
    frames = _even(frames)
    T, H, W, _ = frames.shape
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    vtb = 1 / rate

    with av.open(str(path), mode="w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.time_base = vtb
        vs.options = {"crf": str(crf), "preset": preset}
        aus = None
        if audio is not None:
            aus = out.add_stream("aac", rate=int(sample_rate), layout="mono")
            aus.codec_context.time_base = Fraction(1, int(sample_rate))
            chunk = aus.codec_context.frame_size or 1024
            audio = np.clip(audio, -1.0, 1.0)
        a_pos = 0

        def push_audio(until: int) -> None:
            nonlocal a_pos
            while aus is not None and a_pos < min(until, len(audio)):
                piece = audio[a_pos:min(a_pos + chunk, len(audio))]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece[None, :]), format="fltp",
                                                layout="mono")
                af.sample_rate = int(sample_rate)
                af.pts = a_pos
                af.time_base = Fraction(1, int(sample_rate))
                out.mux(aus.encode(af))
                a_pos += len(piece)

        for t in range(T):
            vf = av.VideoFrame.from_ndarray(frames[t], format="rgb24")
            vf.pts = t
            vf.time_base = vtb
            out.mux(vs.encode(vf))
            if aus is not None:
                push_audio(int(round((t + 1) / rate * int(sample_rate))))
        out.mux(vs.encode(None))
        if aus is not None:
            push_audio(len(audio))
            out.mux(aus.encode(None))
    return path


class VideoWriter:
    """The streaming form of `write_video`, for videos too long to hold: frames are given one at a
    time (memory: one frame), the soundtrack up front (it is small next to the frames) and interleaved
    with the frames as they arrive. H.264 yuv420p + AAC; the container follows the suffix of `path`
    (.mp4 / .m4v: mp4, .mov, .mkv). Odd sizes are padded by one edge row/column.

    audio: float32 [S] (mono) or planar [C, S], -1..1 (clipped), at `sample_rate`; `layout` names
    its channels (default: mono, stereo, or FFmpeg's default layout for C channels)."""

    _FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

    def __init__(self, path, fps: float, audio: np.ndarray | None = None, sample_rate: int | None = None,
                 layout: str | None = None, crf: int = 18, preset: str = "veryfast"):
        import av  # noqa: PLC0415

        self.path = Path(path)
        if audio is not None:
            audio = np.asarray(audio, np.float32)
            audio = np.clip(audio[None] if audio.ndim == 1 else audio, -1.0, 1.0)   # (C, S)
            if sample_rate is None:
                raise ValueError("sample_rate is required with audio")
            layout = layout or {1: "mono", 2: "stereo"}.get(audio.shape[0], f"{audio.shape[0]}c")
        self._av, self._audio, self._rate, self._layout = av, audio, sample_rate, layout
        self._fps = Fraction(fps).limit_denominator(1001)
        self._crf, self._preset = crf, preset
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.path), mode="w", format=self._FORMATS.get(self.path.suffix.lower(), "mp4"))
        self._vs = self._as = None
        self.frames = 0     # frames written
        self._a_pos = 0     # audio samples written

    def _open_streams(self, h: int, w: int) -> None:
        vs = self._out.add_stream("libx264", rate=self._fps)
        vs.width, vs.height, vs.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        vs.codec_context.time_base = 1 / self._fps
        vs.options = {"crf": str(self._crf), "preset": self._preset}
        self._vs = vs
        if self._audio is not None:
            self._as = self._out.add_stream("aac", rate=int(self._rate), layout=self._layout)
            self._as.codec_context.time_base = Fraction(1, int(self._rate))

    def _push_audio(self, until: int) -> None:
        if self._as is None:
            return
        av, chunk = self._av, self._as.codec_context.frame_size or 1024
        end = min(until, self._audio.shape[1])
        while self._a_pos < end:
            piece = self._audio[:, self._a_pos:min(self._a_pos + chunk, self._audio.shape[1])]
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout=self._layout)
            af.sample_rate, af.pts, af.time_base = int(self._rate), self._a_pos, Fraction(1, int(self._rate))
            self._out.mux(self._as.encode(af))
            self._a_pos += piece.shape[1]

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 [H, W, 3] RGB frame (every frame the size of the first)."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if self._vs is None:
            self._open_streams(*frame.shape[:2])
        frame = _even(frame[None])[0]
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts, vf.time_base = self.frames, 1 / self._fps
        self._out.mux(self._vs.encode(vf))
        self.frames += 1
        self._push_audio(int(round(self.frames / self._fps * int(self._rate or 0))))

    def close(self) -> Path:
        """Flush the encoders and close the file. Returns the path."""
        if self._out is None:
            return self.path
        try:
            if self._vs is None:
                raise ValueError("no frames were written")
            self._out.mux(self._vs.encode(None))
            if self._as is not None:
                self._push_audio(self._audio.shape[1])
                self._out.mux(self._as.encode(None))
        finally:
            self._out.close()
            self._out = None
        return self.path

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._out is not None:  # an error: close the file without flushing (the caller removes it)
            self._out.close()
            self._out = None


def write_wav(path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono audio float32 [S] (-1..1, clipped) as a wav file (16-bit PCM by default)."""
    import soundfile as sf  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(path), audio, int(sample_rate), subtype=subtype)
    return path
