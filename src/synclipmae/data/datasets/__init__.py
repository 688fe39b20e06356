"""Label readers: each turns one dataset's own layout into `Example(path, label, split, meta)` rows.

    from synclipmae.data.datasets import read_dataset
    rows = read_dataset("ravdess", "/data/RAVDESS")          # list of Example, split by actor
    rows = read_dataset("manifest", "labels.csv")            # path,label[,split] with a header row

Each module's docstring gives the layout it reads and our default split. Bad labels raise `DataError`
with a one-line message naming the file (and, for manifests, the CSV row).
"""
from __future__ import annotations

from synclipmae.data.datasets.celebvhq import read_celebvhq
from synclipmae.data.datasets.common import (SPLITS, TEST_FRACTION, DataError, Example, Examples, hash_split,
                                             where)
from synclipmae.data.datasets.cremad import read_cremad
from synclipmae.data.datasets.grid import read_grid
from synclipmae.data.datasets.lrs3 import read_lrs3
from synclipmae.data.datasets.manifest import read_manifest
from synclipmae.data.datasets.mead import read_mead
from synclipmae.data.datasets.ravdess import read_ravdess

READERS = {"manifest": read_manifest, "ravdess": read_ravdess, "crema-d": read_cremad, "mead": read_mead,
           "celebv-hq": read_celebvhq, "lrs3": read_lrs3, "grid": read_grid}

__all__ = ["READERS", "SPLITS", "TEST_FRACTION", "DataError", "Example", "Examples", "hash_split", "read_dataset",
           "where"]


def read_dataset(kind: str, root, **kw) -> Examples:
    """Read dataset `kind` (a key of READERS) at `root` (a folder, or the CSV for "manifest"); keyword
    arguments go to the reader (e.g. classes=[...], task="action" for celebv-hq)."""
    if kind not in READERS:
        raise ValueError(f"unknown dataset {kind!r}; expected one of {', '.join(READERS)}")
    return READERS[kind](root, **kw)
