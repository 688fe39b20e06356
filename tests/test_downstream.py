"""Features of raw files (extract / embed), lip reading (CTC head, decoding, CLI) and bench downstream."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import tiny_overrides

from synclipmae.cli import main
from synclipmae.config import build_config
from synclipmae.data.synth import make_clip, write_clip
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.tasks import vsr
from synclipmae.tasks.features import extract, load_features
from synclipmae.timing import TIMING


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    SyncLipMAE(build_config(overrides=tiny_overrides())).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Four 2 s SynthTalk mp4 clips at 96 px with their transcripts."""
    d = tmp_path_factory.mktemp("clips")
    texts = []
    for i in range(4):
        clip = make_clip("test", i, seconds=2.0, size=96, seed=5)
        write_clip(clip, d, f"c{i}", mp4=True)
        texts.append(clip.vocal.text)
    return d, texts


def test_extract_gives_named_per_frame_tokens_on_the_25fps_timeline(ckpt, clips):
    model = SyncLipMAE.from_pretrained(ckpt)
    tracks = extract(clips[0] / "c0.mp4", model)
    assert len(tracks) == 1
    tr = tracks[0]
    n = tr.end_frame - tr.start_frame
    assert n >= 45  # 2 s at 25 fps, the face visible throughout
    assert set(tr.tokens) == {"z_id", "z_voc", "z_amb", "a"}
    assert all(v.shape == (n, 32) for v in tr.tokens.values())
    assert np.allclose(np.diff(tr.times), 1 / TIMING.fps)


def test_embed_cli_round_trip_and_errors(ckpt, clips, tmp_path, capsys):
    out = tmp_path / "c1.safetensors"
    assert main(["embed", str(clips[0] / "c1.mp4"), "--model", str(ckpt), "--out", str(out)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ok" and record["tracks"][0]["tokens"] == ["a", "z_amb", "z_id", "z_voc"]
    again = extract(clips[0] / "c1.mp4", SyncLipMAE.from_pretrained(ckpt))
    loaded = load_features(out)
    assert np.allclose(loaded[0].tokens["z_voc"], again[0].tokens["z_voc"], atol=1e-5)

    assert main(["embed", str(tmp_path / "missing.mp4"), "--model", str(ckpt), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.mp4" in err[0] and "Traceback" not in err[0]
    assert main(["embed", str(clips[0] / "c1.mp4"), "--model", str(ckpt), "--out", str(tmp_path / "x.npz")]) == 2


def test_ctc_beam_search_sums_paths_where_greedy_does_not():
    # Two steps over {blank, a}. Best path: blank,blank (p .36) -> "". But "a" has three paths
    # (a,a .16 + a,blank .24 + blank,a .24 = .64): the beam search must return "a".
    p = np.array([[0.6, 0.4], [0.6, 0.4]])
    logp = np.log(p)
    assert vsr.ctc_greedy(logp) == []
    assert vsr.ctc_beam_search(logp, beam=4) == [1]


def test_error_rates_and_lexicon_snap():
    r = vsr.error_rates(["the cat sat", "a b"], ["the cat sit", "a b"])
    assert math.isclose(r["wer"], 1 / 5) and math.isclose(r["cer"], 1 / 14)
    assert vsr.snap_to_lexicon("kat sot", ["cat", "sat", "dog"]) == "cat sat"
    with pytest.raises(ValueError):
        vsr.error_rates([""], ["x"])


def _toy_utterances(n, rng):
    """Features that spell their text: each character is 2 frames of its random code plus noise."""
    words = ["bad", "dog", "cab", "go", "odd", "ace"]
    codes = np.random.default_rng(123).standard_normal((len(vsr.ALPHABET) + 1, 24))  # the same in every call
    tok = vsr.CharTokenizer()
    feats, texts = [], []
    for _ in range(n):
        text = " ".join(rng.choice(words, size=3))
        ids = tok.encode(text)
        f = np.repeat(codes[ids], 2, axis=0) + 0.3 * rng.standard_normal((2 * len(ids), 24))
        feats.append(f.astype(np.float32))
        texts.append(text)
    return feats, texts


def test_vsr_head_learns_to_read_features_that_spell_the_text_and_saves(tmp_path):
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    train_f, train_t = _toy_utterances(96, rng)
    test_f, test_t = _toy_utterances(16, rng)
    cfg = vsr.VSRTrainConfig(head=vsr.VSRConfig(width=48, depth=1, heads=2, upsample=1), epochs=15, lr=3e-3,
                             batch_size=16, time_mask=0)
    head, tok = vsr.train_vsr(train_f, train_t, cfg)
    hyp = vsr.transcribe(head, tok, test_f, beam=4)
    assert vsr.error_rates(test_t, hyp)["cer"] < 0.15
    vsr.save_vsr(head, tok, tmp_path / "head")
    head2, tok2, _ = vsr.load_vsr(tmp_path / "head")
    assert vsr.transcribe(head2, tok2, test_f) == vsr.transcribe(head, tok, test_f)
    # shuffled transcripts carry no signal: the same head cannot read the test set
    shuffled, _ = vsr.train_vsr(train_f, list(rng.permutation(train_t)), cfg)
    assert vsr.error_rates(test_t, vsr.transcribe(shuffled, tok, test_f))["cer"] > 0.4


def test_vsr_cli_train_then_eval_on_a_manifest(ckpt, clips, tmp_path, capsys):
    d, texts = clips
    manifest = d / "vsr.csv"
    rows = ["path,label,split"] + [f"c{i}.mp4,{t},{'test' if i == 3 else 'train'}" for i, t in enumerate(texts)]
    manifest.write_text("\n".join(rows) + "\n")
    head = tmp_path / "head"
    assert main(["vsr", "train", "--manifest", str(manifest), "--model", str(ckpt), "--out", str(head),
                 "--epochs", "1", "--beam", "2"]) == 0
    report = json.loads((head / "vsr.json").read_text())
    assert report["n_train"] == 3 and report["test"]["n"] == 1 and report["test"]["wer"] >= 0 and "val" not in report
    out = tmp_path / "wer.json"
    assert main(["vsr", "eval", "--manifest", str(manifest), "--model", str(ckpt), "--head", str(head),
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["test"]["utterances"][0]["reference"] == texts[3]
    capsys.readouterr()
    assert main(["vsr", "eval", "--manifest", str(manifest), "--model", str(ckpt)]) == 2
    capsys.readouterr()
    bad = d / "bad.csv"
    bad.write_text("file,text\nc0.mp4,hello\n")
    assert main(["vsr", "train", "--manifest", str(bad), "--model", str(ckpt), "--out", str(head)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.csv" in err[0]


def test_bench_downstream_writes_every_encoder_beside_the_baselines_of_the_demo_run(tmp_path):
    from synclipmae.tasks.downstream import DownstreamConfig, bench_downstream

    torch.manual_seed(0)
    run = tmp_path / "demo"
    main_ckpt = SyncLipMAE(build_config(overrides=tiny_overrides())).save_pretrained(run / "runs" / "synclipmae" / "ck")
    base = SyncLipMAE(build_config(overrides=tiny_overrides(model={"variant": "syncnet-style"})))
    base_ckpt = base.save_pretrained(run / "runs" / "syncnet-style" / "ck")
    (run / "report.json").write_text(json.dumps({"baselines": {"syncnet-style": {"checkpoint": str(base_ckpt)}}}))
    cfg = DownstreamConfig(train_clips=6, test_clips=4, seconds=1.0, workers=1, beam=2,
                           vsr=vsr.VSRTrainConfig(head=vsr.VSRConfig(width=32, depth=1, heads=2), epochs=1))
    path = bench_downstream(SyncLipMAE.from_pretrained(main_ckpt), main_ckpt, tmp_path / "bench", cfg=cfg,
                            log=lambda m: None, progress=False)
    result = json.loads(path.read_text())
    assert set(result) == {"synclipmae", "random-init", "syncnet-style",  # mae-only: not in the report
                           "pixels", "mouth-track", "settings"}
    for name in ("synclipmae", "random-init", "syncnet-style"):
        r = result[name]
        assert 0 <= r["emotion_accuracy"] <= 1 and 0 <= r["action_map"] <= 1 and r["vsr_wer"] >= 0
    assert 0 <= result["pixels"]["emotion_accuracy"] <= 1 and "vsr_wer" not in result["pixels"]
    assert "emotion_accuracy" not in result["mouth-track"] and result["mouth-track"]["vsr_cer"] >= 0
    assert (tmp_path / "bench" / "downstream.png").is_file()


def test_bench_cli_takes_key_value_settings_and_names_a_bad_one(ckpt, tmp_path, capsys):
    quick = ["train_clips=4", "test_clips=2", "seconds=1", "workers=1", "beam=1", "references=false",
             "tokens=z_amb", "vsr.epochs=1", "vsr.head.width=32", "vsr.head.depth=1", "vsr.head.heads=2"]
    out = tmp_path / "bench"
    assert main(["bench", "downstream", "--model", str(ckpt), "--out", str(out), *quick]) == 0
    result = json.loads((out / "downstream.json").read_text())
    assert result["settings"]["train_clips"] == 4 and result["settings"]["tokens"] == ["z_amb"]
    assert set(result) == {"synclipmae", "random-init", "settings"}  # no demo run, no references
    capsys.readouterr()
    for bad, named in (("tokns=z_id", "did you mean 'tokens'"), ("tokens=z_ib", "z_ib"), ("vsr.epochs=two", "vsr.epochs")):
        assert main(["bench", "downstream", "--model", str(ckpt), "--out", str(out), bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0]
    for bad in ("clips=many", "clips=0"):
        assert main(["bench", "dub", "--model", str(ckpt), "--out", str(out), bad]) == 2
        assert "clips" in capsys.readouterr().err


def test_motion_pooling_tells_a_fast_oscillation_from_a_slow_drift_with_the_same_mean_and_std():
    from synclipmae.tasks.features import pool

    t = np.arange(100) / 25.0
    fast, slow = np.sin(2 * np.pi * 2.0 * t), np.sin(2 * np.pi * 0.25 * t)  # a 2 Hz nod, a 4 s drift
    tokens = {"z_amb": np.stack([fast, slow])[:, :, None].astype(np.float32)}  # [C=2, Tc=100, D=1]
    plain = pool(tokens, ("z_amb",), "mean+std")
    moving = pool(tokens, ("z_amb",), "mean+std+motion")
    assert plain.shape == (2, 2) and moving.shape == (2, 3)
    assert np.allclose(plain[0], plain[1], atol=0.02)          # mean 0, std 1/sqrt(2) for both
    assert moving[0, 2] > 5 * moving[1, 2]                     # the fast one moves ~8x more per frame
    assert pool(tokens, ("z_amb", "z_id"), "mean").shape == (2, 1)  # tokens an encoder lacks are skipped
