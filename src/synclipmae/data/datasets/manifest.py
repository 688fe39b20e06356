"""A CSV manifest: any labelled video files.

    path,label,split
    clips/a.mp4,happy,train
    /data/b.mp4,sad,test
    c.mp4,nod;smile,            <- multi-label: names separated by ";"; an empty split cell is allowed

The header row names the columns: `path` and `label` are required, `split` (train | val | test, or an
empty cell) is optional and any other column is kept in `Example.meta`. Relative paths are read from
the CSV's folder. A manifest is read strictly: a header without `path`/`label`, a row with the wrong
number of cells, an empty path or label, a file that does not exist, an unknown split or (with
`classes`) an unknown class is a `DataError` naming the CSV and its line number.
"""
from __future__ import annotations

import csv
from pathlib import Path

from synclipmae.data.datasets.common import SPLITS, DataError, Example, Examples, check_classes

MULTI_SEP = ";"


def read_manifest(path, classes=None, multilabel: bool | None = None, check_files: bool = True) -> Examples:
    """Rows of the CSV at `path` -> `Examples` in file order (rows without a split have split None).

    multilabel: labels are lists split at ";" (True), whole cells (False), or lists when any label cell
        contains ";" (None, the default).
    classes: the allowed class names; None accepts any.
    check_files: a row naming a file that does not exist is a DataError."""
    csv_path = Path(path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: manifest not found")
    base = csv_path.parent
    rows, header, header_line = [], None, 0
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for cells in reader:
                cells = [c.strip() for c in cells]
                if not any(cells):
                    continue  # blank line
                if header is None:
                    header, header_line = [c.lower() for c in cells], reader.line_num
                    continue
                rows.append((reader.line_num, cells))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{csv_path}: not a readable CSV file: {' '.join(str(err).split())}") from None
    if header is None:
        raise DataError(f"{csv_path}: empty manifest (expected a header row: path,label[,split])")
    missing = [c for c in ("path", "label") if c not in header]
    if missing or len(set(header)) != len(header) or "" in header:
        raise DataError(f"{csv_path}: row {header_line}: the header must name the columns path,label[,split] "
                        f"(each once); got {','.join(header)}")
    if not rows:
        raise DataError(f"{csv_path}: no rows below the header")
    if multilabel is None:
        multilabel = any(MULTI_SEP in cells[header.index("label")] for _, cells in rows if len(cells) == len(header))
    out = []
    for line, cells in rows:
        at = f"{csv_path}: row {line}"
        if len(cells) != len(header):
            raise DataError(f"{at}: {len(cells)} cells, the header has {len(header)} ({','.join(header)})")
        rec = dict(zip(header, cells))
        if not rec["path"]:
            raise DataError(f"{at}: empty path")
        p = Path(rec["path"]).expanduser()
        p = p if p.is_absolute() else base / p
        if check_files and not p.is_file():
            raise DataError(f"{at}: file not found: {rec['path']}")
        if multilabel:
            label = [x.strip() for x in rec["label"].split(MULTI_SEP) if x.strip()]
        else:
            label = rec["label"]
            if not label:
                raise DataError(f"{at}: empty label")
        split = rec.get("split", "").lower() or None
        if split is not None and split not in SPLITS:
            raise DataError(f"{at}: unknown split {rec['split']!r} (expected {', '.join(SPLITS)} or an empty cell)")
        meta = {k: v for k, v in rec.items() if k not in ("path", "label", "split")}
        out.append(Example(p, label, split, {**meta, "source": str(csv_path), "row": line, "key": rec["path"]}))
    examples = Examples(out)
    check_classes(examples, classes)
    return examples
