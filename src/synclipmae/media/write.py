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

__all__ = ["write_video", "write_wav"]


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


def write_wav(path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono audio float32 [S] (-1..1, clipped) as a wav file (16-bit PCM by default)."""
    import soundfile as sf  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(path), audio, int(sample_rate), subtype=subtype)
    return path
