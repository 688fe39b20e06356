"""`dub_file` and `synclipmae dub`: real video in, a dubbed video of the right length out.

The generator is a tiny random SyncLipMAE wrapped untuned by `load_dubber`, so the mouths it draws
mean nothing: these tests pin the file path around it (lengths and looping, the soundtrack, faceless
frames copied unchanged, the paste-back's geometry, exit codes and one-line errors). Real clips come
from ../shared/data/real, cut to 2 s; tests that need them skip without it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REAL, tiny_overrides

from synclipmae.cli import main
from synclipmae.timing import TIMING

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from synclipmae.media.decode import decode, load_audio, probe  # noqa: E402
from synclipmae.media.write import write_video, write_wav  # noqa: E402
from synclipmae.media.tracks import crop_square  # noqa: E402
from synclipmae.media.pipeline import Stacked, main_face_frames  # noqa: E402
from synclipmae.tasks.dub import dub_file, frames_in_order, output_order, paste_crop  # noqa: E402

FPS, SR, SPF = TIMING.fps, TIMING.sample_rate, TIMING.samples_per_frame
RECORD_KEYS = {"input", "status", "error", "output", "mode", "driving", "frames", "source_frames", "dubbed_frames",
               "faceless_frames", "looped", "trimmed", "model", "version"}
BLANK = 12  # faceless frames at the start of the `faceless` clip


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from synclipmae.models.synclipmae import create_model

    torch.manual_seed(0)
    return create_model("tiny", tiny_overrides()).save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def dubber(ckpt):
    from synclipmae.models.dubber import load_dubber

    return load_dubber(ckpt)


def background(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, h, w, 3]: smooth colour gradients with mild noise, different in every frame, no face."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        base = np.stack([ys * 120 + 40 + 3 * i, xs * 150 + 30, (xs + ys) * 60 + 90 - 2 * i], -1)
        out[i] = np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """Short copies of real clips: target (2 s, a woman, frontal), driving (1.6 s, another man, with
    his audio), faceless (the target with its first BLANK frames replaced by a faceless picture), and
    WAVs of real speech shorter (1.3 s) and longer (3.5 s) than the target."""
    if not REAL.is_dir():
        pytest.skip(f"real clips not found at {REAL} (they live beside the repository, in ../shared)")
    tmp = tmp_path_factory.mktemp("real")
    t = decode(REAL / "videoretalking_face3.mp4", duration_s=2.0, max_side=256, need_audio=True)
    d = decode(REAL / "videoretalking_face2.mp4", duration_s=1.6, max_side=256, need_audio=True)
    speech = load_audio(REAL / "videoretalking_face2.mp4")
    blank = t.frames.copy()
    blank[:BLANK] = background(BLANK, *blank.shape[1:3])
    return {"target": write_video(tmp / "target.mp4", t.frames, FPS, t.audio, SR),
            "driving": write_video(tmp / "driving.mp4", d.frames, FPS, d.audio, SR),
            "faceless": write_video(tmp / "faceless.mp4", blank, FPS, t.audio, SR),
            "short": write_wav(tmp / "short.wav", speech[:int(1.3 * SR)], SR),
            "long": write_wav(tmp / "long.wav", speech[:int(3.5 * SR)], SR)}


def cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


def check_length(out: Path, seconds: float) -> np.ndarray:
    """The written file lasts `seconds` to within one frame (decoded frames and the audio stream)."""
    frames = decode(out).frames
    assert abs(len(frames) - seconds * FPS) <= 1, (len(frames), seconds * FPS)
    info = probe(out)
    assert info["has_audio"] and abs(info["audio_duration_s"] - seconds) <= 1 / FPS, info
    assert abs(len(load_audio(out)) / SR - seconds) <= 1024 / SR  # decoders may keep AAC's last frame padded
    return frames


def frame_match(out_frames: np.ndarray, src_frames: np.ndarray) -> np.ndarray:
    """For each output frame, the source frame it is closest to (mean absolute difference)."""
    a = out_frames.reshape(len(out_frames), -1).astype(np.float32)
    b = src_frames.reshape(len(src_frames), -1).astype(np.float32)
    return np.array([int(np.abs(b - x).mean(1).argmin()) for x in a])


# ----------------------------------------------------------------------------------------------------
# the pieces, without real clips


def test_output_order_trims_and_ping_pongs():
    assert output_order(3, 5).tolist() == [0, 1, 2]
    assert output_order(11, 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert output_order(4, 1).tolist() == [0, 0, 0, 0]
    o = output_order(1000, 37)
    assert o.min() == 0 and o.max() == 36 and set(np.abs(np.diff(o)).tolist()) == {1}


def test_frames_in_order_reads_backwards_in_blocks(tmp_path):
    """Each frame's grey level is its index: the reader gives order[j] for every j, also when a
    backward run is decoded in blocks smaller than the run."""
    n = 9
    levels = np.arange(n) * 25 + 10
    frames = np.broadcast_to(levels[:, None, None, None], (n, 16, 16, 3)).astype(np.uint8)
    path = write_video(tmp_path / "count.mp4", frames, FPS, crf=0)
    for order in (output_order(30, n), np.array([3, 3, 3, 4, 2, 8, 8, 0])):
        got = [int(round(f.mean())) for f in frames_in_order(path, order, budget=3 * 16 * 16 * 3)]
        assert np.abs(np.array(got) - levels[order]).max() <= 1


def test_paste_crop_inverts_the_crop_and_leaves_the_rest():
    """A crop pasted back where it came from reproduces the frame (up to resampling blur), better than
    one pixel off; outside the mask every pixel keeps its value."""
    import cv2

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    frame = cv2.normalize(frame, None, 0, 255, cv2.NORM_MINMAX)
    half = cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA)       # a detection copy, 0.5x
    size = 64
    crop, (x0, y0, s) = crop_square(half, 80.3, 61.7, 70.4, size)
    rect = (x0 * 2, y0 * 2, s * 2, s * 2)
    yy, xx = np.mgrid[0:size, 0:size]
    mask = (yy - 40) ** 2 + (xx - 32) ** 2 < 18 ** 2                          # a disk in the lower half
    out = paste_crop(frame, crop, mask, rect)
    changed = np.any(out != frame, axis=-1)
    X0, Y0 = rect[0], rect[1]
    k = rect[2] / size
    ys, xs = np.nonzero(changed)
    r = np.hypot((ys + 0.5 - Y0) / k - 40, (xs + 0.5 - X0) / k - 32)        # crop pixels from the disk's centre
    assert changed.any() and r.max() < 18 + 1                                 # inside the mask (its pixels' edge)
    full = np.ones((size, size), bool)
    core = (slice(int(Y0) + 8, int(Y0 + rect[3]) - 8), slice(int(X0) + 8, int(X0 + rect[2]) - 8))

    def err(r):
        return np.abs(paste_crop(frame, crop, full, r, feather=0)[core].astype(float) - frame[core]).mean()

    exact = err(rect)
    assert exact < 4
    for dx, dy in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)):                # half a pixel off is worse
        assert err((rect[0] + dx, rect[1] + dy, rect[2], rect[3])) > exact + 0.4


# ----------------------------------------------------------------------------------------------------
# real clips


def test_shorter_audio_trims_the_video(ckpt, clips, tmp_path, capsys):
    out = tmp_path / "dubbed.mp4"
    assert cli(["dub", "--video", str(clips["target"]), "--audio", str(clips["short"]), "--model", str(ckpt),
                "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert RECORD_KEYS <= set(record) and record["status"] == "ok" and record["error"] is None
    speech = load_audio(clips["short"])
    assert record["frames"] == math.ceil(len(speech) / SPF) and record["trimmed"] and not record["looped"]
    assert record["source_frames"] == 50 and record["dubbed_frames"] == record["frames"]
    assert Path(record["output"]) == out and not list(tmp_path.glob(".*tmp*"))
    frames = check_length(out, len(speech) / SR)
    src = decode(clips["target"]).frames
    assert (frame_match(frames, src) == np.arange(len(frames))).mean() > 0.9  # the first frames, in order
    heard = load_audio(out)[:len(speech)]
    assert np.corrcoef(heard, speech[:len(heard)])[0, 1] > 0.9                # the WAV is the soundtrack


def test_longer_audio_loops_the_video_back_and_forth(dubber, clips, tmp_path):
    out = tmp_path / "long.mp4"
    record = dub_file(clips["target"], out, dubber, audio_path=clips["long"], progress=False)
    assert record["status"] == "ok", record["error"]
    speech = load_audio(clips["long"])
    assert record["frames"] == math.ceil(len(speech) / SPF) == 88 and record["looped"]
    frames = check_length(out, len(speech) / SR)
    src = decode(clips["target"]).frames
    order = output_order(len(frames), len(src))                      # 0..49, 48..12
    match = frame_match(frames, src)
    assert (np.abs(match - order) <= 1).mean() > 0.9, (match, order)
    assert match[-10:].mean() < match[40:50].mean()                  # the end plays backwards


def test_video_driven_takes_the_driving_length_and_soundtrack(dubber, clips, tmp_path):
    out = tmp_path / "driven.mov"
    record = dub_file(clips["target"], out, dubber, driving_path=clips["driving"], progress=False)
    assert record["status"] == "ok", record["error"]
    assert record["mode"] == "video" and record["frames"] == 40 and record["trimmed"]
    check_length(out, 40 / FPS)
    heard, theirs = load_audio(out), load_audio(clips["driving"])
    n = min(len(heard), len(theirs))
    assert np.corrcoef(heard[:n], theirs[:n])[0, 1] > 0.9


def test_frames_without_a_face_are_copied_unchanged(dubber, clips, tmp_path):
    """Lossless (crf 0): the faceless frames decode exactly as the input re-encoded the same way; in
    the other frames only pixels inside the face's crop square change, and some do."""
    src = decode(clips["faceless"]).frames
    ref = decode(write_video(tmp_path / "ref.mp4", src, FPS, crf=0)).frames
    out = tmp_path / "out.mp4"
    speech = load_audio(clips["short"])
    record = dub_file(clips["faceless"], out, dubber, audio_path=clips["short"], progress=False, crf=0)
    assert record["status"] == "ok", record["error"]
    assert record["faceless_frames"] == BLANK and record["dubbed_frames"] == record["frames"] - BLANK
    assert record["warnings"] and "no face" in record["warnings"][0]
    got = check_length(out, len(speech) / SR)
    assert np.array_equal(got[:BLANK], ref[:BLANK])
    faces = main_face_frames(clips["faceless"], 32, masks=False)
    assert (faces.track[:BLANK] < 0).all() and (faces.track[BLANK:len(got)] >= 0).all()
    changed_frames = 0
    for t in range(BLANK, len(got)):
        changed = np.any(got[t] != ref[t], axis=-1)
        changed_frames += changed.any()
        x0, y0, w, h = faces.rects[t]
        ys, xs = np.nonzero(changed)
        assert (xs >= x0 - 2).all() and (xs <= x0 + w + 2).all() and (ys >= y0 - 2).all() and (ys <= y0 + h + 2).all()
    assert changed_frames == len(got) - BLANK


def test_long_videos_are_read_in_segments_kept_on_disk(dubber, clips, tmp_path):
    """A video read in segments (here 0.8 s instead of 60 s) gives the same faces, its crops live in
    memory-mapped files, and a face that goes on across a segment boundary keeps its track."""
    whole = main_face_frames(clips["target"], 32, masks=False)
    parts = main_face_frames(clips["target"], 32, masks=False, segment_s=0.8, spill=tmp_path / "spill")
    assert isinstance(parts.crops, Stacked) and len(list((tmp_path / "spill").glob("crops*.npy"))) == 3
    assert parts.num_frames == whole.num_frames == 50 and (parts.track == parts.track[0]).all()
    assert np.abs(parts.crops[np.arange(50)].astype(float) - whole.crops).mean() < 12
    assert np.array_equal(parts.crops[37], parts.crops[np.array([37])][0])
    record = dub_file(clips["target"], tmp_path / "seg.mp4", dubber, audio_path=clips["short"], progress=False,
                      segment_s=0.8)
    assert record["status"] == "ok" and record["dubbed_frames"] == record["frames"], record
    check_length(tmp_path / "seg.mp4", len(load_audio(clips["short"])) / SR)


# ----------------------------------------------------------------------------------------------------
# failures: one line on stderr, exit 1 (an input) or 2 (usage)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict:
    """Synthetic inputs that need no real clip: a faceless video with and without audio, a WAV."""
    tmp = tmp_path_factory.mktemp("plain")
    wall = background(20, 96, 128)
    voice = (np.sin(np.arange(SR) * 2 * np.pi * 220 / SR) * 0.3).astype(np.float32)
    (tmp / "notes.mp4").write_text("this is not a video\n" * 50)
    return {"wall": write_video(tmp / "wall.mp4", wall, FPS, voice[:20 * SPF], SR),
            "mute": write_video(tmp / "mute.mp4", wall, FPS), "wav": write_wav(tmp / "voice.wav", voice, SR),
            "text": tmp / "notes.mp4", "missing": tmp / "nope.mp4"}


@pytest.mark.parametrize("video, drive, expect, named", [
    ("missing", ["--audio", "wav"], "not found", "missing"),
    ("text", ["--audio", "wav"], "not a readable media file", "text"),
    ("wall", ["--audio", "missing"], "not found", "missing"),
    ("wall", ["--driving-video", "mute"], "no audio stream", "mute"),
    ("wall", ["--audio", "wav"], "no face found", "wall"),
])
def test_bad_input_exits_1_with_one_line(video, drive, expect, named, plain, ckpt, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    argv = ["dub", "--video", str(plain[video]), drive[0], str(plain[drive[1]]), "--model", str(ckpt),
            "--out", str(out)]
    assert cli(argv) == 1
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and expect in err[0] and "Traceback" not in cap.err, cap.err
    assert err[0].startswith(f"synclipmae dub: {plain[named].name}")
    record = json.loads(cap.out)
    assert record["status"] == "error" and expect in record["error"] and record["output"] is None
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_bad_usage_exits_2_with_one_line(plain, ckpt, tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{not json")
    (tmp_path / "junk" / "model.safetensors").write_bytes(b"nope")
    v, w = str(plain["wall"]), str(plain["wav"])
    cases = [
        (["--video", v, "--model", str(ckpt), "--out", "o.mp4"], "--audio"),                         # neither
        (["--video", v, "--audio", w, "--driving-video", v, "--model", str(ckpt), "--out", "o.mp4"], "not allowed"),
        (["--video", v, "--audio", w, "--model", str(ckpt), "--out", str(tmp_path / "o.wav")], "--out"),
        (["--video", v, "--audio", w, "--model", str(tmp_path), "--out", str(tmp_path / "o.mp4")], "not a checkpoint"),
        (["--video", v, "--audio", w, "--model", str(tmp_path / "junk"), "--out", str(tmp_path / "o.mp4")],
         "cannot load"),
        (["--video", v, "--audio", w, "--model", str(ckpt), "--out", v], "new file"),
        (["--video", v, "--audio", w, "--model", str(ckpt), "--out", str(tmp_path / "o.mp4"), "--crf", "99"], "--crf"),
    ]
    for argv, message in cases:
        assert cli(["dub", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)
    assert not (tmp_path / "o.mp4").exists()
