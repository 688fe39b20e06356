"""`sync_file`, `fix_offset` and `synclipmae sync`: the file path from a raw video to the DESIGN §7 record.

The model is a tiny random-init checkpoint made here, so the numbers mean nothing: these tests pin
behaviour (record fields, exit codes, the one-line errors of bad input, batch mode), the sign convention
of the offset (with hand-made tokens) and of `--fix` (with a planted audio shift). Videos are SynthTalk
frames (mediapipe finds their face) written with PyAV at the rates and layouts each case needs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import synclipmae
from synclipmae.cli import main
from synclipmae.media.rewrite import fix_offset, shift_audio
from synclipmae.tasks.sync import MAX_OFFSET, score_segment_track, score_track, sync_file
from synclipmae.tasks.mouth_energy import MouthEnergyModel
from synclipmae.timing import TIMING

av = pytest.importorskip("av")
pytest.importorskip("cv2")

FPS, SR, SPF, K = TIMING.fps, TIMING.sample_rate, TIMING.samples_per_frame, MAX_OFFSET
RECORD_KEYS = {"input", "status", "error", "fps_in", "frames", "faceless_frames", "tracks", "model", "version"}
TRACK_KEYS = {"track", "start_frame", "end_frame", "offset_frames", "offset_ms", "confidence", "min_distance",
              "distances"}
TINY = {"model": dict(img_size=32, patch_size=8, width=32, depth=1, heads=2, dec_width=32, dec_depth=1, dec_heads=2,
                      proj_dim=16, audio=dict(width=32, depth=1, heads=2))}


# ----------------------------------------------------------------------------------------------------
# fixtures: a tiny checkpoint, SynthTalk frames and audio, a writer for any rate / layout


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from synclipmae.models.synclipmae import create_model

    torch.manual_seed(0)
    return create_model("tiny", TINY).save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def model(ckpt):
    from synclipmae.models.synclipmae import SyncLipMAE

    return SyncLipMAE.from_pretrained(ckpt)


@pytest.fixture(scope="module")
def talk():
    """A 2.4 s SynthTalk clip: frames uint8 [60, 96, 96, 3], audio float32 [60 * 640]."""
    from synclipmae.data.synth import make_clip

    clip = make_clip("test", 0, seconds=2.4, size=96, seed=3)
    return clip.frames, clip.audio


def write_av(path: Path, frames: np.ndarray | None, times=None, audio: np.ndarray | None = None, rate: int = SR,
             layout: str = "mono", faststart: bool = False) -> Path:
    """Frames uint8 [N, H, W, 3] shown at `times` (seconds; default every 1/25 s) with AAC audio float32
    [S, C] at `rate` (mp4), or PCM for .wav; None leaves that stream out. faststart: the mp4 index
    goes first (as in files made for streaming), so a cut-off copy still opens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        vs = aus = None
        tb = Fraction(1, 6000)
        if frames is not None:
            times = np.arange(len(frames)) / FPS if times is None else np.asarray(times)
            gap = float(np.median(np.diff(times))) if len(times) > 1 else 1 / FPS
            vs = c.add_stream("libx264", rate=Fraction(1 / gap).limit_denominator(1001))
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            vs.codec_context.time_base = tb
            vs.options = {"preset": "ultrafast"}
        if audio is not None:
            audio = audio.reshape(len(audio), -1)
            aus = c.add_stream("pcm_s16le" if path.suffix == ".wav" else "aac", rate=rate, layout=layout)
        if vs is not None:
            for f, t in zip(frames, times):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                vf.pts, vf.time_base = int(round(t * 6000)), tb
                c.mux(vs.encode(vf))
            c.mux(vs.encode(None))
        if aus is not None:
            n = aus.codec_context.frame_size or 1024
            for k in range(0, len(audio), n):
                block = audio[k:k + n]
                if path.suffix == ".wav":
                    fr = av.AudioFrame.from_ndarray((np.clip(block, -1, 1) * 32767).astype(np.int16).reshape(1, -1),
                                                    format="s16", layout=layout)
                else:
                    fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T, np.float32), format="fltp",
                                                    layout=layout)
                fr.sample_rate, fr.pts = rate, k
                c.mux(aus.encode(fr))
            c.mux(aus.encode(None))
    return path


def at_rate(frames: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The SynthTalk frame shown at each time (nearest 25 fps frame)."""
    return frames[np.clip(np.round(times * FPS).astype(int), 0, len(frames) - 1)]


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(audio, rate // 1000, SR // 1000).astype(np.float32)


@pytest.fixture(scope="module")
def good_mp4(tmp_path_factory, talk) -> Path:
    frames, audio = talk
    return write_av(tmp_path_factory.mktemp("good") / "talk.mp4", frames, audio=audio)


def cli(argv: list[str]) -> int:
    """`synclipmae ARGV` in this process: its exit code (argparse's own usage errors exit via SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


def check_record(record: dict) -> None:
    """Every record: the §7 keys; a one-line error exactly when status is "error"; ok tracks well formed."""
    assert RECORD_KEYS <= set(record)
    assert record["status"] in ("ok", "error")
    if record["status"] == "error":
        assert record["error"] and "\n" not in record["error"] and "Traceback" not in record["error"]
        return
    assert record["error"] is None and record["tracks"]
    for tr in record["tracks"]:
        assert TRACK_KEYS <= set(tr)
        assert len(tr["distances"]) == 2 * K + 1
        assert tr["offset_ms"] == tr["offset_frames"] * TIMING.ms_per_frame
        assert -K <= tr["offset_frames"] <= K
        assert tr["min_distance"] == pytest.approx(min(tr["distances"]), abs=1e-5)
        assert tr["distances"][tr["offset_frames"] + K] == pytest.approx(tr["min_distance"], abs=1e-5)
        assert tr["confidence"] >= 0
        assert 0 <= tr["start_frame"] < tr["end_frame"] <= record["frames"]


# ----------------------------------------------------------------------------------------------------
# sign conventions


def test_planted_offset_sign_with_hand_made_tokens():
    """Audio late by o frames (a_t carries the sound of the lips at t - o) gives offset = +o."""
    g = torch.Generator().manual_seed(0)
    N, E = 120, 16
    lips = torch.nn.functional.normalize(torch.randn(N + 2 * K, E, generator=g), dim=-1)
    for o in (-7, -1, 0, 3, 12):
        v = lips[K:K + N]                     # video tokens of frames 0..N-1
        a = lips[K - o:K - o + N]             # a[t] = lips[t - o]: the sound arrives o frames late
        score, local, n = score_segment_track(v, a, 0, N)
        assert score.offset_frames == o and score.offset_ms == o * TIMING.ms_per_frame
        assert score.min_distance == pytest.approx(0.0, abs=1e-5) and score.confidence > 0.5
        assert n == N - 2 * K and len(local) == n // FPS
        assert all(item["offset_frames"] == o for item in local)
        assert score_track(v, a).offset_frames == o  # the existing scorer agrees on a whole track


def test_track_inside_longer_audio_uses_audio_beyond_the_track():
    g = torch.Generator().manual_seed(1)
    T, E, o = 200, 16, 4
    lips = torch.nn.functional.normalize(torch.randn(T + 2 * K, E, generator=g), dim=-1)
    a = lips[K - o:K - o + T]
    start, end = 60, 100                     # a 40-frame track in the middle: every frame is scored
    score, _, n = score_segment_track(lips[K + start:K + end], a, start, end)
    assert (score.offset_frames, n) == (o, end - start)


def test_shift_audio_moves_earlier_for_positive_shift():
    x = np.arange(10, dtype=np.float32)[None]
    assert shift_audio(x, 3).tolist() == [[3, 4, 5, 6, 7, 8, 9, 0, 0, 0]]
    assert shift_audio(x, -2).tolist() == [[0, 0, 0, 1, 2, 3, 4, 5, 6, 7]]


def test_fix_offset_drops_late_audio_and_copies_video(tmp_path, talk):
    frames, audio = talk
    noise = np.random.default_rng(0).standard_normal(len(audio)).astype(np.float32) * 0.3  # sharp correlation peak
    src = write_av(tmp_path / "late.mp4", frames, audio=noise)
    out = fix_offset(src, tmp_path / "fixed.mp4", offset_ms=200.0)

    def packets(p):
        with av.open(str(p)) as c:
            return [bytes(pk) for pk in c.demux(c.streams.video[0]) if pk.size]

    assert packets(out) == packets(src)  # the video stream is copied, not re-encoded
    from synclipmae.media.decode import load_audio

    a, b = load_audio(src), load_audio(out)
    n, lags = SR, range(-4800, 4801, 16)
    corr = [float(np.dot(a[8000:8000 + n], b[8000 - lag:8000 - lag + n])) for lag in lags]
    assert list(lags)[int(np.argmax(corr))] == 3200  # 200 ms = 3200 samples earlier


def test_file_path_keeps_timing_and_sign(tmp_path):
    """Planted offsets survive mp4 -> decode -> faces -> crops -> tokens: the file path finds what the
    array path finds (and the planted offset), with a model that needs no training."""
    import dataclasses

    from synclipmae.data.synth import make_clip, write_clip
    from synclipmae.tasks.sync import main_track

    m = MouthEnergyModel()
    N = 125 + 2 * K                                       # a 5 s scoring window plus K frames each side
    hits = 0
    for i, o in enumerate((11, -7, 4, -14)):
        clip = make_clip("test", 500 + i, seconds=(N + 2 * K) / FPS, size=96, seed=1, identity_index=i)
        audio = clip.audio[(K - o) * SPF:(K - o + N) * SPF]  # the audio o frames late
        late = dataclasses.replace(clip, frames=clip.frames[K:K + N], audio=audio)
        write_clip(late, tmp_path, f"c{i}", mp4=True)
        record = sync_file(tmp_path / f"c{i}.mp4", m)
        check_record(record)
        v, a = m.sync_embeddings(m.encode(torch.from_numpy(late.frames))["z_voc"],
                                 m.encode_audio(torch.from_numpy(audio)[None])[0])
        on_arrays = score_track(v, a).offset_frames
        from_file = main_track(record)["offset_frames"]
        assert abs(from_file - on_arrays) <= 1, (o, on_arrays, from_file)
        hits += abs(from_file - o) <= 1
    assert hits >= 3


# ----------------------------------------------------------------------------------------------------
# sync_file: a good file, then every kind of bad input


def test_sync_file_record(model, good_mp4):
    record = sync_file(good_mp4, model, model_name="tiny")
    check_record(record)
    assert record["status"] == "ok" and record["frames"] == 60 and record["fps_in"] == FPS
    tr = record["tracks"][0]
    assert (tr["start_frame"], tr["end_frame"], tr["scored_frames"]) == (0, 60, 60 - 2 * K)
    assert record["model"] == "tiny" and record["faceless_frames"] == 0
    json.dumps(record)  # JSON-able


def test_long_files_are_read_in_segments(good_mp4, talk):
    """Segments tile the file's timeline; their audio is the whole file's audio, cut."""
    from synclipmae.media.decode import decode
    from synclipmae.media.pipeline import iter_face_segments

    segments = list(iter_face_segments(good_mp4, 32, segment_s=0.8))  # 2.4 s -> 3 segments of 20 frames
    assert [(s.start_frame, s.num_frames) for s in segments] == [(0, 20), (20, 20), (40, 20)]
    whole = decode(good_mp4).audio
    joined = np.concatenate([s.audio for s in segments])
    assert joined.shape == whole.shape and np.abs(joined - whole).max() < 0.02
    for seg in segments:
        for tc in seg.tracks:
            assert seg.start_frame <= tc.start_frame < tc.end_frame <= seg.start_frame + seg.num_frames
            assert tc.crops.shape == (len(tc), 32, 32, 3)


def test_separate_audio_file(model, talk, good_mp4, tmp_path):
    wav = write_av(tmp_path / "voice.wav", None, audio=resample(talk[1], 48000), rate=48000)
    record = sync_file(good_mp4, model, audio_path=wav)
    check_record(record)
    assert record["status"] == "ok"
    silent = write_av(tmp_path / "silent.mp4", talk[0])  # no audio stream: fine with --audio
    assert sync_file(silent, model, audio_path=wav)["status"] == "ok"


def _bad(kind: str, tmp: Path, talk) -> tuple[Path, str | None]:
    """(path, expected substring of the error, or None when the file must score "ok")."""
    frames, audio = talk
    seconds = len(frames) / FPS
    if kind == "missing":
        return tmp / "nope.mp4", "not found"
    if kind == "empty":
        (tmp / "empty.mp4").write_bytes(b"")
        return tmp / "empty.mp4", "empty"
    if kind == "truncated":  # index first, media data cut in half: the file opens, the frames run out
        whole = write_av(tmp / "whole.mp4", frames, audio=audio, faststart=True).read_bytes()
        (tmp / "trunc.mp4").write_bytes(whole[:len(whole) // 2])
        return tmp / "trunc.mp4", "truncated"
    if kind == "truncated_index":  # the usual mp4 (index last) cut in half: no index, not readable
        whole = write_av(tmp / "whole.mp4", frames, audio=audio).read_bytes()
        (tmp / "trunc.mp4").write_bytes(whole[:len(whole) // 2])
        return tmp / "trunc.mp4", "not a readable media file"
    if kind == "text":
        (tmp / "notes.mp4").write_text("this is not a video\n" * 50)
        return tmp / "notes.mp4", "not a readable media file"
    if kind == "no_audio":
        return write_av(tmp / "mute.mp4", frames), "no audio stream"
    if kind == "no_video":
        return write_av(tmp / "voice.m4a", None, audio=audio), "no video stream"
    if kind == "one_frame":
        return write_av(tmp / "one.mp4", frames[:1], audio=audio[:SPF]), "too short"
    if kind == "short":
        return write_av(tmp / "short.mp4", frames[:2 * K - 4], audio=audio[:(2 * K - 4) * SPF]), "too short"
    if kind == "4k":
        big = np.zeros((2 * K + 4, 2160, 3840, 3), np.uint8)
        face = np.repeat(np.repeat(frames[:2 * K + 4], 8, axis=1), 8, axis=2)    # 768 px face
        big[:, 600:1368, 1500:2268] = face
        return write_av(tmp / "big.mp4", big, audio=audio[:(2 * K + 4) * SPF]), None
    if kind in ("60fps", "15fps"):
        fps = int(kind[:2])
        times = np.arange(int(seconds * fps)) / fps
        return write_av(tmp / f"{kind}.mp4", at_rate(frames, times), times, audio=audio), None
    if kind == "vfr":
        gaps = np.random.default_rng(0).uniform(1 / 50, 1 / 15, size=200)
        times = np.concatenate([[0.0], np.cumsum(gaps)])
        times = times[times < seconds - 0.05]
        return write_av(tmp / "vfr.mp4", at_rate(frames, times), times, audio=audio), None
    if kind == "48k_stereo":
        a = resample(audio, 48000)
        return write_av(tmp / "st.mp4", frames, audio=np.stack([a, a], 1), rate=48000, layout="stereo"), None
    if kind == "5.1":
        a = resample(audio, 48000)
        return write_av(tmp / "51.mp4", frames, audio=np.stack([a] * 6, 1), rate=48000, layout="5.1"), None
    if kind == "audio_longer":
        return write_av(tmp / "long.mp4", frames, audio=np.concatenate([audio, audio[:SR]])), None
    if kind == "audio_shorter":
        return write_av(tmp / "shorter.mp4", frames, audio=audio[:len(audio) - SR]), None
    if kind == "non_ascii":
        return write_av(tmp / "vidéo 口型 ü.mp4", frames, audio=audio), None
    raise AssertionError(kind)


BAD = ["missing", "empty", "truncated", "truncated_index", "text", "no_audio", "no_video", "one_frame", "short",
       "4k", "60fps", "15fps", "vfr", "48k_stereo", "5.1", "audio_longer", "audio_shorter", "non_ascii"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_gives_one_line_or_ok(kind, model, talk, tmp_path):
    path, expect = _bad(kind, tmp_path, talk)
    record = sync_file(path, model)
    check_record(record)
    if expect is None:
        assert record["status"] == "ok", record["error"]
        assert record["frames"] == pytest.approx(2 * K + 4 if kind == "4k" else len(talk[0]), abs=2)
        if kind.startswith("audio_"):
            assert record["warnings"] and "differ" in record["warnings"][0]
    else:
        assert record["status"] == "error" and expect in record["error"], record["error"]
        assert record["error"].startswith(path.name)


def test_faceless_video_is_a_file_error_not_a_crash(model, tmp_path, talk):
    grey = np.full((40, 96, 96, 3), 128, np.uint8)
    record = sync_file(write_av(tmp_path / "wall.mp4", grey, audio=talk[1][:40 * SPF]), model)
    check_record(record)
    assert record["status"] == "error" and "no face found" in record["error"]
    assert record["faceless_frames"] == 40


# ----------------------------------------------------------------------------------------------------
# the command line


def two_good_one_bad(talk, folder: Path) -> Path:
    """a.mp4 and c.mp4 (the talk, forwards and backwards) around b_bad.mp4 (a text file)."""
    frames, audio = talk
    write_av(folder / "a.mp4", frames, audio=audio)
    (folder / "b_bad.mp4").write_text("not a video")
    write_av(folder / "c.mp4", frames[::-1].copy(), audio=audio)
    return folder


def test_cli_folder_with_one_bad_file(ckpt, talk, tmp_path, capsys):
    folder = two_good_one_bad(talk, tmp_path / "in")
    rc = cli(["sync", str(folder), "--model", str(ckpt), "--json", str(tmp_path / "out.jsonl"),
               "--plot", str(tmp_path / "p.png"), "--fix", str(tmp_path / "fixed")])
    assert rc == 1
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [Path(r["input"]).name for r in records] == ["a.mp4", "b_bad.mp4", "c.mp4"]  # input order
    assert [r["status"] for r in records] == ["ok", "error", "ok"]
    for r in records:
        check_record(r)
    err = capsys.readouterr().err
    assert "b_bad.mp4" in err and "Traceback" not in err and "a.mp4" not in err
    assert sorted(p.name for p in tmp_path.glob("p-*.png")) == ["p-000-a.png", "p-002-c.png"]
    assert sorted(p.name for p in (tmp_path / "fixed").iterdir()) == ["a_synced.mp4", "c_synced.mp4"]


def test_cli_batch_resumes_after_a_kill_and_splits_across_jobs(ckpt, talk, tmp_path, capsys):
    folder = two_good_one_bad(talk, tmp_path / "in")
    out = tmp_path / "r.jsonl"
    assert cli(["sync", str(folder), "--model", str(ckpt), "--json", str(out)]) == 1
    full = out.read_text().splitlines()
    assert "2 of 3 inputs ok" in capsys.readouterr().err
    out.write_text(full[0] + "\n" + full[1] + "\n" + full[2][:40])   # killed while writing the third record
    assert cli(["sync", str(folder), "--model", str(ckpt), "--json", str(out)]) == 1   # the bad file still counts
    again = out.read_text().splitlines()
    assert again[:2] == full[:2] and len(again) == 3                   # nothing scored twice, the cut line gone
    assert json.loads(again[2])["tracks"][0]["offset_frames"] == json.loads(full[2])["tracks"][0]["offset_frames"]
    assert "2 of 3 inputs already in" in capsys.readouterr().err
    assert cli(["sync", str(folder), "--model", str(ckpt), "--json", str(out)]) == 1   # all done: scores nothing
    assert out.read_text().splitlines() == again
    names = []
    for i in range(2):
        part = tmp_path / f"part{i}.jsonl"
        cli(["sync", str(folder), "--model", str(ckpt), "--json", str(part), "--shard-index", str(i), "--num-shards", "2"])
        names += [Path(json.loads(x)["input"]).name for x in part.read_text().splitlines()]
    assert sorted(names) == ["a.mp4", "b_bad.mp4", "c.mp4"]            # each input in exactly one job


def test_cli_batch_outlives_a_file_that_hangs_the_demuxer(ckpt, talk, tmp_path, capsys):
    """A concat script named .mp4 whose part is a named pipe nobody writes: opening it blocks in
    FFmpeg's demuxer for ever. It gets a timeout record; the worker is killed and restarted, so the
    good file after it is scored."""
    folder = two_good_one_bad(talk, tmp_path / "in")
    os.mkfifo(folder / "nobody_writes")  # no video suffix: not an input itself
    (folder / "b_hang.mp4").write_text("ffconcat version 1.0\nfile nobody_writes\n")
    out = tmp_path / "r.jsonl"
    assert cli(["sync", str(folder), "--model", str(ckpt), "--json", str(out), "--timeout", "3",
                "--timeout-per-second", "4"]) == 1
    records = {Path(r["input"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert [records[n]["status"] for n in ("a.mp4", "b_bad.mp4", "b_hang.mp4", "c.mp4")] == ["ok", "error", "error", "ok"]
    for r in records.values():
        check_record(r)
    assert records["b_hang.mp4"]["error"].startswith("b_hang.mp4: timeout: ")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "2 of 4 inputs ok" in err and "1 timeout: " in err


def test_cli_memory_bound_gives_a_memory_record(ckpt, good_mp4, capsys):
    """A bound below what the worker holds once its model is loaded: the file gets a memory record."""
    assert cli(["sync", str(good_mp4), "--model", str(ckpt), "--max-memory", "0.01"]) == 1
    record = json.loads(capsys.readouterr().out)
    check_record(record)
    assert record["status"] == "error" and record["error"].startswith("talk.mp4: memory: over the limit of 0.01 GB")


def test_cli_one_file_json_on_stdout_plot_and_fix(ckpt, good_mp4, tmp_path, capsys):
    rc = cli(["sync", str(good_mp4), "--model", str(ckpt), "--plot", str(tmp_path / "one.png"),
               "--fix", str(tmp_path / "one_fixed.mp4")])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    record = json.loads(out[0])
    check_record(record)
    assert Path(record["plot"]).is_file() and Path(record["fixed"]).is_file()


def test_cli_unreadable_audio_fails_every_input(ckpt, good_mp4, tmp_path, capsys):
    (tmp_path / "voice.wav").write_text("not audio")
    out = tmp_path / "deep" / "r.jsonl"
    assert cli(["sync", str(good_mp4), str(good_mp4), "--model", str(ckpt), "--audio", str(tmp_path / "voice.wav"),
                "--json", str(out)]) == 1
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["status"] for r in records] == ["error", "error"] and "voice.wav" in records[0]["error"]
    assert "Traceback" not in capsys.readouterr().err


def test_bf16_autocast_runs(model, good_mp4):
    record = sync_file(good_mp4, model, bf16=True)
    check_record(record)
    assert record["status"] == "ok"


def test_cli_text_list_of_paths(ckpt, good_mp4, tmp_path, capsys):
    lst = tmp_path / "list.txt"
    lst.write_text(f"# videos\n{good_mp4}\nmissing.mp4\n")
    assert cli(["sync", str(lst), "--model", str(ckpt)]) == 1
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["status"] for r in records] == ["ok", "error"]
    assert "not found" in records[1]["error"]


@pytest.mark.parametrize("argv, message", [
    (["sync", "x.mp4", "--model", "no-such-weights"], "shipped weights (real-tiny)"),  # --model is optional now
    (["sync", "x.mp4", "--model", "."], "not a checkpoint"),
    (["sync", "{good}", "--model", "{ckpt}", "--fix", "out.wav"], "--fix"),
    (["sync", "{good}", "{good}", "--model", "{ckpt}", "--fix", "out.mp4"], "names a folder"),
    (["sync", "{good}", "--model", "{ckpt}", "--audio", "nope.wav"], "--audio"),
    (["sync", "{empty_dir}", "--model", "{ckpt}"], "no video files"),
    (["sync", "{good}", "--model", "{ckpt}", "--max-offset", "0"], "--max-offset"),
    (["sync", "{good}", "--model", "{ckpt}", "--shard-index", "2", "--num-shards", "2"], "--shard-index"),
    (["sync", "{good}", "--model", "{ckpt}", "--timeout", "-1"], "--timeout must be >= 0"),
])
def test_cli_bad_usage_exits_2_with_one_line(argv, message, ckpt, good_mp4, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = [a.format(good=good_mp4, ckpt=ckpt, empty_dir=tmp_path / "empty") for a in argv]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


# ----------------------------------------------------------------------------------------------------
# real clips (../shared/data/real; skipped without it)


def test_real_clips(model, real_dir):
    ok = sync_file(real_dir / "videoretalking_face3.mp4", model)
    check_record(ok)
    assert ok["status"] == "ok" and len(ok["tracks"]) >= 1 and ok["frames"] == 125
    for name, expect in [("marlin_cropped01.mp4", "no audio stream"), ("latentsync_demo1_audio.wav", "no video stream"),
                         ("lipdetector_example.avi", "too short"), ("MANIFEST.md", "not a readable media file")]:
        record = sync_file(real_dir / name, model)
        check_record(record)
        assert record["status"] == "error" and expect in record["error"], record["error"]


def corrupt_copies(src: Path, folder: Path, seed: int = 0) -> dict[str, Path]:
    """Damaged copies of a media file, as broken uploads arrive: {kind: path}."""
    rng = np.random.default_rng(seed)
    data = bytearray(src.read_bytes())
    n = len(data)
    flipped = bytearray(data)
    for i in rng.integers(n // 10, n, size=64):
        flipped[i] ^= 0xFF
    zeroed = bytearray(data)
    zeroed[n // 2:n // 2 + 8192] = bytes(8192)
    kinds = {"truncated": data[:n // 2], "flipped": flipped, "zeroed": zeroed, "header": bytes(64) + data[64:],
             "garbage": data + rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes(), "empty": b""}
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, payload in kinds.items():
        out[kind] = folder / f"{kind}{src.suffix}"
        out[kind].write_bytes(bytes(payload))
    return out


def test_fuzz_one_batch_of_broken_copies(real_dir, tmp_path, capsys):
    """Broken copies of a real clip and two untouched ones in one batch: every input gets a record, no
    traceback, and the untouched copies are ok with the offset the clip has when scored alone."""
    src = real_dir / "videoretalking_face3.mp4"
    broken = corrupt_copies(src, tmp_path / "in")
    for i in range(2):
        (tmp_path / "in" / f"zz_good{i}.mp4").write_bytes(src.read_bytes())
    alone = tmp_path / "alone.jsonl"
    assert cli(["sync", str(src), "--json", str(alone)]) == 0
    out = tmp_path / "batch.jsonl"
    assert cli(["sync", str(tmp_path / "in"), "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "of 8 inputs ok" in err
    records = {Path(r["input"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(records) == len(broken) + 2
    for r in records.values():
        check_record(r)
    offset = json.loads(alone.read_text())["tracks"][0]["offset_frames"]
    for i in range(2):
        assert records[f"zz_good{i}.mp4"]["status"] == "ok"
        assert records[f"zz_good{i}.mp4"]["tracks"][0]["offset_frames"] == offset
    assert records["empty.mp4"]["status"] == "error"



SEGMENT_SPY = """
import gc, sys, weakref
from synclipmae.media import pipeline

decoded, read = [], pipeline.decode_segment
def spy(*args, **kwargs):  # a weak reference to each segment's decoded frames
    d = read(*args, **kwargs)
    if d is not None:
        decoded.append(weakref.ref(d.frames if d.frames.base is None else d.frames.base))
    return d
pipeline.decode_segment = spy
alive = []
for seg in pipeline.iter_face_segments(sys.argv[1], 32, segment_s=0.8):
    gc.collect()
    alive.append(sum(ref() is not None for ref in decoded))
print(len(decoded), alive)
"""


def test_segments_free_their_decoded_frames(good_mp4):
    """Memory flat in the video's length (issue 22): once a segment is yielded, no segment's decoded
    frames are alive; only its crops are. In a fresh interpreter, because what pinned them was an
    import that only the first use of the face detector runs (mediapipe's kept ImportError)."""
    env = {**os.environ, "PYTHONPATH": str(Path(synclipmae.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", SEGMENT_SPY, str(good_mp4)], capture_output=True, text=True,
                         env=env, check=True).stdout.strip().splitlines()[-1]
    assert out == "3 [0, 0, 0]"  # 2.4 s in 3 segments: each one's frames freed before it is yielded
