"""The dubbing generator (models/dubber.py), its fine-tuning (train/dubber.py) and `bench dub`, with a
tiny random SyncLipMAE at 32x32."""
import json

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from synclipmae.models.dubber import DubConfig, Dubber, dilate_masks, is_dubber_checkpoint, load_dubber, push_pull_fill
from synclipmae.models.dubbing import dub_crops
from synclipmae.models.synclipmae import create_model
from synclipmae.timing import TIMING

S = 32


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return create_model("tiny", tiny_overrides()).eval()


@pytest.fixture(scope="module")
def dubber(net):
    torch.manual_seed(1)
    d = Dubber.from_synclipmae(net, DubConfig(segment=4))
    with torch.no_grad():  # the pixel U-Net's last conv starts at zero: make it act, so tests see every path
        d.mouth.out.weight.normal_(0, 0.05)
        d.mouth.film.weight.normal_(0, 0.05)
        d.pix_head.weight.normal_(0, 0.05)
    return d.eval()


def inputs(T: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (T, S, S, 3), dtype=np.uint8)
    masks = np.zeros((T, S, S), bool)
    masks[:, 19:28, 9 + seed % 3:23] = True
    audio = (rng.standard_normal(T * TIMING.samples_per_frame) * 0.1).astype(np.float32)
    driving = rng.integers(0, 256, (T, S, S, 3), dtype=np.uint8)
    return crops, masks, audio, driving


def test_keeps_pixels_outside_the_mask_and_shapes(dubber):
    crops, masks, audio, driving = inputs(10)
    masks[3] = False                                      # a frame with nothing to repaint
    for kw in ({"audio": audio}, {"driving": driving}):
        out = dub_crops(dubber, crops, masks, **kw)
        assert out.shape == crops.shape and out.dtype == np.uint8
        assert np.array_equal(out[~masks], crops[~masks])
        assert np.array_equal(out[3], crops[3])
        assert (out[masks] != crops[masks]).mean() > 0.5  # the mouth region is redrawn


def test_conditions_change_the_mouth(dubber):
    crops, masks, audio, driving = inputs(8)
    by_audio = dub_crops(dubber, crops, masks, audio=audio)
    by_video = dub_crops(dubber, crops, masks, driving=driving)
    other = dub_crops(dubber, crops, masks, audio=inputs(8, seed=5)[2])
    assert not np.array_equal(by_audio, by_video)
    assert not np.array_equal(by_audio, other)


def test_bad_arguments(dubber):
    crops, masks, audio, driving = inputs(4)
    with pytest.raises(ValueError, match="exactly one"):
        dub_crops(dubber, crops, masks, audio=audio, driving=driving)
    with pytest.raises(ValueError, match="exactly one"):
        dub_crops(dubber, crops, masks)
    with pytest.raises(ValueError, match="samples"):
        dub_crops(dubber, crops, masks, audio=audio[:-1])
    with pytest.raises(ValueError, match="32x32"):
        dub_crops(dubber, crops[:, :16, :16], masks[:, :16, :16], audio=audio)


def test_segments_fed_in_chunks_with_prev_equal_one_call(dubber):
    crops, masks, _, driving = inputs(10)
    seen = []
    whole = dub_crops(dubber, crops, masks, driving=driving, segment=4, progress=seen.append)
    assert seen == [4, 4, 2]
    first = dub_crops(dubber, crops[:8], masks[:8], driving=driving[:8], segment=4)
    second = dub_crops(dubber, crops[8:], masks[8:], driving=driving[8:], segment=4, prev=first[-1])
    assert np.array_equal(whole, np.concatenate([first, second]))
    # the previous frame is a real condition: another one gives another segment
    changed = dub_crops(dubber, crops[8:], masks[8:], driving=driving[8:], segment=4, prev=crops[0])
    assert not np.array_equal(changed[masks[8:]], second[masks[8:]])


def test_dub_batch_matches_one_video_at_a_time(dubber):
    from synclipmae.models.dubbing import dub_batch

    videos = [inputs(6, seed) for seed in range(2)]
    crops, masks, audio = (np.stack([v[i] for v in videos]) for i in range(3))
    together = dub_batch(dubber, crops, masks, audio=audio)
    for v in range(2):
        alone = dub_crops(dubber, crops[v], masks[v], audio=audio[v])
        diff = np.abs(together[v].astype(int) - alone.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_save_load_round_trip(dubber, net, tmp_path):
    crops, masks, audio, _ = inputs(6)
    path = dubber.save_pretrained(tmp_path / "dub", meta={"note": "test"})
    assert is_dubber_checkpoint(path)
    assert json.loads((path / "config.json").read_text())["dub"]["segment"] == 4
    loaded = load_dubber(path)
    assert isinstance(loaded, Dubber) and loaded.meta == {"note": "test"} and loaded.img_size == S
    assert np.array_equal(dub_crops(loaded, crops, masks, audio=audio), dub_crops(dubber, crops, masks, audio=audio))
    plain = net.save_pretrained(tmp_path / "plain")
    assert not is_dubber_checkpoint(plain) and not is_dubber_checkpoint(tmp_path / "nothing")
    assert isinstance(load_dubber(plain), Dubber)


def test_mask_helpers():
    m = np.zeros((1, 9, 9), bool)
    m[0, 4, 4] = True
    assert dilate_masks(m, 1).sum() == 9 and dilate_masks(m, 0).sum() == 1
    img = torch.rand(2, 16, 16, 3)
    known = torch.ones(2, 16, 16, dtype=torch.bool)
    known[:, 5:11, 5:11] = False
    img[:, :, :] = torch.tensor([0.2, 0.4, 0.6])          # a flat image is filled with its colour
    img[~known] = 0.0
    filled = push_pull_fill(img, known)
    assert torch.allclose(filled, torch.tensor([0.2, 0.4, 0.6]).expand_as(filled), atol=1e-5)


def test_mask_boxes_centre_on_the_mask_and_stay_inside():
    from synclipmae.models.dubber import box_index, mask_boxes

    m = torch.zeros(3, 32, 32, dtype=torch.bool)
    m[0, 10:14, 12:20] = True                              # centre (12, 16)
    m[1, 28:32, 0:3] = True                                # in a corner: the box is pushed inside
    y, x = mask_boxes(m, 8)                                # frame 2 (empty mask): the centre
    assert y.tolist() == [8, 24, 12] and x.tolist() == [12, 0, 12]
    n, rows, cols = box_index(y, x, 8)
    assert m[n, rows, cols].sum() == m[:2].sum()           # each box holds its whole mask


def tiny_dub_cfg(**kw) -> DubConfig:
    return DubConfig(**{"train_clips": 2, "clip_seconds": 0.8, "frames": 8, "batch_size": 2, "segment": 8,
                        "sync_every": 1, "log_every": 1, "minutes": 0.0, **kw})


def test_finetune_runs_and_writes_a_checkpoint(net, tmp_path):
    from synclipmae.train.dubber import finetune_dubber

    out = finetune_dubber(net, tmp_path / "dubber", seed=0, cfg=tiny_dub_cfg(), max_steps=3, progress=False,
                          log=lambda m: None)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite([r["loss"], r["rec"], r["sync"], r["coarse"]]).all() for r in rows)
    assert is_dubber_checkpoint(out) and not list(tmp_path.glob(".dubber.tmp*"))
    tuned = load_dubber(out)
    assert tuned.meta["steps"] == 3
    before = Dubber.from_synclipmae(net)
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, before.state_dict()[k])]
    assert any(k.startswith("net.dec_blocks") for k in changed)           # the decoder is fine-tuned ...
    assert not any(k.startswith(("net.blocks", "net.audio")) for k in changed)  # ... the encoders stay frozen


def test_bench_dub_writes_every_key(net, tmp_path):
    from synclipmae.tasks.dub_bench import bench_dub

    model_dir = net.save_pretrained(tmp_path / "ckpt")
    path = bench_dub(net, model_dir, tmp_path / "bench", seed=0, log=lambda m: None, clips=1, seconds=1.6,
                     finetune_minutes=0.01, dub_cfg=tiny_dub_cfg(minutes=0.01))
    result = json.loads(path.read_text())
    for name in ("audio-driven", "video-driven", "copy-source"):
        assert set(result[name]) == {"mouth_psnr", "mouth_ssim", "sync_within_1_frame", "sync_confidence",
                                     "identity_cosine"}
        assert all(np.isfinite(v) for v in result[name].values())
    assert "sync_confidence" in result["ground-truth"]
    assert result["copy-source"]["identity_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert result["settings"]["clips"] == 1 and is_dubber_checkpoint(tmp_path / "bench" / "dubber")


def test_ssim_and_psnr():
    from synclipmae.tasks.dub_bench import gaussian_ssim_map, mouth_scores

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    region = np.ones((2, 24, 24), bool)
    assert np.allclose(gaussian_ssim_map(x, x), 1.0)
    noisy = np.clip(x.astype(int) + rng.integers(-20, 21, x.shape), 0, 255).astype(np.uint8)
    psnr, ssim = mouth_scores(noisy, x, region)
    mse = ((noisy.astype(float) - x) ** 2).mean()
    assert psnr == pytest.approx(10 * np.log10(255 ** 2 / mse)) and 0 < ssim < 1


def test_a_bench_case_carries_what_redraws_its_truth():
    """bench_dub_ceiling.py redraws the truth from the case's face, ambient track and new mouth track."""
    from synclipmae.data.synth import render
    from synclipmae.tasks.dub_bench import make_case

    case = make_case(3, 1.0, 48, 0)
    frames, _, mouth = render(case["face"], case["ambient"], case["new_mouth"], 48)
    assert np.array_equal(frames, case["truth"]) and np.array_equal(mouth, case["truth_mouth"])
    assert not np.array_equal(case["source"][case["truth_mouth"]], case["truth"][case["truth_mouth"]])


def test_cli_dub_train_help_and_usage(capsys):
    from synclipmae.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["dub-train", "--help"])
    assert exit_.value.code == 0 and "dub-train" in capsys.readouterr().out
    assert main(["dub-train", "--model", "nowhere", "--out", "x", "--minutes", "-1"]) == 2
    capsys.readouterr()
    for bad, named in (("lrr=1e-3", "did you mean 'lr'"), ("reference=nearby", "reference must be"),
                       ("box=2", "0 < box <= 1")):
        assert main(["dub-train", "--model", "nowhere", "--out", "x", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and named in err, err
