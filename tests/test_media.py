"""media/decode.py and media/faces.py: synthetic files written here with PyAV, plus real clips.

Synthetic videos show their source frame index as 8 black/white bars (bit b of the index in bar b), so
the test can read back which source frame the resampler to TIMING.fps chose. Real-clip tests read
../shared/data/real (DESIGN §4) and skip with a reason when it is absent.
"""
from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest

from synclipmae.media.decode import MediaError, decode, iter_frames, load_audio, probe
from synclipmae.timing import TIMING

av = pytest.importorskip("av")

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
FPS, SR, SPF = TIMING.fps, TIMING.sample_rate, TIMING.samples_per_frame
W, H = 128, 32  # synthetic frame size: 8 bars of 16 px


# ----------------------------------------------------------------------------------------------------
# synthetic media


def bars(i: int, w: int = W, h: int = H) -> np.ndarray:
    """uint8 [h, w, 3]: bar b is white when bit b of i is set."""
    img = np.zeros((h, w, 3), np.uint8)
    for b in range(8):
        if (i >> b) & 1:
            img[:, b * w // 8:(b + 1) * w // 8] = 255
    return img


def read_bars(img: np.ndarray) -> int:
    w = img.shape[1]
    return sum(1 << b for b in range(8) if img[:, b * w // 8 + w // 32:(b + 1) * w // 8 - w // 32].mean() > 127)


def write_media(path: Path, times_s=None, audio: np.ndarray | None = None, audio_rate: int = 48000,
                layout: str = "stereo", size=(W, H), frame_fn=bars, codec: str = "libx264",
                options: dict | None = None) -> Path:
    """Video frame i shown at times_s[i] (seconds; None: no video stream) plus optional audio
    float32 [S, C] at audio_rate (AAC in mp4, PCM in wav/mkv); `options` go to the muxer."""
    c = av.open(str(path), "w", options=options or {})
    tb = fractions.Fraction(1, 6000)  # exact for the usual frame rates and for whole milliseconds
    vs = None
    if times_s is not None:
        gaps = np.diff(times_s) if len(times_s) > 1 else [1 / 30]
        vs = c.add_stream(codec, rate=fractions.Fraction(1 / float(np.median(gaps))).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        vs.codec_context.time_base = tb
    aus = None
    if audio is not None:
        acodec = "aac" if path.suffix in (".mp4", ".m4a") else "pcm_s16le"
        aus = c.add_stream(acodec, rate=audio_rate, layout=layout)
    if vs is not None:
        ticks = np.round(np.asarray(times_s, np.float64) * tb.denominator).astype(np.int64)
        steps = np.diff(ticks) if len(ticks) > 1 else np.array([tb.denominator // 30])
        for i, t in enumerate(ticks):
            f = av.VideoFrame.from_ndarray(frame_fn(i), format="rgb24")
            f.pts, f.time_base = int(t), tb
            f.duration = int(steps[min(i, len(steps) - 1)])  # the last frame lasts as long as the one before
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    if aus is not None:
        chunk = 1024
        fmt = "fltp" if aus.codec_context.name == "aac" else "s16"
        for k in range(0, len(audio), chunk):
            block = audio[k:k + chunk]
            if fmt == "fltp":
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T, np.float32), format="fltp", layout=layout)
            else:
                pcm = (np.clip(block, -1, 1) * 32767).astype(np.int16).reshape(1, -1)  # interleaved
                fr = av.AudioFrame.from_ndarray(pcm, format="s16", layout=layout)
            fr.sample_rate, fr.pts = audio_rate, k
            for p in aus.encode(fr):
                c.mux(p)
        for p in aus.encode(None):
            c.mux(p)
    c.close()
    return path


def const_times(n: int, fps: float) -> np.ndarray:
    return np.arange(n) / fps


def nearest(times: np.ndarray, T: int) -> list[int]:
    """Expected source index per output frame: nearest timestamp, ties to the earlier frame."""
    out = []
    for j in range(T):
        d = np.abs(times - j / FPS)
        out.append(int(np.flatnonzero(d <= d.min() + 1e-9)[0]))
    return out


def tone(seconds: float, rate: int, channels: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return np.repeat((amp * np.sin(2 * np.pi * freq * t))[:, None], channels, axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# resampling to TIMING.fps by presentation timestamps


@pytest.mark.parametrize("fps_in", [15, FPS, 30, 60])
def test_constant_rates_pick_nearest_frame(tmp_path, fps_in):
    n = 2 * fps_in  # 2 s
    times = const_times(n, fps_in)
    p = write_media(tmp_path / f"c{fps_in}.mp4", times)
    d = decode(p)
    assert d.frames.shape == (2 * FPS, H, W, 3) and d.frames.dtype == np.uint8
    assert [read_bars(f) for f in d.frames] == nearest(times, 2 * FPS)
    assert d.fps_in == pytest.approx(fps_in, rel=1e-3)
    assert d.audio is None and d.audio_mismatch_frames == 0.0
    assert d.meta["frames_in"] == n and d.meta["duration_in_s"] == pytest.approx(2.0, abs=1e-3)


def test_variable_frame_rate_follows_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    times = np.cumsum(np.r_[0, rng.integers(10, 90, 79)]) / 1000.0  # 80 frames, 10-90 ms apart
    p = write_media(tmp_path / "vfr.mp4", times)
    d = decode(p)
    expected_T = int(round((times[-1] + (times[-1] - times[-2])) * FPS))
    assert abs(len(d.frames) - expected_T) <= 1
    got = [read_bars(f) for f in d.frames]
    assert got[:-1] == nearest(times, len(d.frames))[:-1]
    assert got == sorted(got)  # never goes back in time


def test_window_matches_full_decode_and_iter_frames(tmp_path):
    times = const_times(90, 30)  # 3 s at 30 fps
    audio = tone(3.0, 48000, 2)
    p = write_media(tmp_path / "w.mkv", times, audio=audio)
    full = decode(p)
    win = decode(p, start_s=1.0, duration_s=0.8)
    assert win.frames.shape[0] == 20 and win.audio.shape == (20 * SPF,)
    assert [read_bars(f) for f in win.frames] == [read_bars(f) for f in full.frames[FPS:FPS + 20]]
    np.testing.assert_allclose(win.audio, full.audio[FPS * SPF:(FPS + 20) * SPF], atol=2e-3)
    assert [read_bars(f) for f in iter_frames(p, start_s=1.0, duration_s=0.8)] == [read_bars(f) for f in win.frames]
    assert decode(p, start_s=2.9).frames.shape[0] == 3  # the window is clipped at the end of the file
    with pytest.raises(MediaError, match="no video frames"):
        decode(p, start_s=10.0)


def test_max_side_downscales(tmp_path):
    p = write_media(tmp_path / "big.mp4", const_times(10, FPS), size=(512, 128), frame_fn=lambda i: bars(i, 512, 128))
    d = decode(p, max_side=128)
    assert d.frames.shape == (10, 32, 128, 3)
    assert [read_bars(f) for f in d.frames] == list(range(10))
    assert d.meta["scale"] == pytest.approx(0.25) and (d.meta["width"], d.meta["height"]) == (512, 128)


def test_one_frame_video(tmp_path):
    p = write_media(tmp_path / "one.mp4", [0.0])
    d = decode(p)
    assert d.frames.shape == (1, H, W, 3) and read_bars(d.frames[0]) == 0
    with pytest.raises(MediaError, match="too short"):
        decode(p, min_frames=16)


def test_non_ascii_file_name(tmp_path):
    p = write_media(tmp_path / "vidéo 日本語 ü.mp4", const_times(FPS, FPS), audio=tone(1.0, 44100, 1), layout="mono",
                    audio_rate=44100)
    d = decode(p, need_audio=True)
    assert d.frames.shape[0] == FPS and d.audio.shape == (FPS * SPF,)
    assert probe(p)["has_audio"]


# ----------------------------------------------------------------------------------------------------
# audio


def test_audio_video_sync_click_and_flash(tmp_path):
    """A flash at 1.0 s in a 30 fps video and a click at 1.0 s in 48 kHz stereo AAC stay together."""
    rate = 48000
    audio = np.zeros((2 * rate, 2), np.float32)
    audio[rate:rate + 48] = 0.9  # 1 ms click at exactly 1.0 s
    flash = 30

    def frame(i):
        return np.full((H, W, 3), 255 if i == flash else 0, np.uint8)

    p = write_media(tmp_path / "sync.mp4", const_times(60, 30), audio=audio, audio_rate=rate, frame_fn=frame)
    d = decode(p)
    assert int(np.argmax(d.frames.mean(axis=(1, 2, 3)))) == 1 * FPS
    assert abs(int(np.argmax(np.abs(d.audio))) - 1 * SR) <= SR // 1000 * 2  # within 2 ms
    assert d.meta["audio_rate_in"] == rate and d.meta["audio_channels_in"] == 2


@pytest.mark.parametrize("rate,layout,channels", [(48000, "stereo", 2), (48000, "5.1", 6), (44100, "mono", 1),
                                                  (8000, "mono", 1)])
def test_load_audio_resamples_and_mixes_down(tmp_path, rate, layout, channels):
    x = tone(1.0, rate, channels)
    x[rate // 2 + 100] = 0.0
    x[rate // 2] = 0.99  # an impulse at exactly 0.5 s
    p = write_media(tmp_path / f"a_{rate}_{channels}.wav", None, audio=x, audio_rate=rate, layout=layout)
    a = load_audio(p)
    assert a.dtype == np.float32 and a.ndim == 1 and abs(a.shape[0] - SR) <= 1
    steady = a[SR // 10:SR // 2 - SR // 10]
    assert np.abs(steady).max() == pytest.approx(0.5, abs=0.02)  # the mean of equal channels keeps the level
    resid = a - np.interp(np.arange(len(a)), np.arange(len(a)), 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(a)) / SR))
    assert int(np.argmax(np.abs(resid))) == pytest.approx(SR // 2, abs=1)  # no delay from resampling


def test_audio_longer_and_shorter_than_video(tmp_path):
    times = const_times(2 * FPS, FPS)  # 2 s
    longer = write_media(tmp_path / "long.mkv", times, audio=tone(3.0, 22050, 1), audio_rate=22050, layout="mono")
    shorter = write_media(tmp_path / "short.mkv", times, audio=tone(1.0, 22050, 1), audio_rate=22050, layout="mono")
    d = decode(longer)
    assert d.audio.shape == (50 * SPF,) and np.abs(d.audio[-SPF:]).max() > 0.4
    assert d.audio_mismatch_frames == pytest.approx(FPS, abs=1)
    d = decode(shorter)
    assert d.audio.shape == (50 * SPF,)
    assert np.abs(d.audio[: 20 * SPF]).max() > 0.4 and np.abs(d.audio[27 * SPF:]).max() == 0.0
    assert d.audio_mismatch_frames == pytest.approx(FPS, abs=1)


def test_no_audio_stream(tmp_path):
    p = write_media(tmp_path / "silent.mp4", const_times(FPS, FPS))
    assert decode(p).audio is None
    with pytest.raises(MediaError, match="no audio stream"):
        decode(p, need_audio=True)
    with pytest.raises(MediaError, match="no audio stream"):
        load_audio(p)
    assert decode(write_media(tmp_path / "av.mkv", const_times(FPS, FPS), audio=tone(1, SR, 1), audio_rate=SR,
                              layout="mono"), with_audio=False).audio is None


def test_no_video_stream(tmp_path):
    p = write_media(tmp_path / "speech.wav", None, audio=tone(1.0, SR, 1), audio_rate=SR, layout="mono")
    with pytest.raises(MediaError, match="no video stream"):
        decode(p)
    info = probe(p)
    assert not info["has_video"] and info["has_audio"] and info["audio_rate"] == SR
    assert load_audio(p).shape == (SR,)


# ----------------------------------------------------------------------------------------------------
# bad files: one-line MediaError naming the file


def _bad_files(tmp_path) -> dict[str, Path]:
    good = write_media(tmp_path / "good.mp4", const_times(FPS, FPS), audio=tone(1.0, 48000, 2))
    data = good.read_bytes()
    files = {"missing": tmp_path / "missing.mp4", "empty": tmp_path / "empty.mp4", "truncated": tmp_path / "trunc.mp4",
             "text": tmp_path / "notes.mp4", "garbage": tmp_path / "noise.mp4", "directory": tmp_path / "dir.mp4"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("this is not a video\n" * 20)
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["directory"].mkdir()
    return files


@pytest.mark.parametrize("fn", [decode, probe, load_audio], ids=["decode", "probe", "load_audio"])
def test_bad_files_raise_one_line_media_error(tmp_path, fn):
    for kind, p in _bad_files(tmp_path).items():
        with pytest.raises(MediaError) as err:
            fn(p)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(p.name), (kind, msg)
    with pytest.raises(MediaError, match="empty"):
        fn(tmp_path / "empty.mp4")
    with pytest.raises(MediaError, match="not found"):
        fn(tmp_path / "missing.mp4")


def _faststart(path: Path, n: int = 100) -> Path:
    """An mp4 with its index first: cutting it leaves a file that opens but lacks frames."""
    return write_media(path, const_times(n, FPS), options={"movflags": "faststart"})


def test_truncated_or_corrupt_video_raises_unless_partial_allowed(tmp_path):
    data = _faststart(tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        decode(cut)
    d = decode(cut, allow_partial=True)
    assert 0 < len(d.frames) < 100 and "truncated" in d.meta["decode_error"]
    assert [read_bars(f) for f in d.frames] == list(range(len(d.frames)))  # the readable prefix is right
    bad = bytearray(data)
    bad[len(bad) // 2:len(bad) // 2 + 2000] = bytes(2000)
    (tmp_path / "hole.mp4").write_bytes(bytes(bad))
    with pytest.raises(MediaError) as err:
        decode(tmp_path / "hole.mp4")
    assert "\n" not in str(err.value)
    with pytest.raises(MediaError):
        list(iter_frames(cut))


def test_display_rotation_is_applied(tmp_path):
    """A phone-style display matrix (rotation -90: turn clockwise to display) in the mp4 track header."""
    import struct

    p = write_media(tmp_path / "upright.mp4", const_times(5, FPS))
    data = bytearray(p.read_bytes())
    i = data.find(b"tkhd")
    off = i + 4 + 4 + (32 if data[i + 4] == 1 else 20) + 8 + 8  # version/flags, times..duration, reserved, layer..
    assert data[off:off + 36] == struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    data[off:off + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    (tmp_path / "rotated.mp4").write_bytes(bytes(data))
    up, rot = decode(p), decode(tmp_path / "rotated.mp4", max_side=64)
    assert rot.meta["rotation"] == -90 and (rot.meta["width"], rot.meta["height"]) == (H, W)
    assert rot.frames.shape == (5, 64, 16, 3)
    np.testing.assert_array_equal(decode(tmp_path / "rotated.mp4").frames, np.rot90(up.frames, k=-1, axes=(1, 2)))


def test_probe_synthetic(tmp_path):
    p = write_media(tmp_path / "p.mp4", const_times(30, 30), audio=tone(1.0, 44100, 2), audio_rate=44100)
    info = probe(p)
    assert info["has_video"] and info["has_audio"]
    assert (info["width"], info["height"]) == (W, H) and info["video_codec"] == "h264"
    assert info["audio_rate"] == 44100 and info["audio_channels"] == 2
    assert info["duration_s"] == pytest.approx(1.0, abs=0.1)


# ----------------------------------------------------------------------------------------------------
# face tracking logic with a scripted detector (no model needed)


class ScriptedDetector:
    """Returns the boxes script(t) for the frame whose bar code reads t (in small-frame pixels)."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def __call__(self, rgb):
        self.calls += 1
        boxes = np.asarray(self.script(read_bars(rgb[:8])), np.float32).reshape(-1, 4)
        return boxes, np.ones(len(boxes), np.float32)

    def close(self):
        pass


def scripted_frames(n: int, cut_at: int | None = None) -> np.ndarray:
    """Frames whose top 8 rows carry the frame index; a brightness jump at cut_at (a shot cut)."""
    frames = np.zeros((n, 96, W, 3), np.uint8)
    for t in range(n):
        frames[t, 8:] = 200 if cut_at is not None and t >= cut_at else 20
        frames[t, :8] = bars(t, W, 8)
    return frames


@pytest.fixture
def scripted(monkeypatch):
    from synclipmae.media import faces

    def install(script):
        det = ScriptedDetector(script)
        monkeypatch.setattr(faces, "_resolve_backend", lambda backend: "haar")
        monkeypatch.setattr(faces, "_make_detector", lambda backend, min_score: det)
        monkeypatch.setattr(faces, "_haar_has_eyes", lambda frames, boxes: True)
        return det

    return install


def test_tracking_bridges_short_gaps_and_splits_long_ones(scripted):
    from synclipmae.media.faces import track_faces

    def script(t):  # a face moving right; missing at 10-12 (short gap) and 30-49 (long gap)
        return [] if 10 <= t <= 12 or 30 <= t < 50 else [[20 + t, 30, 60 + t, 70]]

    scripted(script)
    r = track_faces(scripted_frames(70), max_side=None, detect_every=1, min_track_frames=5, max_gap=5,
                    min_track_score=0)
    assert [(tr.start_frame, tr.end_frame) for tr in r.tracks] == [(0, 30), (50, 70)]
    assert r.faceless_frames == 20 and r.face_fraction == pytest.approx(50 / 70)
    tr = r.tracks[0]
    assert not tr.detected[10:13].any() and tr.detected[:10].all()
    np.testing.assert_allclose(tr.boxes[11], [31, 30, 71, 70], atol=0.5)  # interpolated across the gap
    assert tr.boxes.dtype == np.float32 and tr.boxes.shape == (30, 4)


def test_tracking_two_faces_short_tracks_and_shot_cut(scripted):
    from synclipmae.media.faces import track_faces

    def script(t):
        faces = [[5, 20, 35, 50], [80, 20, 110, 50]]  # two still faces
        if 5 <= t < 8:
            faces.append([50, 60, 60, 70])  # a 3-frame blip: dropped
        return faces

    scripted(script)
    r = track_faces(scripted_frames(40, cut_at=20), max_side=None, detect_every=1, min_track_frames=5,
                    min_track_score=0)
    assert r.shot_cuts == [20]
    spans = sorted((tr.start_frame, tr.end_frame, int(tr.boxes[0, 0])) for tr in r.tracks)
    assert spans == [(0, 20, 5), (0, 20, 80), (20, 40, 5), (20, 40, 80)]
    assert [tr.track for tr in r.tracks] == [0, 1, 2, 3] and r.faceless_frames == 0


def test_detect_every_interpolates(scripted):
    from synclipmae.media.faces import detect_faces, track_faces

    det = scripted(lambda t: [[2 * t, 10, 2 * t + 40, 50]])
    r = track_faces(scripted_frames(31), max_side=None, detect_every=5, smooth_sigma=0, min_track_score=0)
    assert det.calls == 7  # frames 0, 5, ..., 30
    (tr,) = r.tracks
    np.testing.assert_allclose(tr.boxes[:, 0], 2 * np.arange(31), atol=1e-4)
    boxes = detect_faces(scripted_frames(31), detect_every=5, max_side=None)
    assert len(boxes) == 31 and boxes[1] is None and boxes[5].shape == (1, 4)


def test_detections_made_while_decoding_are_not_run_again(scripted):
    """`track_faces(detections=)`: frames already detected (as `decode_and_track` does while a segment
    decodes) are not detected again, and the tracks are the same."""
    from synclipmae.media.faces import FaceDetector, track_faces

    det = scripted(lambda t: [] if 12 <= t < 15 else [[20 + t, 30, 60 + t, 70]])
    frames = scripted_frames(40, cut_at=25)
    whole = track_faces(frames, max_side=None, min_track_frames=5, min_track_score=0)
    with FaceDetector(max_side=None) as early:
        found = {t: early(frames[t]) for t in range(0, 30, early.every)}  # the first 30 frames "decoded"
    det.calls = 0
    given = track_faces(frames, max_side=None, min_track_frames=5, min_track_score=0, detections=found)
    # haar: every 2nd frame from 30, the second shot's first frame (25) and the last frame (39)
    assert det.calls == len(range(30, 40, 2)) + 2
    assert [(tr.start_frame, tr.end_frame) for tr in given.tracks] == [(tr.start_frame, tr.end_frame)
                                                                       for tr in whole.tracks]
    for a, b in zip(given.tracks, whole.tracks):
        np.testing.assert_array_equal(a.boxes, b.boxes)


def test_auto_backend_falls_back_to_haar(monkeypatch):
    pytest.importorskip("cv2", reason="face detection needs opencv-python-headless (the [faces] extra)")
    from synclipmae.media import faces

    monkeypatch.setattr(faces, "_mediapipe_solutions", lambda: None)  # as if mediapipe failed to import
    assert faces._resolve_backend("auto") == "haar" and faces.available_backends() == ["haar"]
    with pytest.raises(ImportError, match="mediapipe==0.10.21"):
        faces._resolve_backend("mediapipe")
    with pytest.raises(ValueError, match="backend"):
        faces._resolve_backend("dlib")


def test_crops_and_masks_from_boxes():
    from synclipmae.media.tracks import FaceTrack

    frames = np.full((3, 100, 120, 3), 50, np.uint8)
    boxes = np.array([[40, 30, 80, 70], [-10, -10, 30, 30], [100, 80, 140, 120]], np.float32)  # centre, corners
    tr = FaceTrack(track=0, start_frame=0, end_frame=3, boxes=boxes)
    crops = tr.crops(frames, 64, margin=0.25)
    assert crops.shape == (3, 64, 64, 3) and crops.dtype == np.uint8
    assert (crops[0] == 50).all()                    # inside the frame
    assert crops[1, 0, 0].max() == 0 and crops[1, -1, -1].max() == 50  # padded black outside
    face, mouth = tr.masks(64, margin=0.25)
    assert face.shape == mouth.shape == (3, 64, 64) and face.dtype == bool
    rows = np.nonzero(mouth[0])[0]
    assert rows.min() > 32 and face[0, 32, 32] and not face[0, 0, 0]  # mouth in the lower half, face centred
    assert tr.scaled(2.0).boxes[0].tolist() == [80, 60, 160, 140]
    assert FaceTrack(0, 5, 8, boxes).crops(frames, 16).shape == (3, 16, 16, 3)  # frames of the track only


# ----------------------------------------------------------------------------------------------------
# real clips (../shared/data/real)


def real(name: str) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real test clips not present at {REAL} (shared data folder absent)")
    p = REAL / name
    if not p.exists():
        pytest.skip(f"{name} missing from {REAL}")
    return p


@pytest.mark.parametrize("name,fps_in,frames,audio", [
    ("marlin_video02.mp4", 15, 50, True),           # 15 fps webcam, 1280x720
    ("latentsync_demo3_video.mp4", 30, FPS, True),  # HEVC 1080x1920 30 fps, window in the middle
    ("lipdetector_example.avi", 30, 24, True),      # AVI, packed B-frames, 28 frames, MP3
    ("marlin_cropped01.mp4", 30, 50, False),        # no audio stream
])
def test_real_clips_decode(name, fps_in, frames, audio):
    p = real(name)
    start = 5.0 if "demo3" in name else 0.0
    d = decode(p, max_side=160, start_s=start, duration_s=2.0 if frames >= 50 else 1.0)
    assert d.frames.shape[0] == frames and max(d.frames.shape[1:3]) <= 160
    assert d.fps_in == pytest.approx(fps_in, rel=0.01)
    assert (d.audio is not None) == audio
    if audio:
        assert d.audio.shape == (frames * SPF,) and np.abs(d.audio).max() > 0.01


def test_real_audio_files():
    a = load_audio(real("musetalk_yongen.wav"))  # 48 kHz stereo, 8 s
    assert a.shape[0] == pytest.approx(8 * SR, abs=2)
    assert load_audio(real("usr_example.wav")).shape[0] == pytest.approx(6.016 * SR, abs=2)  # float32 PCM


@pytest.mark.parametrize("backend", ["mediapipe", "haar"])
def test_real_clip_face_track(backend):
    pytest.importorskip("cv2", reason="face tracking needs opencv-python-headless (the [faces] extra)")
    from synclipmae.media.faces import available_backends, track_faces

    if backend not in available_backends():
        pytest.skip(f"{backend} backend not importable here")
    d = decode(real("videoretalking_face3.mp4"), max_side=256, duration_s=2.0, with_audio=False)
    r = track_faces(d.frames, backend=backend)
    assert r.backend == backend and r.face_fraction >= 0.95
    tr = r.main_track()
    crops = tr.crops(d.frames, 96)
    face, mouth = tr.masks(96)
    assert crops.shape == (len(tr), 96, 96, 3) and face.shape == mouth.shape == (len(tr), 96, 96)
    assert 0.2 < face.mean() < 0.8 and 0.03 < mouth.mean() < face.mean()
    assert np.nonzero(mouth[0])[0].mean() > 48  # the lower face is in the lower half of the crop
    if backend == "mediapipe":
        assert tr.landmarks is not None and tr.landmarks.shape == (len(tr), 468, 2)
    w = tr.boxes[:, 2] - tr.boxes[:, 0]
    assert np.abs(np.diff(w)).max() < 0.1 * w.mean()  # smoothed: the box size does not jump


def test_crop_pieces_rereads_small_faces_at_full_resolution(tmp_path, monkeypatch):
    """A face too small in the detection copy is cropped from a re-read of the source; both kinds of
    piece report their crop squares in source pixels, and match crops of the full-resolution frames."""
    from synclipmae.media.tracks import FaceTrack, crop_square
    from synclipmae.media.pipeline import crop_pieces

    w, h = 640, 480
    ramp = lambda i: np.stack(np.broadcast_arrays(                                   # noqa: E731
        np.linspace(0, 255, w)[None].repeat(h, 0), np.linspace(0, 255, h)[:, None].repeat(w, 1),
        np.full((h, w), 40.0 + 10 * i)), -1).astype(np.uint8)
    p = write_media(tmp_path / "ramp.mp4", const_times(10, FPS), size=(w, h), frame_fn=ramp)
    d = decode(p, max_side=160, with_audio=False)                                     # 160 x 120: 1/4 scale
    full = decode(p, with_audio=False).frames
    small = FaceTrack(0, 0, 10, np.tile(np.float32([[60, 40, 90, 70]]), (10, 1)))   # crop side 45 < 96
    big = FaceTrack(1, 2, 6, np.tile(np.float32([[10, 10, 110, 110]]), (4, 1)))     # crop side 150
    import synclipmae.media.pipeline as pipeline

    rereads = []
    monkeypatch.setattr(pipeline, "iter_frames", lambda *a, **k: rereads.append(k["max_side"]) or iter_frames(*a, **k))
    (crops_s, rects_s), (crops_b, rects_b) = crop_pieces(p, d, [(small, 0.25), (big, 0.25)], 96, 0.0, None)
    assert rereads == [352]  # one re-read, at the side that gives the small face's crop 96 px (16-px steps)
    assert crops_s.shape == (10, 96, 96, 3) and crops_b.shape == (4, 96, 96, 3)
    assert np.allclose(rects_s, [210, 130, 180, 180], atol=2)                        # 4x the detection square
    assert np.allclose(rects_b, [-60, -60, 600, 600], atol=4)
    for t in range(10):
        want = crop_square(full[t], 300, 220, 180, 96)[0].astype(float)
        assert np.abs(crops_s[t] - want).mean() < 3
    want = crop_square(full[3], 240, 240, 600, 96)[0].astype(float)
    assert np.abs(crops_b[1] - want).mean() < 4
