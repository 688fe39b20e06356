"""CREMA-D (Cao et al. 2014): 91 actors (ids 1001-1091), 12 sentences, 6 emotions.

Layout: `ROOT/**/AAAA_SSS_EEE_LL.flv` (the dataset's VideoFlash folder) or the same names as .mp4:
AAAA actor id, SSS sentence code (DFA, IEO, ...), EEE emotion (ANG DIS FEA HAP NEU SAD), LL level
(LO, MD, HI, XX unspecified). Label: the emotion name (angry, disgust, fearful, happy, neutral, sad).
Where a clip exists as both .flv and .mp4, the .mp4 is used.

Default split (ours): by actor, actors whose id is a multiple of 5 (1005, 1010, ..., 1090: 18 of
91, 20%) are the test split (`test_actors` overrides). Names that do not parse are skipped and listed
in `Examples.skipped`.
"""
from __future__ import annotations

import re

from synclipmae.data.datasets.common import Example, check_root, finish

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}
EXTENSIONS = (".mp4", ".flv")  # preferred first
NAME = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})")


def default_test_actor(actor: int) -> bool:
    """Our default CREMA-D test actors: ids that are multiples of 5."""
    return actor % 5 == 0


def read_cremad(root, test_actors=None, classes=None):
    """CREMA-D video files under `root` -> `Examples` (label = emotion name, split by actor).
    test_actors: actor ids (ints) of the test split; None: `default_test_actor`.
    meta: actor, sentence, level."""
    root = check_root(root, "CREMA-D")
    is_test = default_test_actor if test_actors is None else {int(a) for a in test_actors}.__contains__
    found, skipped = {}, []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in EXTENSIONS or not p.is_file():
            continue
        m = NAME.fullmatch(p.stem)
        if m is None or m.group(3) not in EMOTIONS or m.group(4) not in LEVELS:
            skipped.append({"path": str(p), "error": "not a CREMA-D name AAAA_SSS_EEE_LL"})
            continue
        key = (p.parent, p.stem)
        if key not in found or EXTENSIONS.index(p.suffix.lower()) < EXTENSIONS.index(found[key][0].suffix.lower()):
            found[key] = (p, m)
    out = []
    for p, m in found.values():
        actor, sentence, emo, level = m.groups()
        out.append(Example(p, EMOTIONS[emo], "test" if is_test(int(actor)) else "train",
                           {"actor": int(actor), "sentence": sentence, "level": LEVELS[level]}))
    return finish(out, skipped, root, "CREMA-D video", classes)
