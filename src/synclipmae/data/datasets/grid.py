"""GRID (Cooke, Barker, Cunningham & Shao 2006): 34 speakers, 1000 six-word sentences each, with word
alignments. CC BY 4.0.

Layouts read (any mix): `ROOT/sN/NAME.{mp4,mpg}` with the alignment at `ROOT/align/NAME.align`,
`ROOT/alignments/sN/NAME.align` or beside the video (`ROOT/sN/NAME.align`). An `.align` file has one
word per line, `START END WORD`, in units of 1/25000 s (frame = START / 1000 at 25 fps); `sil` and
`sp` mark silence and are dropped. Label: the sentence, lower-case words joined by one space.

Split (our default): by file name, `hash_fraction("sN/NAME")`: below 0.1 (about 10% of each
speaker's sentences) "test", the rest "train". It depends on the name alone, so pretraining, the
lip-reading head and every benchmark hold out the same sentences. With `val_fraction` > 0 the next
slice, [0.1, 0.1 + val_fraction), is "val" (the lip-reading head's: `vsr --dataset grid` holds out
10% more to choose settings on; pretraining used those sentences, without their words). Videos without an alignment are skipped and listed.
"""
from __future__ import annotations

import re
from pathlib import Path

from synclipmae.data.datasets.common import DataError, Example, check_root, finish, hash_fraction

GRID_TEST_FRACTION = 0.1      # default: share of each speaker's sentences held out ("test")
GRID_VAL_FRACTION = 0.1       # default of `vsr --dataset grid`: the next share, "val" (0 elsewhere)
ALIGN_UNITS_PER_S = 25000.0   # GRID's alignment time unit
SILENCE = ("sil", "sp")
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".avi", ".mov")
SPEAKER = re.compile(r"s\d+")
# GRID's grammar: one word from each slot, in this order (51 words; the letter slot has no "w")
GRID_SLOTS = (
    ("bin", "lay", "place", "set"),                                             # command
    ("blue", "green", "red", "white"),                                          # colour
    ("at", "by", "in", "with"),                                                 # preposition
    tuple("abcdefghijklmnopqrstuvxyz"),                                         # letter
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),  # digit
    ("again", "now", "please", "soon"),                                         # adverb
)


def read_align(path) -> list[tuple[float, float, str]]:
    """One `.align` file -> [(start_s, end_s, word)] with silences dropped. DataError on a bad line."""
    words = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            start, end, word = float(parts[0]), float(parts[1]), parts[2]
        except (IndexError, ValueError):
            raise DataError(f"{path}: line {n} is not 'START END WORD': {line.strip()!r}") from None
        if word.lower() not in SILENCE:
            words.append((start / ALIGN_UNITS_PER_S, end / ALIGN_UNITS_PER_S, word.lower()))
    return words


def grid_split(speaker: str, name: str, test_fraction: float = GRID_TEST_FRACTION, val_fraction: float = 0.0) -> str:
    """"test", "val" or "train" for sentence `name` of `speaker` (see the module docstring)."""
    u = hash_fraction(f"{speaker}/{name}")
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def _speaker(path: Path) -> str:
    for part in reversed(path.parent.parts):
        if SPEAKER.fullmatch(part):
            return part
    return "s?"


def read_grid(root, test_fraction: float = GRID_TEST_FRACTION, classes=None, val_fraction: float = 0.0):
    """GRID videos under `root` -> `Examples` (label = the sentence; split by file name).
    meta: speaker, name, words [(start_s, end_s, word)]."""
    root = check_root(root, "GRID")
    aligns = {}
    for a in root.rglob("*.align"):
        aligns.setdefault((_speaker(a), a.stem), a)
        aligns.setdefault(("s?", a.stem), a)          # a flat align/ folder serves every speaker
    out, skipped = [], []
    for p in sorted(f for f in root.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES):
        speaker = _speaker(p)
        align = aligns.get((speaker, p.stem)) or aligns.get(("s?", p.stem))
        if align is None:
            skipped.append({"path": str(p), "error": "no .align file for it"})
            continue
        words = read_align(align)
        out.append(Example(p, " ".join(w for _, _, w in words), grid_split(speaker, p.stem, test_fraction, val_fraction),
                           {"speaker": speaker, "name": p.stem, "words": words}))
    return finish(out, skipped, root, "GRID video", classes)
