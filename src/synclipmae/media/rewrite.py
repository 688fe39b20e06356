"""Rewrite the soundtrack of a video file: read it at its own rate and layout, shift it, remux it.

`read_soundtrack(path, t_origin)` decodes a file's audio as float32 planar [C, S] with sample 0 at a
chosen time of the file's clock; `shift_audio` moves such audio earlier or later; `fix_offset` writes a
copy of a video with its audio moved by a sync offset: the video stream is copied packet by packet
where the container accepts its codec (else re-encoded with H.264), the audio re-encoded as AAC.
`media/write.py` writes new videos; this module rewrites existing ones. PyAV is imported on use
(`import_av`).
"""
from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from synclipmae.media.decode import MediaError, check_file, import_av, open_container, open_media, resample
from synclipmae.timing import TIMING

__all__ = ["FIX_SUFFIXES", "AAC_RATES", "read_soundtrack", "video_start", "shift_audio", "fix_offset"]

FIX_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")  # containers written here (video copied or H.264, AAC audio)
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
# channel count -> a layout AAC encodes; other layouts are re-labelled by their channel count or mixed to mono
_ENCODABLE_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}


# ----------------------------------------------------------------------------------------------------
# read


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


def read_soundtrack(path, t_origin: float, seconds: float | None = None) -> tuple[np.ndarray, int, str]:
    """The audio of `path` at its own rate and layout, float32 planar [C, S], sample 0 at `t_origin`
    seconds of the file's clock, cut to `seconds`; rates AAC cannot store are resampled to 48 kHz.
    Returns (samples, rate, layout name)."""
    av, p, container = open_media(path)
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
        x, rate = np.stack([resample(c, rate, 48000) for c in x]), 48000
    if seconds is not None:
        x = x[:, :int(round(seconds * rate))]
    return x, rate, layout


def _video_t0(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def video_start(path) -> float:
    """Time of the first video frame on the file's clock (the origin of the TIMING.fps timeline)."""
    container = open_media(path)[2]
    try:
        return _video_t0(container.streams.video[0])
    finally:
        container.close()


# ----------------------------------------------------------------------------------------------------
# shift


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


# ----------------------------------------------------------------------------------------------------
# remux


def fix_offset(path, out, offset_ms: float, audio_path=None) -> Path:
    """Write `out`: the video of `path` with its audio (or that of `audio_path`) moved earlier by
    `offset_ms` (the sync offset: > 0 means the audio was late, so its first offset_ms are dropped;
    < 0 pads silence in front). The video stream is copied packet by packet (not re-encoded) where the
    output container accepts its codec, else re-encoded with H.264; the audio is re-encoded as AAC
    (FIX_SUFFIXES: containers that take AAC). Raises MediaError for unreadable input."""
    av = import_av()
    src = check_file(path)
    out = Path(out)
    if out.suffix.lower() not in FIX_SUFFIXES:
        raise MediaError(f"{out.name}: the fixed file must be one of {', '.join(FIX_SUFFIXES)}")
    if out.resolve() == src.resolve():
        raise MediaError(f"{out.name}: --fix must write a new file, not the input")
    out.parent.mkdir(parents=True, exist_ok=True)
    inp = open_container(av, src)
    try:
        if not inp.streams.video:
            raise MediaError(f"{src.name}: no video stream")
        t0 = _video_t0(inp.streams.video[0])
        if audio_path is not None:
            a_src = check_file(audio_path)
            ac = open_container(av, a_src)
            try:
                if not ac.streams.audio:
                    raise MediaError(f"{a_src.name}: no audio stream")
                samples, rate, layout = _audio_samples(av, ac, ac.streams.audio[0], 0.0)
            finally:
                ac.close()
        else:
            if not inp.streams.audio:
                raise MediaError(f"{src.name}: no audio stream to shift")
            samples, rate, layout = _audio_samples(av, inp, inp.streams.audio[0], t0)
        origin = t0  # sample 0 of the audio plays with the first video frame
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
