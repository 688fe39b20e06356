"""CelebV-HQ (Zhu et al. 2022): 35,666 clips labelled with appearance, action and emotion attributes.

Layout: the dataset's `celebvhq_info.json` and the clips the download script made, `<clip_id>.mp4`,
anywhere under `ROOT` (or pass `info=` and `videos=`). The JSON:

    {"meta_info": {"appearance_mapping": [...], "action_mapping": ["blow", "chew", ...]},
     "clips": {"<clip_id>": {"ytb_id", "duration": {"start_sec", "end_sec"}, "bbox": {...},
               "attributes": {"appearance": [0/1 ...], "action": [0/1 ... 35 flags],
                              "emotion": {"sep_flag": false, "labels": "happy"}}, "version"}}}

With `sep_flag` true, `labels` is a list of segments [{"emotion", "start_sec", "end_sec"}].

task "emotion" (single label). A clip with several emotion segments gets, by default (`mixed="longest"`,
ours), the emotion with the most seconds in total (ties: the one that comes first); `mixed="skip"`
leaves such clips out (as the dataset's own split_dataset.py files them under "uncertain").
task "action" (multi-label): the names of the clip's action flags that are 1, from
meta_info["action_mapping"] (or "action_list"; without either: action_00, action_01, ...).

Defaults (ours): there is no official split; clips are split by YouTube video with `hash_split` on
`ytb_id` (20% test), so clips cut from one video never straddle the split. Clips of the JSON whose
video is not under the root (the download of many of them fails) are skipped and listed in
`Examples.skipped`; a clip entry that cannot be read is a DataError naming the JSON and the clip id.
"""
from __future__ import annotations

import json
from pathlib import Path

from synclipmae.data.datasets.common import TEST_FRACTION, DataError, Example, check_root, finish, hash_split

INFO = "celebvhq_info.json"
TASKS = ("emotion", "action")
MIXED = ("longest", "skip")


def _emotion(labels, mixed: str) -> str | None:
    if isinstance(labels, str):
        return labels
    if mixed == "skip":
        return None
    seconds: dict[str, float] = {}
    for seg in labels:  # insertion order = first occurrence, which max() keeps on ties
        seconds[seg["emotion"]] = seconds.get(seg["emotion"], 0.0) + float(seg["end_sec"]) - float(seg["start_sec"])
    return max(seconds, key=seconds.get) if seconds else None


def read_celebvhq(root, task: str = "emotion", info=None, videos=None, mixed: str = "longest",
                  test_fraction: float = TEST_FRACTION, classes=None):
    """CelebV-HQ clips under `root` -> `Examples` (emotion: a name; action: a list of names).
    info: the JSON (default ROOT/celebvhq_info.json); videos: the folder searched for <clip_id>.mp4
    (default ROOT, recursively). meta: clip, ytb_id, start_sec, end_sec, mixed_emotion."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if mixed not in MIXED:
        raise ValueError(f"mixed must be one of {MIXED}, got {mixed!r}")
    root = check_root(root, "CelebV-HQ")
    info = Path(info) if info is not None else root / INFO
    if not info.is_file():
        raise DataError(f"{info}: CelebV-HQ info file not found")
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
        clips = data["clips"]
        meta_info = data.get("meta_info") or {}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise DataError(f"{info}: not a CelebV-HQ info file: {type(err).__name__}: {err}") from None
    names = meta_info.get("action_mapping") or meta_info.get("action_list")
    files = {p.stem: p for p in sorted(Path(videos or root).rglob("*.mp4"))}
    out, skipped = [], []
    for clip_id, c in clips.items():
        try:
            ytb = str(c["ytb_id"])
            emo = c["attributes"]["emotion"]
            if task == "emotion":
                label = _emotion(emo["labels"], mixed)
                if label is None:
                    continue  # mixed="skip"
            else:
                flags = [int(x) for x in c["attributes"]["action"]]
                if names is not None and len(flags) != len(names):
                    raise ValueError(f"{len(flags)} action flags, meta_info names {len(names)} actions")
                action_names = names or [f"action_{i:02d}" for i in range(len(flags))]
                label = [n for n, on in zip(action_names, flags) if on]
            dur = c.get("duration") or {}
            meta = {"clip": clip_id, "ytb_id": ytb, "start_sec": dur.get("start_sec"), "end_sec": dur.get("end_sec"),
                    "mixed_emotion": bool(emo.get("sep_flag"))}
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{info}: clip {clip_id}: cannot read its {task} labels: "
                            f"{type(err).__name__}: {err}") from None
        if clip_id not in files:
            skipped.append({"path": str(Path(videos or root) / f"{clip_id}.mp4"), "error": "video not found"})
            continue
        out.append(Example(files[clip_id], label, hash_split(ytb, test_fraction), meta))
    return finish(out, skipped, root, f"CelebV-HQ ({task})", classes)
