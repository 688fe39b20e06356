"""RAVDESS (Livingstone & Russo 2018): 24 actors, 8 emotions.

Layout: `ROOT/**/Actor_XX/MM-VV-EE-II-SS-RR-AA.mp4` (as the per-actor zip files unpack), where
MM modality (01 audio-video, 02 video only, 03 audio only), VV vocal channel (01 speech, 02 song),
EE emotion (below), II intensity (01 normal, 02 strong), SS statement (01, 02), RR repetition (01, 02),
AA actor (01-24; odd male, even female). Label: the emotion name.

Defaults (ours): only audio-video files (modality 01: the video-only files repeat the same
performances) of speech (vocal channel 01: all 8 emotions, 60 files per actor); split by actor, actors
1-18 train and 19-24 test (`test_actors`). Other .mp4 files whose names do not parse are skipped and
listed in `Examples.skipped`.
"""
from __future__ import annotations

import re

from synclipmae.data.datasets.common import Example, check_root, finish

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
TEST_ACTORS = tuple(range(19, 25))  # default: actors 19-24 are the test split, 1-18 train
NAME = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")


def read_ravdess(root, modalities=("01",), channels=("01",), test_actors=TEST_ACTORS, classes=None):
    """RAVDESS video files under `root` -> `Examples` (label = emotion name, split by actor).
    meta: actor, modality, channel ("speech" | "song"), intensity ("normal" | "strong"), statement, repetition."""
    root = check_root(root, "RAVDESS")
    test_actors = {int(a) for a in test_actors}
    out, skipped = [], []
    for p in sorted(root.rglob("*.mp4")):
        m = NAME.fullmatch(p.stem)
        if m is None or m.group(3) not in EMOTIONS or m.group(2) not in ("01", "02") or not 1 <= int(m.group(7)) <= 24:
            skipped.append({"path": str(p), "error": "not a RAVDESS name MM-VV-EE-II-SS-RR-AA"})
            continue
        mod, voc, emo, inten, stmt, rep, actor = m.groups()
        if mod not in modalities or voc not in channels:
            continue  # filtered out by choice, not an error
        meta = {"actor": int(actor), "modality": mod, "channel": "speech" if voc == "01" else "song",
                "intensity": "normal" if inten == "01" else "strong", "statement": int(stmt), "repetition": int(rep)}
        out.append(Example(p, EMOTIONS[emo], "test" if int(actor) in test_actors else "train", meta))
    return finish(out, skipped, root, "RAVDESS video", classes)
