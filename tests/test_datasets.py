"""Label readers of `synclipmae.data.datasets` on small fake trees that mimic each dataset's naming
(empty placeholder video files: readers never open them)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from synclipmae.data.datasets import READERS, DataError, Example, hash_split, read_dataset


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# ----------------------------------------------------------------------------------------------------
# manifest


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_reads_paths_labels_splits_and_extra_columns(tmp_path):
    touch(tmp_path / "clips" / "a.mp4")
    b = touch(tmp_path / "elsewhere" / "b.mp4")
    touch(tmp_path / "c.mp4")
    csv = write_csv(tmp_path / "labels.csv", f"path,label,split,speaker\nclips/a.mp4,happy,train,s1\n\n"
                                             f"{b},sad,TEST,s2\nc.mp4,happy,,s3\n")
    rows = read_dataset("manifest", csv)
    assert [r.path for r in rows] == [tmp_path / "clips" / "a.mp4", b, tmp_path / "c.mp4"]
    assert [r.label for r in rows] == ["happy", "sad", "happy"]
    assert [r.split for r in rows] == ["train", "test", None]
    assert rows[0].meta["speaker"] == "s1" and rows[0].meta["row"] == 2 and rows[2].meta["row"] == 5
    assert rows[2].meta["key"] == "c.mp4" and rows.skipped == []


def test_manifest_multilabel_and_label_order(tmp_path):
    for n in "ab":
        touch(tmp_path / f"{n}.mp4")
    csv = write_csv(tmp_path / "m.csv", "label,path\nnod; smile ,a.mp4\n,b.mp4\n")
    rows = read_dataset("manifest", csv)   # auto: a ";" makes it multi-label; an empty cell = no labels
    assert [r.label for r in rows] == [["nod", "smile"], []]
    single = read_dataset("manifest", write_csv(tmp_path / "s.csv", "path,label\na.mp4,nod\n"), multilabel=True)
    assert single[0].label == ["nod"]


@pytest.mark.parametrize("text, expected", [
    ("file,label\na.mp4,x\n", "row 1: the header must name the columns path,label"),
    ("path,label\na.mp4,x,train\n", "row 2: 3 cells, the header has 2"),
    ("path,label,split\na.mp4,x,train\nmissing.mp4,y,test\n", "row 3: file not found: missing.mp4"),
    ("path,label\na.mp4,\n", "row 2: empty label"),
    ("path,label,split\na.mp4,x,dev\n", "row 2: unknown split 'dev'"),
    ("path,label\n", "no rows below the header"),
    ("", "empty manifest"),
])
def test_manifest_errors_name_file_and_row(tmp_path, text, expected):
    touch(tmp_path / "a.mp4")
    csv = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as err:
        read_dataset("manifest", csv)
    msg = str(err.value)
    assert expected in msg and str(csv) in msg and "\n" not in msg


def test_manifest_unknown_class(tmp_path):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "b.mp4")
    csv = write_csv(tmp_path / "l.csv", "path,label\na.mp4,happy\nb.mp4,hapy\n")
    assert len(read_dataset("manifest", csv)) == 2
    with pytest.raises(DataError, match=r"l\.csv: row 3: unknown class 'hapy'"):
        read_dataset("manifest", csv, classes=["happy", "sad"])
    with pytest.raises(DataError, match="manifest not found"):
        read_dataset("manifest", tmp_path / "nope.csv")


# ----------------------------------------------------------------------------------------------------
# folder readers


def test_ravdess(tmp_path):
    for actor in (1, 18, 19, 24):
        d = tmp_path / f"Video_Speech_Actor_{actor:02d}" / f"Actor_{actor:02d}"
        touch(d / f"01-01-05-02-01-02-{actor:02d}.mp4")     # audio-video speech, angry, strong
        touch(d / f"02-01-05-02-01-02-{actor:02d}.mp4")     # video only: the same performance, left out
        touch(d / f"01-02-03-01-02-01-{actor:02d}.mp4")     # song: left out by default
        touch(d / f"03-01-05-02-01-02-{actor:02d}.wav")     # audio only: not a video file
    touch(tmp_path / "Actor_01" / "notes.mp4")               # skipped and listed
    touch(tmp_path / "Actor_01" / "01-01-09-01-01-01-01.mp4")  # no emotion 09: skipped
    rows = read_dataset("ravdess", tmp_path)
    assert [(r.meta["actor"], r.label, r.split) for r in rows] == [
        (1, "angry", "train"), (18, "angry", "train"), (19, "angry", "test"), (24, "angry", "test")]
    assert rows[0].meta["intensity"] == "strong" and rows[0].meta["channel"] == "speech"
    assert sorted(Path(s["path"]).name for s in rows.skipped) == ["01-01-09-01-01-01-01.mp4", "notes.mp4"]
    both = read_dataset("ravdess", tmp_path, channels=("01", "02"), test_actors=[1])
    assert len(both) == 8 and {r.label for r in both} == {"angry", "happy"}
    assert {r.meta["actor"] for r in both if r.split == "test"} == {1}
    with pytest.raises(DataError, match="unknown class 'angry'"):
        read_dataset("ravdess", tmp_path, classes=["neutral", "calm"])


def test_cremad(tmp_path):
    touch(tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.flv")
    touch(tmp_path / "VideoFlash" / "1005_IEO_HAP_HI.flv")
    touch(tmp_path / "VideoFlash" / "1005_IEO_HAP_HI.mp4")   # converted copy: preferred, counted once
    touch(tmp_path / "VideoFlash" / "1091_TIE_NEU_LO.flv")
    touch(tmp_path / "VideoFlash" / "1002_DFA_XYZ_XX.flv")   # no such emotion: skipped
    touch(tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.wav")   # not video
    rows = read_dataset("crema-d", tmp_path)
    assert [(r.path.name, r.label, r.split) for r in rows] == [
        ("1001_DFA_ANG_XX.flv", "angry", "train"), ("1005_IEO_HAP_HI.mp4", "happy", "test"),
        ("1091_TIE_NEU_LO.flv", "neutral", "train")]
    assert rows[1].meta == {"actor": 1005, "sentence": "IEO", "level": "high"}
    assert [Path(s["path"]).name for s in rows.skipped] == ["1002_DFA_XYZ_XX.flv"]
    assert [r.split for r in read_dataset("crema-d", tmp_path, test_actors=[1091])] == ["train", "train", "test"]


def test_mead(tmp_path):
    for spk in ("M003", "W009"):
        for view in ("front", "left_30"):
            touch(tmp_path / spk / "video" / view / "angry" / "level_3" / "001.mp4")
            touch(tmp_path / spk / "video" / view / "neutral" / "level_1" / "002.mp4")
    touch(tmp_path / "M003" / "video" / "front" / "angry" / "001.mp4")  # no level folder: skipped
    rows = read_dataset("mead", tmp_path, test_speakers=["W009"])
    assert [(r.meta["speaker"], r.label, r.meta["level"], r.split) for r in rows] == [
        ("M003", "angry", 3, "train"), ("M003", "neutral", 1, "train"),
        ("W009", "angry", 3, "test"), ("W009", "neutral", 1, "test")]
    assert all(r.meta["view"] == "front" for r in rows) and len(rows.skipped) == 1
    default = read_dataset("mead", tmp_path, views=None)
    assert len(default) == 8
    assert all(r.split == hash_split(r.meta["speaker"]) for r in default)


def celebv_info(tmp_path: Path) -> Path:
    info = {"meta_info": {"appearance_mapping": ["Blurry", "Male"], "action_mapping": ["blink", "nod", "smile"]},
            "clips": {
                "AAA_0": {"ytb_id": "AAA", "duration": {"start_sec": 1.0, "end_sec": 4.0}, "bbox": {},
                          "attributes": {"appearance": [0, 1], "action": [1, 0, 1],
                                         "emotion": {"sep_flag": False, "labels": "happy"}}, "version": "v0.1"},
                "AAA_1": {"ytb_id": "AAA", "duration": {"start_sec": 9.0, "end_sec": 14.0}, "bbox": {},
                          "attributes": {"appearance": [0, 1], "action": [0, 0, 0],
                                         "emotion": {"sep_flag": True, "labels": [
                                             {"emotion": "neutral", "start_sec": 0, "end_sec": 1.0},
                                             {"emotion": "sadness", "start_sec": 1.0, "end_sec": 2.5},
                                             {"emotion": "neutral", "start_sec": 2.5, "end_sec": 3.0}]}},
                          "version": "v0.1"},
                "BBB_0": {"ytb_id": "BBB", "duration": {"start_sec": 0.0, "end_sec": 3.0}, "bbox": {},
                          "attributes": {"appearance": [1, 0], "action": [0, 1, 0],
                                         "emotion": {"sep_flag": False, "labels": "neutral"}}, "version": "v0.1"},
                "CCC_0": {"ytb_id": "CCC", "duration": {"start_sec": 0.0, "end_sec": 3.0}, "bbox": {},
                          "attributes": {"appearance": [1, 0], "action": [0, 1, 0],
                                         "emotion": {"sep_flag": False, "labels": "neutral"}}, "version": "v0.1"}}}
    (tmp_path / "celebvhq_info.json").write_text(json.dumps(info))
    for clip in ("AAA_0", "AAA_1", "BBB_0"):   # CCC_0 was never downloaded
        touch(tmp_path / "processed" / f"{clip}.mp4")
    return tmp_path / "celebvhq_info.json"


def test_celebvhq_emotion_and_action(tmp_path):
    celebv_info(tmp_path)
    rows = read_dataset("celebv-hq", tmp_path)
    # AAA_1 has neutral for 1.5 s and sadness for 1.5 s: a tie, the first one wins
    assert [(r.meta["clip"], r.label) for r in rows] == [("AAA_0", "happy"), ("AAA_1", "neutral"), ("BBB_0", "neutral")]
    assert rows[1].meta["mixed_emotion"] and rows[0].split == rows[1].split == hash_split("AAA")
    assert [Path(s["path"]).name for s in rows.skipped] == ["CCC_0.mp4"]
    assert [r.meta["clip"] for r in read_dataset("celebv-hq", tmp_path, mixed="skip")] == ["AAA_0", "BBB_0"]
    acts = read_dataset("celebv-hq", tmp_path, task="action")
    assert [r.label for r in acts] == [["blink", "smile"], [], ["nod"]]


def test_celebvhq_bad_entries(tmp_path):
    info = celebv_info(tmp_path)
    data = json.loads(info.read_text())
    data["clips"]["BBB_0"]["attributes"]["action"] = [0, 1]   # 2 flags, 3 names
    info.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"celebvhq_info\.json: clip BBB_0: cannot read its action labels"):
        read_dataset("celebv-hq", tmp_path, task="action")
    info.write_text("{not json")
    with pytest.raises(DataError, match="not a CelebV-HQ info file"):
        read_dataset("celebv-hq", tmp_path)


def test_lrs3(tmp_path):
    for subset, spk, utt, text in [("trainval", "0af00UcTOSc", "50001", "Text:  THE FIRST  WORDS\nConf:  4\n"),
                                   ("test", "0Fi83BHQsMA", "00002", "Text:  HELLO THERE\n"),
                                   ("pretrain", "5ZJ0MPzSIwA", "00003", "Text:  SO WE WENT\n\nWORD START END\n")]:
        touch(tmp_path / subset / spk / f"{utt}.mp4")
        (tmp_path / subset / spk / f"{utt}.txt").write_text(text)
    touch(tmp_path / "test" / "0Fi83BHQsMA" / "00009.mp4")    # no transcript: skipped
    rows = read_dataset("lrs3", tmp_path)
    assert sorted((r.meta["subset"], r.label, r.split) for r in rows) == [
        ("pretrain", "so we went", "train"), ("test", "hello there", "test"), ("trainval", "the first words", "train")]
    assert [Path(s["path"]).name for s in rows.skipped] == ["00009.mp4"]
    assert len(read_dataset("lrs3", tmp_path, subsets=("test",))) == 1


@pytest.mark.parametrize("kind", ["ravdess", "crema-d", "mead", "celebv-hq", "lrs3"])
def test_empty_or_missing_roots_are_data_errors(tmp_path, kind):
    with pytest.raises(DataError, match="no such folder"):
        read_dataset(kind, tmp_path / "missing")
    if kind != "celebv-hq":
        touch(tmp_path / "README.mp4")
        with pytest.raises(DataError, match="no .* files found"):
            read_dataset(kind, tmp_path)


def test_registry_and_hash_split():
    assert set(READERS) == {"manifest", "ravdess", "crema-d", "mead", "celebv-hq", "lrs3", "grid"}
    with pytest.raises(ValueError, match="unknown dataset"):
        read_dataset("voxceleb", ".")
    keys = [f"clip_{i}.mp4" for i in range(2000)]
    splits = [hash_split(k) for k in keys]
    assert splits == [hash_split(k) for k in keys]                       # deterministic
    assert 0.17 < splits.count("test") / len(keys) < 0.23                # about 20%
    assert isinstance(Example(Path("a.mp4"), "x").meta, dict)
