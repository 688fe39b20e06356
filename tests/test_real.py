"""Real faces: the GRID reader, whole-track clips in `prepare`, the mixed and augmented training
stream, `train.init`, and `bench real-sync`'s planted offsets through the file path."""
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import random_batch, tiny_overrides
from synclipmae.config import AugmentConfig, build_config
from synclipmae.data.augment import AugmentedSource, augment_clip
from synclipmae.data.clips import MixedSource
from synclipmae.data.datasets import DataError, read_dataset
from synclipmae.data.datasets.grid import read_align
from synclipmae.data.shards import clip_starts
from synclipmae.tasks.mouth_energy import MouthEnergyModel
from synclipmae.tasks.real_sync import bench_real_sync, named_inputs, planted, roc_auc
from synclipmae.timing import TIMING

GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grid"
SPF = TIMING.samples_per_frame


# ----------------------------------------------------------------------------------------------------
# GRID


def test_grid_reader_drops_silence_and_splits_by_name(tmp_path):
    (tmp_path / "s3").mkdir()
    (tmp_path / "align").mkdir()
    for name in ("bbaf2n", "lwbz9s", "pgix4p"):
        (tmp_path / "s3" / f"{name}.mpg").write_bytes(b"")
    (tmp_path / "align" / "bbaf2n.align").write_text("0 23750 sil\n23750 29500 bin\n29500 34000 blue\n"
                                                     "34000 35500 sp\n35500 41000 at\n41000 74500 sil\n")
    (tmp_path / "align" / "lwbz9s.align").write_text("0 1000 lay\n1000 2000 white\n")
    rows = read_dataset("grid", tmp_path)
    assert [r.label for r in rows] == ["bin blue at", "lay white"]
    assert rows[0].meta["words"][0] == (0.95, 1.18, "bin")            # 1/25000 s units
    assert rows[0].meta["speaker"] == "s3" and rows[0].split in ("train", "test")
    assert [s["path"].endswith("pgix4p.mpg") for s in rows.skipped] == [True]  # no alignment: listed
    (tmp_path / "align" / "lwbz9s.align").write_text("0 oops\n")
    with pytest.raises(DataError, match="lwbz9s.align: line 1"):
        read_align(tmp_path / "align" / "lwbz9s.align")


def test_grid_split_on_the_shared_speaker():
    if not GRID.is_dir():
        pytest.skip(f"GRID not found at {GRID} (it lives beside the repository, in ../shared)")
    rows = read_dataset("grid", GRID)
    test = [r for r in rows if r.split == "test"]
    assert len(rows) == 900 and 60 <= len(test) <= 120               # about 10% held out, by name alone
    assert all(len(r.label.split()) == 6 for r in rows)               # GRID's six word slots
    again = {r.meta["name"] for r in read_dataset("grid", GRID) if r.split == "test"}
    assert again == {r.meta["name"] for r in test}


def test_clips_cover_the_whole_track():
    assert clip_starts(75, 50) == [0, 25]
    assert clip_starts(100, 50) == [0, 50]
    assert clip_starts(75, 75) == [0]
    assert clip_starts(49, 50) == []
    for n, c in ((75, 16), (200, 50), (51, 50)):
        covered = set()
        for s in clip_starts(n, c):
            assert 0 <= s and s + c <= n
            covered |= set(range(s, s + c))
        assert covered == set(range(n))


# ----------------------------------------------------------------------------------------------------
# the training stream


class Named:
    def __init__(self, name):
        self.name, self.calls = name, []

    def sample(self, seed, step, batch_size, T, rank=0, world=1):
        self.calls.append(step)
        batch = random_batch(B=batch_size, T=T, seed=step)
        batch["source"] = [self.name] * batch_size
        return batch


@pytest.mark.parametrize("share", [0.5, 0.25, 0.0])
def test_mixed_source_interleaves_the_share_with_consecutive_steps(share):
    real, synth = Named("real"), Named("synth")
    mixed = MixedSource(real, synth, share)
    names = [mixed.sample(0, s, 2, 4)["source"][0] for s in range(40)]
    assert names.count("synth") == int(40 * share)
    assert real.calls == list(range(len(real.calls))) and synth.calls == list(range(len(synth.calls)))
    resumed = MixedSource(Named("real"), Named("synth"), share)
    assert [resumed.sample(0, s, 2, 4)["source"][0] for s in range(17, 40)] == names[17:]  # pure in the step


def test_augmentation_keeps_shapes_moves_masks_and_is_seeded():
    batch = random_batch(B=1, T=4, size=32)
    clip = {k: batch[k][0] for k in ("frames", "audio", "face_mask", "mouth_mask")}
    cfg = AugmentConfig(prob=1.0, scale=0.2, shift=0.15)
    a = augment_clip(clip, np.random.default_rng(3), cfg)
    b = augment_clip(clip, np.random.default_rng(3), cfg)
    for k in clip:
        assert a[k].shape == clip[k].shape and a[k].dtype == clip[k].dtype
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["frames"], clip["frames"]) and not torch.equal(a["face_mask"], clip["face_mask"])
    assert not torch.allclose(a["audio"], clip["audio"])
    off = AugmentedSource(Named("x"), AugmentConfig(prob=0.0)).sample(0, 0, 2, 4)
    assert torch.equal(off["frames"], random_batch(B=2, T=4, seed=0)["frames"])


def test_train_init_starts_a_new_run_from_other_weights(tmp_path):
    from synclipmae.models.synclipmae import COUNT_BUFFERS, SyncLipMAE
    from synclipmae.train.loop import TrainingError, pretrain

    def cfg(out, **train):
        return build_config(overrides=tiny_overrides(data={"frames": 4}, train={
            "out": str(out), "steps": 2, "batch_size": 2, "progress": False, **train}))

    first = pretrain(cfg(tmp_path / "a"), source=Named("x"))
    start = SyncLipMAE.from_pretrained(first).state_dict()
    second = pretrain(cfg(tmp_path / "b", init=str(tmp_path / "a"), lr=0.0, min_lr=0.0), source=Named("x"))
    after = SyncLipMAE.from_pretrained(second).state_dict()
    weights = [k for k in start if k not in COUNT_BUFFERS]             # the counts go on accumulating
    assert weights and all(torch.equal(start[k], after[k]) for k in weights)  # lr 0: the init's weights
    with pytest.raises(TrainingError, match="train.init"):
        pretrain(cfg(tmp_path / "c", init=str(tmp_path / "nothing")), source=Named("x"))


# ----------------------------------------------------------------------------------------------------
# bench real-sync


def test_planted_audio_moves_the_right_way_without_silence():
    audio = np.repeat(np.arange(10, dtype=np.float32), SPF)              # block j holds the value j
    late, first = planted(audio, 2)                                      # audio 2 frames late
    assert first == 2 and len(late) == 8 * SPF and late[0] == 0.0      # video frame 2 hears audio block 0
    early, first = planted(audio, -3)
    assert first == 0 and len(early) == 7 * SPF and early[0] == 3.0    # video frame 0 hears block 3
    same, first = planted(audio, 0)
    assert first == 0 and np.array_equal(same, audio)


def test_roc_auc_against_pairs():
    rng = np.random.default_rng(0)
    p, n = rng.normal(1, 1, 30), rng.normal(0, 1, 40)
    naive = np.mean([1.0 if x > y else 0.5 if x == y else 0.0 for x in p for y in n])
    assert roc_auc(p, n) == pytest.approx(naive)
    assert roc_auc([1, 1], [1]) == 0.5 and roc_auc([], [1]) is None


def test_bench_real_sync_finds_planted_offsets_through_the_file_path(tmp_path):
    """SynthTalk clips written to mp4 stand in for real ones: mouth-energy finds planted offsets there,
    both models see the same cases, and a broken file is listed, not counted."""
    from synclipmae.data.synth import make_clip, write_clip

    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(2):
        write_clip(make_clip("test", 700 + i, seconds=5.0, size=96, seed=2, identity_index=i), folder, f"c{i}", mp4=True)
    (folder / "broken.mp4").write_bytes(b"\x00" * 1000)
    assert sorted(p.name for p in named_inputs([f"synth={folder}"])["synth"]) == ["broken.mp4", "c0.mp4", "c1.mp4"]
    offsets = (-11, -4, 0, 6)
    models = {"mouth-energy": MouthEnergyModel(96), "again": MouthEnergyModel(96)}
    result = bench_real_sync([f"synth={folder}"], models, offsets=offsets, progress=False)
    s = result["sets"]["synth"]
    assert s["clips"] == 2 and [f["input"].endswith("broken.mp4") for f in s["failed"]] == [True]
    summary = s["models"]["mouth-energy"]
    assert summary["cases"] == 2 * len(offsets) and summary["accuracy"] >= 0.75
    assert summary == s["models"]["again"]
    rows = [c["rows"] for c in result["clips"] if c["model"] == "mouth-energy"]
    assert [[r["k"] for r in clip] for clip in rows] == [list(offsets)] * 2


# ----------------------------------------------------------------------------------------------------
# the shipped weights and the command line


def test_shipped_weights_load_by_name_and_score_a_shared_real_clip(real_dir, tmp_path):
    import json

    from synclipmae import load_model
    from synclipmae.cli import main
    from synclipmae.weights import DEFAULT_MODEL, shipped_models

    assert DEFAULT_MODEL in shipped_models()
    model = load_model()                                                 # by default: the shipped weights
    assert model.cfg.model.img_size == 96 and all(p.dtype == torch.float32 for p in model.parameters())
    out = tmp_path / "sync.jsonl"
    assert main(["sync", str(real_dir / "videoretalking_face3.mp4"), "--json", str(out)]) == 0  # no --model
    record = json.loads(out.read_text())
    assert record["status"] == "ok" and record["model"] == DEFAULT_MODEL
    assert abs(record["tracks"][0]["offset_frames"]) <= 1              # the clip is in sync (MANIFEST: 0)


def test_bench_real_sync_command(real_dir, tmp_path, capsys):
    import json

    from synclipmae.cli import main

    rc = main(["bench", "real-sync", f"wild={real_dir / 'videoretalking_face3.mp4'}",
               f"wild={real_dir / 'marlin_cropped01.mp4'}", "--offsets=-7,0,7", "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads((tmp_path / "real_sync.json").read_text())
    s = result["sets"]["wild"]
    assert s["clips"] == 1 and "no audio" in s["failed"][0]["error"]    # cropped01 has no soundtrack
    assert set(s["models"]) == {"mouth-energy", "real-tiny"} and s["models"]["real-tiny"]["cases"] == 3
    assert (tmp_path / "real_sync.png").stat().st_size > 0
    assert "| wild | 1 | real-tiny |" in capsys.readouterr().out
    for argv, message in ((["bench", "real-sync", "--out", str(tmp_path)], "needs INPUTs"),
                          (["bench", "real-sync", "x.mp4", "--offsets", "0,20", "--out", str(tmp_path)], "[-15, 15]"),
                          (["bench", "downstream", "--model", "a", "--model", "b", "--out", str(tmp_path)], "one --model"),
                          (["prepare", "x", "--split", "train", "--out", str(tmp_path)], "--split needs --dataset")):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_export_halves_the_parameters_and_keeps_the_counts(tmp_path):
    from synclipmae.cli import main
    from synclipmae.models.synclipmae import COUNT_BUFFERS, SyncLipMAE
    from safetensors.torch import load_file

    model = SyncLipMAE(build_config(overrides=tiny_overrides()))
    model.view_b_counts.fill_(300000.0)                                  # beyond float16's range
    model.save_pretrained(tmp_path / "ckpt")
    assert main(["export", str(tmp_path / "ckpt"), "--out", str(tmp_path / "rel"), "--fp16"]) == 0
    stored = load_file(str(tmp_path / "rel" / "model.safetensors"))
    assert all(stored[n].dtype == torch.float16 for n, _ in model.named_parameters())
    assert all(stored[b].dtype == torch.float32 for b in COUNT_BUFFERS)
    back = SyncLipMAE.from_pretrained(tmp_path / "rel")
    assert torch.equal(back.view_b_counts, model.view_b_counts)
    for (n, p), (_, q) in zip(model.named_parameters(), back.named_parameters()):
        assert q.dtype == torch.float32 and torch.allclose(p, q, atol=1e-3, rtol=1e-3), n
