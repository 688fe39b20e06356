"""LRS3-TED (Afouras et al. 2018): sentences with transcripts, for visual speech recognition.

Layout: `ROOT/{pretrain,trainval,test}/<speaker>/<utt>.mp4`, each with `<utt>.txt` whose first line is
`Text:  THE WORDS` (pretrain transcripts go on with word timings). Label: the text, lower case.
Split: "test" for test/, "train" for pretrain/ and trainval/ (meta["subset"] keeps the folder name).
A video without a readable transcript is skipped and listed in `Examples.skipped`.
"""
from __future__ import annotations

from synclipmae.data.datasets.common import Example, check_root, finish

SUBSETS = ("pretrain", "trainval", "test")


def read_lrs3(root, subsets=SUBSETS, classes=None):
    """LRS3 utterances under `root` -> `Examples` (label = lower-case text). meta: subset, speaker, utterance."""
    root = check_root(root, "LRS3")
    out, skipped = [], []
    for subset in subsets:
        for p in sorted((root / subset).glob("*/*.mp4")):
            txt = p.with_suffix(".txt")
            try:
                first = txt.read_text(encoding="utf-8", errors="replace").splitlines()[0]
            except (OSError, IndexError):
                skipped.append({"path": str(p), "error": f"no transcript {txt.name}"})
                continue
            if not first.startswith("Text:"):
                skipped.append({"path": str(p), "error": f"{txt.name}: first line is not 'Text:  ...'"})
                continue
            text = " ".join(first[len("Text:"):].split()).lower()
            out.append(Example(p, text, "test" if subset == "test" else "train",
                               {"subset": subset, "speaker": p.parent.name, "utterance": p.stem}))
    return finish(out, skipped, root, "LRS3 (" + ", ".join(subsets) + ")", classes)
