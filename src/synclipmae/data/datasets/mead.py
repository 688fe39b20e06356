"""MEAD (Wang et al. 2020): ~48 speakers, 8 emotions at 3 levels, 7 camera views.

Layout (the per-speaker video.tar unpacked): `ROOT/**/SPEAKER/video/VIEW/EMOTION/level_N/NNN.mp4`,
e.g. `M003/video/front/angry/level_1/001.mp4`; views front, down, top, left_30, left_60, right_30,
right_60; emotions angry, contempt, disgusted, fear, happy, neutral, sad, surprised. Label: the
emotion folder's name.

Defaults (ours): the `front` view only; split by speaker with `hash_split` (a speaker is in "test"
when the SHA-1 of its id falls in the first 20%: deterministic, and a speaker's split does not depend
on which other speakers you have); `test_speakers` lists them instead. Files elsewhere are skipped and
listed in `Examples.skipped`.
"""
from __future__ import annotations

import re

from synclipmae.data.datasets.common import TEST_FRACTION, Example, check_root, finish, hash_split

LEVEL = re.compile(r"level_(\d+)")
VIEWS = ("front",)  # default view filter


def read_mead(root, views=VIEWS, test_speakers=None, test_fraction: float = TEST_FRACTION, classes=None):
    """MEAD video files under `root` -> `Examples` (label = emotion, split by speaker).
    views: camera views to keep (None: all). meta: speaker, view, level, utterance."""
    root = check_root(root, "MEAD")
    chosen = None if test_speakers is None else set(test_speakers)
    out, skipped = [], []
    for p in sorted(root.rglob("*.mp4")):
        parts = p.relative_to(root).parts
        level = LEVEL.fullmatch(parts[-2]) if len(parts) >= 6 else None
        if level is None or parts[-5] != "video" or not p.stem.isdigit():
            skipped.append({"path": str(p), "error": "not a MEAD path SPEAKER/video/VIEW/EMOTION/level_N/NNN.mp4"})
            continue
        speaker, _, view, emotion = parts[-6:-2]
        if views is not None and view not in views:
            continue
        split = ("test" if speaker in chosen else "train") if chosen is not None else hash_split(speaker, test_fraction)
        out.append(Example(p, emotion, split, {"speaker": speaker, "view": view, "level": int(level.group(1)),
                                               "utterance": p.stem}))
    return finish(out, skipped, root, "MEAD video", classes)
