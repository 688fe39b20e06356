"""What every label reader shares: the `Example` row, `DataError`, the skip list and the split rules.

Splits are named "train", "val" or "test" in every reader. A reader that scans a folder skips files
whose names it cannot parse (stray files, other modalities) and lists each in `Examples.skipped`;
a manifest is read strictly: every bad row is a `DataError`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")
TEST_FRACTION = 0.2  # default: share of files (or speakers) a hash split puts in "test"


class DataError(Exception):
    """Labels that cannot be used. The message is one line naming the file (and the CSV row)."""


@dataclass
class Example:
    path: Path                 # the video file
    label: str | list[str]     # a class name, or a list of names (multi-label; may be empty)
    split: str | None = None   # "train" | "val" | "test", or None (the probe then splits by file hash)
    meta: dict = field(default_factory=dict)  # reader-specific: actor, speaker, intensity, source + row, ...


class Examples(list):
    """A list of `Example`s plus `skipped`: [{"path", "error"}] for each file a folder reader passed over."""

    def __init__(self, items=(), skipped=None):
        super().__init__(items)
        self.skipped = list(skipped or [])


def where(ex: Example) -> str:
    """Where a row came from, for messages: "labels.csv: row 7" (manifests) or the file's path."""
    if "row" in ex.meta:
        return f"{ex.meta['source']}: row {ex.meta['row']}"
    return str(ex.path)


def hash_fraction(key: str) -> float:
    """A number in [0, 1) fixed by `key` alone (SHA-1), the same on every machine and Python."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64


def hash_split(key: str, test_fraction: float = TEST_FRACTION) -> str:
    """"test" for about `test_fraction` of keys, else "train": deterministic, and stable when other keys
    are added or removed (a file's split never depends on which other files exist)."""
    return "test" if hash_fraction(key) < test_fraction else "train"


def check_root(root, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (the {what} root)")
    return root


def check_classes(examples, classes) -> None:
    """DataError for the first row whose label (or one of whose labels) is not in `classes` (None: any)."""
    if classes is None:
        return
    known = set(classes)
    for ex in examples:
        labels = ex.label if isinstance(ex.label, list) else [ex.label]
        for lab in labels:
            if lab not in known:
                raise DataError(f"{where(ex)}: unknown class {lab!r} (classes: {', '.join(classes)})")


def finish(examples: list, skipped: list, root: Path, what: str, classes=None) -> Examples:
    """The reader's result: an error when nothing usable was found, else `Examples` (sorted by path)."""
    if not examples:
        why = f"; {len(skipped)} files skipped, first: {skipped[0]['path']}: {skipped[0]['error']}" if skipped else ""
        raise DataError(f"{root}: no {what} files found{why}")
    examples = sorted(examples, key=lambda e: str(e.path))
    check_classes(examples, classes)
    return Examples(examples, skipped)
