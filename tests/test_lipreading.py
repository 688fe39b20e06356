"""Lip reading on real faces (issue 21): GRID's grammar, the head's inputs, `vsr --dataset grid`,
`bench vsr`, `read_file` and the shipped head."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synclipmae.cli import main
from synclipmae.config import build_config
from synclipmae.data.datasets import read_dataset
from synclipmae.data.datasets.common import hash_fraction
from synclipmae.data.datasets.grid import GRID_SLOTS
from synclipmae.models.heads import VSRConfig, VSRHead
from synclipmae.models.synclipmae import SyncLipMAE
from synclipmae.tasks import vsr
from synclipmae.tasks.read import read_file
from tests.conftest import tiny_overrides

GRID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "grid"
# two sentences of each split of `vsr --dataset grid` (SHA-1 of "s1/NAME": test < 0.1 <= val < 0.2)
NAMES = {"train": ["bbaf2n", "bbaf3s", "bbaf4p"], "val": ["bbal7s", "bbal9a"], "test": ["bbaz5s", "bbif1a"]}


@pytest.fixture(scope="module")
def grid_dir():
    if not (GRID / "s1").is_dir():
        pytest.skip(f"GRID not found at {GRID} (it lives beside the repository, in ../shared)")
    return GRID


@pytest.fixture(scope="module")
def small_grid(grid_dir, tmp_path_factory):
    """Seven GRID s1 sentences in GRID's layout (links to ../shared)."""
    d = tmp_path_factory.mktemp("grid")
    (d / "s1").mkdir()
    (d / "align").mkdir()
    for name in sum(NAMES.values(), []):
        (d / "s1" / f"{name}.mp4").symlink_to(grid_dir / "s1" / f"{name}.mp4")
        (d / "align" / f"{name}.align").symlink_to(grid_dir / "align" / f"{name}.align")
    return d


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny model whose view counts say where the mouth is (as a trained model's do)."""
    torch.manual_seed(0)
    model = SyncLipMAE(build_config(overrides=tiny_overrides()))
    model.view_b_counts.copy_(torch.arange(model.num_patches, dtype=model.view_b_counts.dtype))
    model.mouth_counts[-6:] = 10
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    model.save_pretrained(path)
    return path


def test_grid_grammar_allows_only_its_sentences():
    g = vsr.SlotGrammar(GRID_SLOTS)
    assert g.allowed("") == {"b", "l", "p", "s"}
    assert g.allowed("bin") == {" "} and g.allowed("bin b") == {"l"}
    assert g.allowed("bin blue at w") == set()  # GRID has no letter w
    assert g.complete("bin blue at f two now") and not g.complete("bin blue at f two")
    assert not g.complete("bin blue at f two now again")


def _spell(text: str, alphabet: str = vsr.ALPHABET, p: float = 0.9) -> np.ndarray:
    """log-probs [2 * len(text), V+1]: each character then a blank, with probability p each."""
    V = len(alphabet) + 1
    rows = []
    for c in text:
        for unit in (alphabet.index(c) + 1, 0):
            row = np.full(V, (1 - p) / (V - 1))
            row[unit] = p
            rows.append(row)
    return np.log(np.array(rows))


def test_grammar_constrained_decoding_finds_the_nearest_grammar_sentence():
    tok = vsr.CharTokenizer()
    logp = _spell("bin blux at f two now")
    x = vsr.ALPHABET.index("x") + 1
    e = vsr.ALPHABET.index("e") + 1
    logp[2 * 7] = np.log(np.full(logp.shape[1], 0.05 / (logp.shape[1] - 2)))
    logp[2 * 7, x], logp[2 * 7, e] = np.log(0.6), np.log(0.35)
    assert tok.decode(vsr.ctc_greedy(logp)) == "bin blux at f two now"
    g = vsr.SlotGrammar(GRID_SLOTS)
    assert tok.decode(vsr.ctc_beam_search(logp, beam=8, grammar=g)) == "bin blue at f two now"
    # a sentence already in the grammar comes through unchanged, double letters included
    assert tok.decode(vsr.ctc_beam_search(_spell("set green by e three soon"), beam=8, grammar=g)) == \
        "set green by e three soon"


def test_grid_val_split_is_a_slice_of_the_file_name_hash(grid_dir):
    rows = read_dataset("grid", grid_dir, val_fraction=0.1)
    for ex in rows:
        u = hash_fraction(f"s1/{ex.meta['name']}")
        assert ex.split == ("test" if u < 0.1 else "val" if u < 0.2 else "train")
    assert {ex.split for ex in read_dataset("grid", grid_dir)} == {"train", "test"}  # default: no val


def test_head_inputs_have_the_documented_shapes(ckpt):
    model = SyncLipMAE.from_pretrained(ckpt).eval()
    crops = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    z = vsr.head_features(model, crops, "z_voc")
    zm = vsr.head_features(model, crops, "z_voc+mouth")
    view, mouth = model.motion_patches(), model.mouth_patches()
    assert z.shape == (5, model.cfg.model.width)
    assert zm.shape == (5, model.cfg.model.width * (1 + int(torch.isin(view, mouth).sum())))
    assert np.allclose(zm[:, :z.shape[1]], z, atol=1e-5)
    px = vsr.head_features(None, np.full((2, 96, 96, 3), 255, np.uint8), "pixels")
    assert px.shape == (2, 480) and np.allclose(px, 1.0)
    with pytest.raises(ValueError):
        vsr.head_features(model, crops, "lips")


def test_vsr_train_on_grid_scores_val_and_test_with_the_grammar(small_grid, ckpt, tmp_path, capsys):
    head = tmp_path / "head"
    assert main(["vsr", "train", "--dataset", "grid", "--root", str(small_grid), "--model", str(ckpt),
                 "--out", str(head), "--epochs", "1", "--beam", "2", "--grammar", "grid", "--inputs", "z_voc+mouth"]) == 0
    report = json.loads((head / "vsr.json").read_text())
    assert report["n_train"] == 3 and report["inputs"] == "z_voc+mouth"
    for split in ("val", "test"):
        assert report[split]["n"] == 2 and "wer" in report[split]["grammar"]
        for u in report[split]["utterances"]:  # grammar decoding keeps to GRID's sentences (or their starts)
            g, text = vsr.SlotGrammar(GRID_SLOTS), u["grammar"]
            assert all(c in g.allowed(text[:i]) for i, c in enumerate(text))
    assert "val WER" in capsys.readouterr().out
    out = tmp_path / "eval.json"
    assert main(["vsr", "eval", "--dataset", "grid", "--root", str(small_grid), "--model", str(ckpt),
                 "--head", str(head), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["test"]["n"] == 2


def test_bench_vsr_trains_one_head_per_encoder_on_the_same_sentences(small_grid, ckpt, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "vsr", "--root", str(small_grid), "--model", str(ckpt), "--model", "random",
                 "--model", "pixels", "--out", str(out), "--beam", "1", "epochs=1", "head.width=32"]) == 0
    result = json.loads((out / "vsr_bench.json").read_text())
    assert list(result["encoders"]) == [str(ckpt), "random", "pixels"]
    assert result["encoders"]["pixels"]["inputs"] == "pixels"
    assert all(e["test"]["n"] == 2 and e["val"]["n"] == 2 for e in result["encoders"].values())
    assert "| pixels |" in (out / "vsr_bench.md").read_text()
    capsys.readouterr()
    assert main(["bench", "vsr", "--root", str(small_grid), "--model", "random", "--out", str(out)]) == 2


def test_read_file_gives_one_text_per_track_and_one_line_errors(grid_dir, ckpt, tmp_path):
    model = SyncLipMAE.from_pretrained(ckpt).eval()
    tok = vsr.CharTokenizer()
    head = VSRHead(model.cfg.model.width, len(tok), VSRConfig(width=32, depth=1, heads=2)).eval()
    record = read_file(grid_dir / "s1" / "bbaf2n.mp4", model, head, tok, beam=1)
    assert record["status"] == "ok" and record["error"] is None and record["frames"] == 75
    assert len(record["tracks"]) == 1 and record["text"] == record["tracks"][0]["text"]
    assert record["tracks"][0]["end_frame"] - record["tracks"][0]["start_frame"] >= 70
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    record = read_file(broken, model, head, tok)
    assert record["status"] == "error" and record["error"].startswith("broken.mp4") and "\n" not in record["error"]


@pytest.fixture(scope="module")
def head_dir(ckpt, tmp_path_factory):
    """An untrained head over the tiny model's z_voc, saved with its encoder's path."""
    torch.manual_seed(0)
    model = SyncLipMAE.from_pretrained(ckpt)
    tok = vsr.CharTokenizer()
    head = VSRHead(model.cfg.model.width, len(tok), VSRConfig(width=32, depth=1, heads=2))
    return vsr.save_vsr(head, tok, tmp_path_factory.mktemp("head") / "h", extra={"encoder": str(ckpt)})


def test_read_cli_prints_a_line_per_file_and_appends_records(grid_dir, head_dir, tmp_path, capsys):
    clip = grid_dir / "s1" / "bbaf2n.mp4"
    assert main(["read", str(clip), "--head", str(head_dir), "--beam", "1"]) == 0  # the head names its encoder
    record = json.loads(capsys.readouterr().out.strip())
    assert record["status"] == "ok" and record["head"] == str(head_dir) and isinstance(record["text"], str)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    out = tmp_path / "read.jsonl"
    argv = ["read", str(clip), str(broken), "--head", str(head_dir), "--beam", "1", "--grammar", "grid",
            "--json", str(out)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].startswith("bbaf2n.mp4: ") and lines[1].startswith("error: broken.mp4")
    assert "Traceback" not in captured.err and "1 of 2 inputs ok" in captured.err
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok", "error"]
    assert set(records[0]) >= {"input", "status", "error", "text", "tracks"}
    assert main(argv) == 1  # a re-run skips what OUT holds
    assert len(out.read_text().splitlines()) == 2


def test_read_cli_refuses_a_head_and_an_encoder_that_do_not_fit(grid_dir, head_dir, capsys):
    assert main(["read", str(grid_dir / "s1" / "bbaf2n.mp4"), "--head", str(head_dir), "--model", "real-tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reads 32 numbers a frame" in err[0]
    assert main(["read", str(grid_dir / "s1" / "bbaf2n.mp4"), "--head", "no-such-head"]) == 2
    assert "no-such-head" in capsys.readouterr().err


def test_word_units_are_the_closed_vocabulary_of_the_training_texts():
    tok = vsr.WordTokenizer.from_texts(["bin blue at f two now", "set red by e three soon"])
    assert len(tok) == 12 and tok.decode(tok.encode("set blue at e two soon")) == "set blue at e two soon"
    assert tok.encode("bin purple") == tok.encode("bin")  # words outside the vocabulary are dropped
    again = vsr.tokenizer_from_dict(tok.to_dict())
    assert isinstance(again, vsr.WordTokenizer) and again.words == tok.words


def test_the_shipped_head_reads_held_out_grid_sentences(grid_dir, tmp_path, capsys):
    """`read` with no --model and no --head: the shipped real-tiny encoder and grid-s1 head, on test
    sentences neither saw (the 'test' split)."""
    test = [ex for ex in read_dataset("grid", grid_dir) if ex.split == "test"][:6]
    out = tmp_path / "read.jsonl"
    assert main(["read", *[str(ex.path) for ex in test], "--grammar", "grid", "--json", str(out)]) == 0
    records = {r["input"]: r for r in map(json.loads, out.read_text().splitlines())}
    hyps = [records[str(ex.path)]["text"] for ex in test]
    assert all(records[str(ex.path)]["head"] == "grid-s1" for ex in test)
    assert vsr.error_rates([ex.label for ex in test], hyps)["wer"] < 0.5  # an untrained head scores about 1
