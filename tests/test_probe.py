"""Emotion / action probes: the metrics against hand-computed values, `fit_probe` on data it must and
must not be able to separate, `probe_examples` with stand-in features, and `synclipmae probe` end to
end on SynthTalk mp4 clips with a tiny random model (its scores mean nothing: these tests pin the
outputs, the exit codes and the one-line errors)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synclipmae.cli import main
from synclipmae.data.datasets import DataError, Example, Examples, hash_split
from synclipmae.tasks import probe
from synclipmae.tasks.probe import (accuracy, average_precision, confusion_matrix, fit_probe, macro_f1,
                                    mean_average_precision, plot_confusion, probe_examples)

from conftest import tiny_overrides

REPORT_KEYS = {"task", "tokens", "head", "classes", "n_train", "n_test", "accuracy", "macro_f1", "failures"}


@pytest.fixture(autouse=True)
def one_thread():
    """The probes here are tiny: one thread is fastest, and several wait on each other when the
    machine's other cores are busy (the MLP's many small steps then take seconds each test)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------------------------------
# metrics


def test_accuracy_f1_confusion_by_hand():
    y_true, y_pred = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    assert accuracy(y_true, y_pred) == pytest.approx(3 / 5)
    # F1: class 0 (TP 1, FP 1, FN 1) 2/4; class 1 (TP 2, FP 1, FN 0) 4/5; class 2 (TP 0, FN 1) 0
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert macro_f1(np.array([1, 1]), np.array([1, 1])) == 1.0       # classes absent from both are left out
    assert confusion_matrix(y_true, y_pred, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_average_precision_by_hand():
    # positives ranked 1st and 3rd: precisions 1 and 2/3 at the two recall steps of 1/2
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)
    # a tie is one threshold: (P 1/2, R 1/2) then (P 2/3, R 1)
    assert average_precision(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.2])) == pytest.approx(0.25 + 1 / 3)
    assert np.isnan(average_precision(np.array([0, 0]), np.array([0.1, 0.2])))
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    s = np.array([[0.9, 0.3, 0.5], [0.1, 0.2, 0.5], [0.8, 0.1, 0.5], [0.2, 0.4, 0.5]])
    # class 0: AP 1; class 1: positives ranked 3rd and 4th -> (1/3 + 2/4) / 2; class 2 has no positive
    assert mean_average_precision(y, s) == pytest.approx((1 + 5 / 12) / 2)


def test_plot_confusion_writes_png(tmp_path):
    png = plot_confusion(np.array([[3, 1], [0, 4]]), ["happy", "sad"], tmp_path / "cm" / "c.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------------
# fit_probe


def blobs(n_per_class: int, n_classes: int = 4, dim: int = 16, sep: float = 8.0, seed: int = 0, noise_seed: int = 0):
    """Gaussian blobs (unit noise) around `n_classes` centres `sep` apart on average: x [N, dim], y [N]."""
    centres = np.random.default_rng(seed).normal(size=(n_classes, dim)) * sep
    y = np.repeat(np.arange(n_classes), n_per_class)
    return centres[y] + np.random.default_rng([seed, noise_seed]).normal(size=(len(y), dim)), y


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_probe_separates_blobs_and_not_shuffled_labels(kind):
    x_tr, y_tr = blobs(40, noise_seed=0)
    x_te, y_te = blobs(40, noise_seed=1)   # the same centres, other points
    scores = fit_probe(x_tr, y_tr, x_te, kind=kind, seed=0)
    assert scores.shape == (len(x_te), 4)
    assert accuracy(y_te, scores.argmax(1)) == 1.0
    # labels independent of the features: the probe cannot beat chance (0.25) on held-out rows
    rng = np.random.default_rng(2)
    shuffled = fit_probe(x_tr, rng.permutation(y_tr), x_te, kind=kind, seed=0)
    assert accuracy(rng.permutation(y_te), shuffled.argmax(1)) < 0.45


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_multilabel_probe(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = (x[:, :3] > 0).astype(np.int64)            # three labels, each the sign of one feature
    scores = fit_probe(x[:200], y[:200], x[200:], kind=kind, multilabel=True, seed=0)
    assert scores.shape == (100, 3)
    assert mean_average_precision(y[200:], scores) > 0.95
    noise = fit_probe(x[:200], rng.permutation(y[:200]), x[200:], kind=kind, multilabel=True, seed=0)
    assert mean_average_precision(y[200:], noise) < 0.75   # chance is about 0.5


def test_mlp_is_deterministic_from_its_seed_and_leaves_global_rng_alone():
    x, y = blobs(10, seed=3)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = fit_probe(x, y, x, kind="mlp", seed=5)
    assert torch.rand(1) == expected
    assert np.array_equal(a, fit_probe(x, y, x, kind="mlp", seed=5))
    assert not np.array_equal(a, fit_probe(x, y, x, kind="mlp", seed=6))
    with pytest.raises(ValueError, match="kind must be one of"):
        fit_probe(x, y, x, kind="svm")


# ----------------------------------------------------------------------------------------------------
# probe_examples with stand-in features (no video)


@pytest.fixture
def fake_features(monkeypatch):
    """Features = a vector fixed by the file's label (from its name) plus noise; "bad" files fail."""
    def features(path, model, tokens, backend="auto", pooling="mean"):
        name = Path(path).stem
        if "bad" in name:
            raise probe.ProbeInputError(f"{Path(path).name}: no face found in 25 frames")
        rng = np.random.default_rng(int(name.split("_")[-1]))
        centre = {"happy": 4.0, "sad": -4.0, "x": 0.0}[name.split("_")[0]]
        return (centre + rng.normal(size=6)).astype(np.float32)

    monkeypatch.setattr(probe, "_file_features", features)


def rows(names, split=None, multilabel=False):
    return Examples([Example(Path(f"/data/{n}.mp4"), [n.split("_")[0]] if multilabel else n.split("_")[0],
                             split, {"key": f"{n}.mp4"}) for n in names])


def test_probe_examples_hash_split_failures_and_report(tmp_path, fake_features):
    names = [f"{c}_{i}" for c in ("happy", "sad") for i in range(30)] + ["happy_bad_0"]
    rep = probe_examples(rows(names), model=None, out_dir=tmp_path, source="fake.csv")
    n_test = sum(hash_split(f"{n}.mp4") == "test" for n in names if "bad" not in n)
    assert rep["n_test"] == n_test and rep["n_train"] == 60 - n_test
    assert rep["accuracy"] == 1.0 and rep["macro_f1"] == 1.0 and rep["classes"] == ["happy", "sad"]
    assert rep["failures"] == [{"path": "/data/happy_bad_0.mp4",
                                "error": "happy_bad_0.mp4: no face found in 25 frames"}]
    saved = json.loads((tmp_path / "probe.json").read_text())
    assert REPORT_KEYS <= set(saved) and saved["confusion"] == rep["confusion"]
    assert (tmp_path / "confusion.png").is_file()


def test_probe_examples_multilabel_reports_map(tmp_path, fake_features):
    train = rows([f"{c}_{i}" for c in ("happy", "sad") for i in range(10)], "train", multilabel=True)
    test = rows([f"{c}_{i}" for c in ("happy", "sad") for i in range(10, 14)], "test", multilabel=True)
    rep = probe_examples(Examples(train + test), model=None, out_dir=tmp_path, task="action", multilabel=True)
    assert rep["map"] == 1.0 and set(rep["ap_per_class"]) == {"happy", "sad"} and "accuracy" not in rep
    assert not (tmp_path / "confusion.png").exists()


def test_probe_examples_data_errors(tmp_path, fake_features):
    with pytest.raises(DataError, match=r"src\.csv: empty test split"):
        probe_examples(rows(["happy_1", "sad_2"], "train"), None, tmp_path, source="src.csv")
    unseen = Examples(rows(["happy_1", "sad_2"], "train") + rows(["x_3"], "test"))
    with pytest.raises(DataError, match=r"/data/x_3\.mp4: unknown class 'x' \(no train row has it\)"):
        probe_examples(unseen, None, tmp_path)
    all_bad = Examples(rows(["happy_1", "sad_2"], "train") + rows(["sad_bad_3"], "test"))
    with pytest.raises(DataError, match="empty test split after 1 files failed"):
        probe_examples(all_bad, None, tmp_path, progress=False)
    unlabelled = Examples(rows(["happy_1", "sad_2"], "train", multilabel=True)
                          + [Example(Path("/data/x_3.mp4"), [], "test")])
    with pytest.raises(DataError, match="no test file has any label"):
        probe_examples(unlabelled, None, tmp_path, multilabel=True)


# ----------------------------------------------------------------------------------------------------
# synclipmae probe, end to end on SynthTalk mp4 clips

CLASSES = {0: "neutral", 1: "happy", 4: "surprised"}  # SynthTalk emotion id -> name


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """9 SynthTalk clips (2 s, 64 px), 3 per emotion, and a tiny random checkpoint, in one folder."""
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from synclipmae.config import build_config
    from synclipmae.data.synth import make_clip, write_clip
    from synclipmae.models.synclipmae import SyncLipMAE

    root = tmp_path_factory.mktemp("probe")
    lines = ["path,label,split"]
    for k, (emo, name) in enumerate(CLASSES.items()):
        for i in range(3):
            clip = make_clip("test", 3 * k + i, seconds=2.0, size=64, seed=0, emotion=emo)
            write_clip(clip, root / "clips", f"{name}_{i}", mp4=True)
            lines.append(f"clips/{name}_{i}.mp4,{name},{'test' if i == 2 else 'train'}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    SyncLipMAE(build_config(overrides=tiny_overrides())).save_pretrained(root / "ckpt")
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["probe", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_probe_manifest(clips, tmp_path, capsys):
    rc, out, err = run(capsys, "--manifest", clips / "labels.csv", "--model", clips / "ckpt", "--out", tmp_path / "p",
                       "--pooling", "mean+std+motion")
    assert rc == 0, err
    rep = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert REPORT_KEYS <= set(rep)
    assert (rep["task"], rep["tokens"], rep["head"], rep["pooling"]) == ("emotion", ["z_voc", "z_amb"], "linear",
                                                                        "mean+std+motion")
    assert rep["classes"] == ["happy", "neutral", "surprised"] and (rep["n_train"], rep["n_test"]) == (6, 3)
    assert 0.0 <= rep["accuracy"] <= 1.0 and rep["failures"] == []
    assert (tmp_path / "p" / "confusion.png").is_file()
    assert len(out.strip().splitlines()) == 1 and "accuracy" in out and "probe.json" in out


def test_cli_probe_failed_files_are_named_and_exit_1(clips, tmp_path, capsys):
    from synclipmae.media.write import write_video

    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    write_video(tmp_path / "blank.mp4", np.full((25, 64, 64, 3), 90, np.uint8), 25)   # no face anywhere
    text = (clips / "labels.csv").read_text().replace("clips/", f"{clips}/clips/")
    csv = tmp_path / "more.csv"
    csv.write_text(text + "broken.mp4,happy,train\nblank.mp4,neutral,train\n")
    rc, out, err = run(capsys, "--manifest", csv, "--model", clips / "ckpt", "--out", tmp_path / "p",
                       "--head", "mlp", "--tokens", "z_id")
    assert rc == 1
    rep = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert sorted(Path(f["path"]).name for f in rep["failures"]) == ["blank.mp4", "broken.mp4"]
    assert "broken.mp4" in err and "blank.mp4: no face found" in err and "Traceback" not in err
    assert (rep["head"], rep["tokens"], rep["n_train"]) == ("mlp", ["z_id"], 6)


@pytest.mark.parametrize("csv_text, extra, expected", [
    ("file,label\nclips/neutral_0.mp4,neutral\n", [], "row 1: the header must name the columns path,label"),
    ("path,label\nclips/neutral_0.mp4,neutral,train\n", [], "row 2: 3 cells, the header has 2"),
    ("path,label,split\nclips/neutral_0.mp4,neutral,train\nclips/gone.mp4,happy,test\n", [],
     "row 3: file not found: clips/gone.mp4"),
    ("path,label,split\nclips/neutral_0.mp4,neutral,train\nclips/happy_0.mp4,hapy,test\n",
     ["--classes", "neutral,happy"], "row 3: unknown class 'hapy'"),
    ("path,label,split\nclips/neutral_0.mp4,neutral,train\nclips/happy_0.mp4,happy,test\n", [],
     "row 3: unknown class 'happy' (no train row has it)"),
    ("path,label,split\nclips/neutral_0.mp4,neutral,train\nclips/happy_0.mp4,happy,train\n", [],
     "empty test split"),
])
def test_cli_probe_bad_manifests(clips, capsys, csv_text, extra, expected):
    csv = clips / "bad.csv"   # beside clips/, so the relative paths resolve
    csv.write_text(csv_text)
    rc, out, err = run(capsys, "--manifest", csv, "--model", clips / "ckpt", "--out", clips / "never", *extra)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and str(csv) in err and expected in err, err
    assert "DataError" not in err and not (clips / "never" / "probe.json").exists()


def test_cli_probe_usage(clips, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["probe", "--help"])
    assert ex.value.code == 0 and "examples:" in capsys.readouterr().out
    csv, ckpt = clips / "labels.csv", clips / "ckpt"
    for argv in (["--dataset", "ravdess", "--model", ckpt],                           # no --root
                 ["--manifest", csv, "--model", ckpt, "--tokens", "z_voc,mouth"],
                 ["--manifest", csv, "--root", clips, "--model", ckpt],
                 ["--dataset", "mead", "--root", clips, "--task", "action", "--model", ckpt],
                 ["--manifest", csv, "--model", clips / "no-such-ckpt"]):
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as ex:   # neither --manifest nor --dataset
        main(["probe", "--model", str(ckpt)])
    assert ex.value.code == 2


def _fake_test_set(rng, identities=16, clips_per_identity=2, frames=40):
    from synclipmae.evaluate import TestSet

    labels = [{"identity": i, "emotion": (i + k) % 5, "mouth": rng.random(frames),  # every emotion in each half
               "eye_open": (rng.random(frames) > 0.2).astype(float), "pose": rng.normal(size=(frames, 3))}
              for k in range(clips_per_identity) for i in range(identities)]
    return TestSet(np.zeros((len(labels), frames, 1, 1, 3), np.uint8), np.zeros((len(labels), 1), np.float32), labels)


def test_disentanglement_probes_find_each_factor_where_it_is_and_not_through_identity():
    """Tokens built from the labels: z_id = the identity, z_voc = mouth opening, z_amb = emotion +
    eye state + pose, each over a shared identity code. The emotion probe must not be able to learn
    each identity's emotion on its other clips (it would score below chance on z_id)."""
    import torch

    from synclipmae.evaluate import disentanglement

    rng = np.random.default_rng(0)
    test = _fake_test_set(rng)
    C, T, D = len(test.labels), 40, 32
    faces = rng.normal(size=(16, D))
    tokens = {k: np.zeros((C, T, D)) for k in ("z_id", "z_voc", "z_amb")}
    for c, lab in enumerate(test.labels):
        face = faces[lab["identity"]]
        tokens["z_id"][c] = face
        tokens["z_voc"][c] = 0.3 * face + np.outer(lab["mouth"], np.eye(D)[0])
        tokens["z_amb"][c] = 0.3 * face + np.eye(D)[1 + lab["emotion"]] + np.outer(1 - lab["eye_open"], np.eye(D)[8])
        tokens["z_amb"][c, :, 9:12] += lab["pose"]
    noise = lambda x: torch.from_numpy(x + 0.05 * rng.normal(size=x.shape)).float()  # noqa: E731
    scores = disentanglement({k: noise(v) for k, v in tokens.items()}, test)
    assert scores["z_id"]["identity"] == 1.0 and scores["z_id"]["mouth_r2"] < 0.1
    assert scores["z_voc"]["mouth_r2"] > 0.8
    assert scores["z_amb"]["emotion"] > 0.8 and scores["z_amb"]["blink_auc"] > 0.95 and scores["z_amb"]["pose_r2"] > 0.9
    # each face's two clips have different emotions: a probe that learned faces would score 0 here
    assert 0.1 < scores["z_id"]["emotion"] < 0.5
