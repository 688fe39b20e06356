"""`prepare` (video files -> webdataset shards) and `ShardSource` (shards -> training batches).

SynthTalk clips written to mp4 stand in for real video (mediapipe finds their faces); crops are made at
32 px, the size of the tiny model these tests train for two steps.
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from synclipmae.data.shards import ShardError, ShardSource, find_shards, plan, prepare, read_shard
from synclipmae.timing import TIMING

av = pytest.importorskip("av")
pytest.importorskip("cv2")

SPF = TIMING.samples_per_frame
SIZE, CLIP = 32, 20  # crop size and frames per stored clip in these tests
TINY = {"model": dict(img_size=SIZE, patch_size=8, width=32, depth=1, heads=2, dec_width=32, dec_depth=1, dec_heads=2,
                      proj_dim=16, audio=dict(width=32, depth=1, heads=2))}


def cli(argv: list[str]) -> int:
    from synclipmae.cli import main

    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A folder of 3 SynthTalk mp4s of 1.8 s (45 frames: clips of 20 at frames 0, 20 and 25, so every frame is
    used) and one text file named .mp4."""
    from synclipmae.data.synth import make_clip, write_clip

    folder = tmp_path_factory.mktemp("videos")
    for i in range(3):
        write_clip(make_clip("test", i, seconds=1.8, size=96, seed=7), folder, f"talk{i}", mp4=True)
    (folder / "zz_bad.mp4").write_text("not a video")
    return folder


@pytest.fixture(scope="module")
def shards(videos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shards")
    index = prepare([videos], out, size=SIZE, clip_frames=CLIP, files_per_shard=2, progress=False)
    return out, index


# ----------------------------------------------------------------------------------------------------
# prepare


def test_prepare_index_and_failures(shards):
    out, index = shards
    assert index["inputs"] == 4 and index["clips"] == 9 and index["seconds"] == pytest.approx(9 * CLIP / TIMING.fps)
    assert [s["shard"] for s in index["shards"]] == ["shard-00000-00000.tar", "shard-00000-00001.tar"]
    assert len(index["failures"]) == 1
    failure = index["failures"][0]
    assert failure["input"].endswith("zz_bad.mp4") and "not a readable media file" in failure["error"]
    assert json.loads((out / "index.json").read_text())["clips"] == 9


def test_shard_layout_is_webdataset(shards):
    out, _ = shards
    with tarfile.open(out / "shard-00000-00000.tar") as tar:
        names = tar.getnames()
        first = names[0].split(".", 1)[0]
        assert names[:5] == [f"{first}.{p}" for p in ("frames.npy", "audio.npy", "face_mask.npy", "mouth_mask.npy",
                                                       "json")]
        load = lambda n: np.load(io.BytesIO(tar.extractfile(n).read()), allow_pickle=False)  # noqa: E731
        frames, audio = load(f"{first}.frames.npy"), load(f"{first}.audio.npy")
        face, mouth = load(f"{first}.face_mask.npy"), load(f"{first}.mouth_mask.npy")
        meta = json.loads(tar.extractfile(f"{first}.json").read())
    assert frames.dtype == np.uint8 and frames.shape == (CLIP, SIZE, SIZE, 3)
    assert audio.dtype == np.float32 and audio.shape == (CLIP * SPF,) and np.abs(audio).max() > 0
    assert face.dtype == bool and face.shape == (CLIP, SIZE, SIZE) and 0.1 < face.mean() < 0.9
    assert mouth.dtype == bool and (mouth <= face).all() and mouth.any()
    assert meta["source"].endswith("talk0.mp4") and meta["clip_frames"] == CLIP and meta["size"] == SIZE
    assert meta["start_s"] == meta["start_frame"] / TIMING.fps


def test_rerun_skips_finished_shards(shards, videos, tmp_path):
    out, index = shards
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    again = prepare([videos], out, size=SIZE, clip_frames=CLIP, files_per_shard=2, progress=False)
    assert again["skipped_shards"] == 2 and again["clips"] == index["clips"]
    assert again["failures"] == index["failures"]  # failures of skipped shards are still reported
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == stamps
    # an unfinished shard (its .json missing) is redone; its finished neighbour is not
    (out / "shard-00000-00001.json").unlink()
    third = prepare([videos], out, size=SIZE, clip_frames=CLIP, files_per_shard=2, progress=False)
    assert third["skipped_shards"] == 1 and third["clips"] == index["clips"]
    assert (out / "shard-00000-00000.tar").stat().st_mtime_ns == stamps["shard-00000-00000.tar"]


def test_plan_partitions_inputs_deterministically(tmp_path):
    files = [tmp_path / f"v{i:02d}.mp4" for i in range(11)]
    for f in files:
        f.write_bytes(b"x")
    jobs = [plan([tmp_path], i, 3, files_per_shard=2) for i in range(3)]
    taken = [f for job in jobs for shard in job for f in shard.inputs]
    assert sorted(taken) == sorted(str(f) for f in files) and len(set(taken)) == 11
    assert plan(list(reversed(files)), 1, 3, 2) == jobs[1]  # independent of the order given
    assert [s.name for s in jobs[2]] == ["shard-00002-00000", "shard-00002-00001"]
    with pytest.raises(ValueError):
        plan([tmp_path], 3, 3)


def test_job_array_writes_its_own_index(videos, tmp_path):
    index = prepare([videos], tmp_path, size=SIZE, clip_frames=CLIP, shard_index=1, num_shards=2, progress=False)
    assert Path(index["path"]).name == "index-00001-of-00002.json"
    assert index["inputs"] == 2 and all(s["shard"].startswith("shard-00001-") for s in index["shards"])


# ----------------------------------------------------------------------------------------------------
# reading


def test_shard_source_batch_matches_clipbank(shards):
    from synclipmae.data.clips import ClipBank

    out, _ = shards
    src = ShardSource.from_spec(out, buffer=4)
    assert (src.size, src.clip_frames) == (SIZE, CLIP)
    batch = src.sample(0, 0, 3, 8)
    T = 8
    bank = ClipBank(frames=np.zeros((1, CLIP, SIZE, SIZE, 3), np.uint8), audio=np.zeros((1, CLIP * SPF), np.float32),
                    face_mask=np.zeros((1, CLIP, SIZE, SIZE), bool), mouth_mask=np.zeros((1, CLIP, SIZE, SIZE), bool),
                    sources=["x"])
    ref = bank.sample(0, 0, 3, T)
    assert set(batch) == set(ref)
    for k, v in ref.items():
        if torch.is_tensor(v):
            assert batch[k].dtype == v.dtype and batch[k].shape == v.shape, k
        else:
            assert isinstance(batch[k], list) and all(isinstance(s, str) for s in batch[k])
    assert batch["frames"].float().std() > 1  # real crops, not zeros


def test_shard_source_is_deterministic_and_splits_ranks(shards):
    out, _ = shards
    a = [ShardSource.from_spec(out, buffer=4).sample(5, s, 2, 8)["source"] for s in range(1)]
    b = [ShardSource.from_spec(out, buffer=4).sample(5, s, 2, 8)["source"] for s in range(1)]
    assert a == b
    src = ShardSource.from_spec(out, buffer=2)
    seen = [src.sample(1, step, 2, 8)["source"] for step in range(9)]  # 18 clips = 2 epochs of 9
    clips = {s.split("@")[0] for batch in seen for s in batch}
    assert len(clips) == 9  # every clip comes round
    # two ranks read different shards in each epoch (2 shards here: one each)
    first = [ShardSource.from_spec(out, buffer=1).sample(1, 0, 1, 8, rank=r, world=2)["source"] for r in (0, 1)]
    shard_of = [{s.split("_")[0] for s in batch} for batch in first]
    assert len(shard_of[0]) == len(shard_of[1]) == 1 and shard_of[0] != shard_of[1]


def test_data_loader_workers(shards):
    out, _ = shards
    src = ShardSource.from_spec(out, buffer=2, workers=1)
    batch = src.sample(0, 0, 4, 8)
    assert batch["frames"].shape == (4, 8, SIZE, SIZE, 3) and batch["audio"].dtype == torch.float32
    src.close()


def test_corrupt_samples_are_skipped_and_counted(shards, tmp_path):
    out, _ = shards
    good = out / "shard-00000-00000.tar"
    bad = tmp_path / "bad.tar"
    with tarfile.open(good) as src_tar, tarfile.open(bad, "w") as dst:
        for i, member in enumerate(src_tar.getmembers()):
            data = src_tar.extractfile(member).read()
            if i == 0:
                data = b"\x93NUMPY garbage"  # first sample's frames: corrupt
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[:good.stat().st_size // 3])  # a truncated shard
    items = list(read_shard(bad))
    assert "corrupt" in items[0] and all("corrupt" not in x for x in items[1:])
    assert any("corrupt" in x for x in read_shard(cut))
    src = ShardSource([bad, cut], buffer=2)
    for step in range(4):
        src.sample(0, step, 2, 8)
    assert src.corrupt >= 2 and src.last_corrupt


def test_find_shards_errors(tmp_path):
    with pytest.raises(ShardError, match="no .tar shards"):
        find_shards(tmp_path)
    with pytest.raises(ShardError, match="no .tar shards"):
        find_shards(str(tmp_path / "*.tar"))


def test_window_longer_than_clips_is_an_error(shards):
    with pytest.raises(ShardError, match="--clip-frames"):
        ShardSource.from_spec(shards[0]).sample(0, 0, 1, CLIP + 1)


# ----------------------------------------------------------------------------------------------------
# the training loop and the command line


def test_pretrain_on_shards(shards, tmp_path):
    from synclipmae.config import build_config
    from synclipmae.train.loop import TrainingError, build_source, pretrain

    out, _ = shards
    cfg = build_config(overrides={**TINY, "data": {"source": str(out), "frames": 8},
                                  "train": {"steps": 2, "batch_size": 2, "out": str(tmp_path / "run"),
                                            "progress": False, "ckpt_every": 2, "log_every": 1}})
    assert isinstance(build_source(cfg, progress=False), ShardSource)
    ckpt = pretrain(cfg)
    assert (ckpt / "model.safetensors").is_file()
    for bad, message in [({"data": {"source": str(tmp_path / "none")}}, "no .tar shards"),
                         ({"model": {"img_size": 64}}, "--size 64"),
                         ({"data": {"frames": CLIP + 4}}, "--clip-frames")]:
        over = json.loads(json.dumps({**TINY, "data": {"source": str(out)}}))
        for group, fields in bad.items():
            over.setdefault(group, {}).update(fields)
        with pytest.raises(TrainingError, match=message):
            build_source(build_config(overrides=over), progress=False)


def test_cli_prepare(videos, tmp_path, capsys):
    rc = cli(["prepare", str(videos), "--out", str(tmp_path / "s"), "--size", str(SIZE), "--clip-frames", str(CLIP),
              "--workers", "2", "--files-per-shard", "1"])
    assert rc == 1  # the bad file
    captured = capsys.readouterr()
    assert "zz_bad.mp4" in captured.err and "Traceback" not in captured.err
    assert "9 clips" in captured.out
    assert len(list((tmp_path / "s").glob("*.tar"))) == 4  # one shard per file; the bad file's shard is empty
    (tmp_path / "empty").mkdir()
    x = str(tmp_path / "x")
    for argv in (["prepare", str(videos), "--out", x, "--shard-index", "2", "--num-shards", "2"],
                 ["prepare", str(videos), "--out", x, "--size", "30"],
                 ["prepare", str(tmp_path / "empty"), "--out", x],
                 ["prepare", str(videos)]):
        assert cli(argv) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_real_clips(real_dir, tmp_path):
    index = prepare([real_dir / "videoretalking_face3.mp4", real_dir / "musetalk_yongen.mp4",
                     real_dir / "lipdetector_example.avi"], tmp_path, size=SIZE, clip_frames=50, progress=False)
    assert index["clips"] == 3  # 125 frames -> clips of 50 at frames 0, 50 and 75
    errors = {Path(f["input"]).name: f["error"] for f in index["failures"]}
    assert "no audio stream" in errors["musetalk_yongen.mp4"] and "too short" in errors["lipdetector_example.avi"]
