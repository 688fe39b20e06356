"""SynthTalk (DESIGN §5): shapes, determinism, disjoint identities, the sync property, the
counterfactual render, blinks, masks, and the file round trips."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from synclipmae.data import synth
from synclipmae.data.synth import (ACTIONS, EMOTIONS, LEXICON, PHONEMES, SPLIT_IDENTITIES, VOCABULARY,
                                   ambient, get_identity, load_clip_files, make_clip, render, speak,
                                   write_clip, write_dataset)
from synclipmae.timing import TIMING

SPF = TIMING.samples_per_frame


@pytest.fixture(scope="module")
def clip():
    return make_clip("train", 7, seconds=2.0, seed=3)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum() + 1e-12))


def test_vocabulary_is_built_in_and_phonemic():
    assert len(VOCABULARY) >= 300 and len(set(VOCABULARY)) == len(VOCABULARY)
    for w in VOCABULARY:
        phones = LEXICON[w].split()
        assert w == "".join(phones) and w.isalpha() and w.islower()
        assert set(phones) <= set(PHONEMES)
    tables = (synth.synth_speech.EMOTION_VOICE, synth.synth_face.EMOTION_FACE, synth.EMOTION_BROW)
    assert all(set(t) == set(EMOTIONS) for t in tables)                # one entry per emotion


def test_clip_shapes_dtypes_and_lengths(clip):
    T = TIMING.seconds_to_frames(2.0)
    assert clip.frames.shape == (T, 96, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (T * SPF,) and clip.audio.dtype == np.float32
    assert clip.vocal.audio.shape == (T * SPF,) and np.abs(clip.vocal.audio).max() <= 1.0
    assert np.abs(clip.audio).max() <= 1.0
    assert clip.face_mask.shape == clip.mouth_mask.shape == (T, 96, 96)
    assert clip.face_mask.dtype == clip.mouth_mask.dtype == np.bool_
    assert clip.vocal.mouth.shape == (T, 5) and clip.vocal.mouth.dtype == np.float32
    a = clip.ambient
    assert a.eye_open.shape == a.brow.shape == (T,) and a.pose.shape == (T, 6)
    assert a.actions.shape == (len(ACTIONS),) and a.actions.dtype == np.uint8
    assert 0 <= a.emotion < len(EMOTIONS)
    assert clip.meta["source"] == "synthtalk" and clip.meta["fps"] == TIMING.fps
    assert clip.meta["start_s"] == 0.0 and clip.meta["identity"] == 7 % SPLIT_IDENTITIES["train"]
    words = clip.vocal.text.split()
    assert words and all(w in LEXICON for w in words)
    assert all(0.0 <= s < e <= 2.0 for _, s, e in clip.vocal.phonemes)
    lab = json.loads(json.dumps(clip.labels()))
    assert len(lab["mouth_open"]) == len(lab["eye_open"]) == len(lab["pose"]) == T
    assert lab["emotion"] == EMOTIONS[lab["emotion_id"]] and set(lab["actions"]) <= set(ACTIONS)
    assert lab["text"] == clip.vocal.text


@pytest.mark.parametrize("size", [64, 128])
def test_any_size(size):
    c = make_clip("test", 1, seconds=0.4, size=size)
    assert c.frames.shape == (10, size, size, 3) and c.mouth_mask.shape == (10, size, size)


def test_deterministic_in_all_arguments(clip):
    again = make_clip("train", 7, seconds=2.0, seed=3)
    assert again.frames.tobytes() == clip.frames.tobytes()
    assert again.audio.tobytes() == clip.audio.tobytes()
    assert again.labels() == clip.labels()
    other = make_clip("train", 7, seconds=2.0, seed=4)
    assert other.audio.tobytes() != clip.audio.tobytes()
    assert other.frames.tobytes() != clip.frames.tobytes()


def test_identities_deterministic_and_train_test_disjoint():
    assert get_identity("train", 5) == get_identity("train", 5)
    def key(i):
        return tuple(v for k, v in dataclasses.asdict(i).items() if k not in ("split", "index"))
    train = {key(get_identity("train", i)) for i in range(SPLIT_IDENTITIES["train"])}
    test = {key(get_identity("test", i)) for i in range(SPLIT_IDENTITIES["test"])}
    assert len(train) == SPLIT_IDENTITIES["train"] and len(test) == SPLIT_IDENTITIES["test"]
    assert not train & test
    ids = [get_identity("test", i) for i in range(SPLIT_IDENTITIES["test"])]
    assert all(90 <= i.f0 <= 250 for i in ids)
    assert len({i.background for i in ids}) == len(ids)
    with pytest.raises(ValueError, match="split"):
        get_identity("validation", 0)


def test_mouth_follows_audio_at_offset_zero():
    """The sync property: mouth opening correlates with the audio envelope at offset 0, not +-5."""
    c0, c5 = [], []
    for i in range(4):
        c = make_clip("train", 100 + i, seconds=4.0, snr_db=30.0)
        rms = np.sqrt((c.audio.reshape(-1, SPF) ** 2).mean(1))
        m = c.vocal.mouth[:, 0]
        assert m.max() > 0.4 and m.min() < 0.02         # opens wide and closes
        c0.append(_corr(m, rms))
        c5.append(max(_corr(m[5:], rms[:-5]), _corr(m[:-5], rms[5:])))
    assert np.mean(c0) > 0.5 and np.mean(c0) > np.mean(c5) + 0.4


def test_audio_loud_in_speech_and_silent_in_pauses():
    c = make_clip("train", 11, seconds=4.0, snr_db=float("inf"))
    sr = TIMING.sample_rate
    speech = np.zeros(len(c.audio), bool)
    for _, s, e in c.vocal.phonemes:
        speech[max(int((s - 0.03) * sr), 0):int((e + 0.03) * sr)] = True
    assert np.sqrt(np.mean(c.audio[speech] ** 2)) > 0.02
    assert (~speech).any() and np.abs(c.audio[~speech]).max() < 1e-3
    noisy = make_clip("train", 11, seconds=4.0, snr_db=20.0)
    assert np.abs(noisy.audio[~speech]).max() > 1e-3       # background noise in the pauses


def test_emotion_changes_voice_energy():
    ident = get_identity("train", 0)
    loud = speak(ident, 75, np.random.default_rng(0), emotion=EMOTIONS.index("angry"))
    soft = speak(ident, 75, np.random.default_rng(0), emotion=EMOTIONS.index("sad"))
    assert np.sqrt(np.mean(loud.audio ** 2)) > 1.5 * np.sqrt(np.mean(soft.audio ** 2))


def test_counterfactual_render(clip):
    frames, face, mouth = render(clip.identity, clip.ambient, clip.vocal)
    assert frames.tobytes() == clip.frames.tobytes()
    assert np.array_equal(face, clip.face_mask) and np.array_equal(mouth, clip.mouth_mask)
    # another clip's speech changes only the lower face (the dubbing ground truth)
    y = make_clip("train", 8, seconds=2.0, seed=3)
    dubbed, _, _ = render(clip.identity, clip.ambient, y.vocal.mouth)
    diff = np.abs(dubbed.astype(int) - clip.frames.astype(int)).sum(-1) > 0
    assert diff.any() and not (diff & ~clip.mouth_mask).any()
    # another identity with the same motion is a different picture
    other, _, _ = render(get_identity("train", 1), clip.ambient, clip.vocal)
    assert np.abs(other.astype(int) - clip.frames.astype(int)).mean() > 10


def test_render_of_a_segment_equals_the_segment_of_the_render(clip, monkeypatch):
    monkeypatch.setattr(synth.synth_face, "CHUNK", 16)                  # several batches
    amb, s = clip.ambient, slice(13, 37)
    part = dataclasses.replace(amb, eye_open=amb.eye_open[s], pose=amb.pose[s], brow=amb.brow[s])
    frames, face, mouth = render(clip.identity, part, clip.vocal.mouth[s])
    assert frames.tobytes() == clip.frames[s].tobytes()
    assert np.array_equal(face, clip.face_mask[s]) and np.array_equal(mouth, clip.mouth_mask[s])


def test_blinks_close_the_eyes():
    T = 100
    amb = ambient(T, np.random.default_rng(1), emotion=0, actions=["blinks"])
    assert amb.actions[ACTIONS.index("blinks")] == 1 and amb.eye_open.min() < 0.2
    ident, voc = get_identity("test", 3), speak(get_identity("test", 3), T, np.random.default_rng(2))
    frames, face, mouth = render(ident, amb, voc)
    opened = dataclasses.replace(amb, eye_open=np.ones(T, np.float32))
    ref, _, _ = render(ident, opened, voc)
    diff = np.abs(frames.astype(int) - ref.astype(int)).sum(-1)          # (T, H, W)
    per_frame = diff.sum((1, 2))
    assert (per_frame[amb.eye_open == 1.0] == 0).all()
    shut = amb.eye_open < 0.3
    assert shut.any() and (per_frame[shut] > 500).all()
    t = int(np.argmin(amb.eye_open))
    rows = np.nonzero(face[t].any(1))[0]
    ys = np.nonzero(diff[t])[0]
    assert ys.max() < (rows[0] + rows[-1]) / 2                           # upper half of the face
    assert not (diff[t] > 0)[mouth[t]].any()


def test_actions_are_independent_multilabel_motion():
    T = 100
    nod = ambient(T, np.random.default_rng(5), actions=["nod"])
    still = ambient(T, np.random.default_rng(5), actions=[])
    assert np.array_equal(nod.eye_open, still.eye_open)                   # same draws otherwise
    assert np.abs(np.diff(nod.pose[:, 1])).mean() > 2 * np.abs(np.diff(still.pose[:, 1])).mean()
    assert np.array_equal(nod.pose[:, 0], still.pose[:, 0])
    with pytest.raises(ValueError):
        ambient(T, np.random.default_rng(5), actions=["wink"])


def test_masks_nonempty_and_mouth_in_lower_face(clip):
    face, mouth = clip.face_mask, clip.mouth_mask
    assert face.any((1, 2)).all() and mouth.any((1, 2)).all()
    assert not (mouth & ~face).any()
    for t in range(len(face)):
        rows = np.nonzero(face[t].any(1))[0]
        mid = (rows[0] + rows[-1]) / 2
        assert np.nonzero(mouth[t].any(1))[0].min() >= mid
    assert 0.2 < face.mean() < 0.7                                       # the face fills the frame


def test_write_clip_npz_round_trip(clip, tmp_path):
    paths = write_clip(clip, tmp_path, "c0")
    assert [p.name for p in paths] == ["c0.npz", "c0.json"]
    back = load_clip_files(tmp_path / "c0.npz")
    for k in ("frames", "audio", "face_mask", "mouth_mask"):
        assert np.array_equal(back[k], getattr(clip, k)) and back[k].dtype == getattr(clip, k).dtype
    assert back["labels"] == json.loads(json.dumps(clip.labels()))
    assert back["meta"]["split"] == "train" and back["meta"]["index"] == 7
    assert load_clip_files(tmp_path / "c0")["frames"].shape == clip.frames.shape


def test_write_clip_mp4(clip, tmp_path):
    av = pytest.importorskip("av")
    sf = pytest.importorskip("soundfile")
    paths = write_clip(clip, tmp_path, "c1", mp4=True)
    assert sorted(p.name for p in paths) == ["c1.json", "c1.mp4", "c1.wav"]
    with av.open(str(tmp_path / "c1.mp4")) as f:
        assert f.streams.audio and f.streams.audio[0].rate == TIMING.sample_rate
        v = f.streams.video[0]
        assert (v.width, v.height) == (96, 96) and v.codec_context.name in ("h264", "libx264")
        decoded = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(decoded) == len(clip.frames)
    assert np.abs(decoded[10].astype(int) - clip.frames[10].astype(int)).mean() < 6
    wav, sr = sf.read(str(tmp_path / "c1.wav"), dtype="float32")
    assert sr == TIMING.sample_rate and wav.shape == clip.audio.shape
    assert np.abs(wav - clip.audio).max() < 1e-3
    with pytest.raises(FileNotFoundError, match="mp4"):
        load_clip_files(tmp_path / "c1")


def test_write_dataset(tmp_path):
    index = write_dataset(tmp_path, clips=2, split="test", seconds=0.4, seed=1, size=64, progress=False)
    assert [c["name"] for c in index["clips"]] == ["test_000000", "test_000001"]
    assert json.loads((tmp_path / "index.json").read_text()) == index
    c = load_clip_files(tmp_path / "test_000001.npz")
    assert c["frames"].shape == (10, 64, 64, 3)
    assert c["frames"].tobytes() == make_clip("test", 1, seconds=0.4, seed=1, size=64).frames.tobytes()


def test_write_video_odd_size(tmp_path):
    av = pytest.importorskip("av")
    from synclipmae.media.write import write_video
    frames = np.random.default_rng(0).integers(0, 255, (5, 33, 47, 3), dtype=np.uint8)
    write_video(tmp_path / "odd.mp4", frames, TIMING.fps)
    with av.open(str(tmp_path / "odd.mp4")) as f:
        assert not f.streams.audio and (f.streams.video[0].width, f.streams.video[0].height) == (48, 34)
        assert sum(1 for _ in f.decode(video=0)) == 5
    with pytest.raises(ValueError):
        write_video(tmp_path / "bad.mp4", frames.astype(np.float32), TIMING.fps)


def test_bad_arguments():
    with pytest.raises(ValueError):
        make_clip("dev", 0)
    amb = ambient(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="frames"):
        render(get_identity("train", 0), amb, np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match="emotion"):
        make_clip("train", 0, seconds=0.2, emotion=len(EMOTIONS))
    assert synth.SPLIT_IDENTITIES["train"] > synth.SPLIT_IDENTITIES["test"] > 0
