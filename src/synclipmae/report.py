"""Reports: JSON for machines, Markdown with PNG plots for people."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(runs: dict, path: Path) -> Path:
    """runs: {name: metrics rows from metrics.jsonl}. Panels: total loss; reconstruction terms;
    L_con (and L_amb when on) against ln N (the plateau line); in-batch top-1 of the contrastive task."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    for name, rows in runs.items():
        if not rows:
            continue
        step = [r["step"] for r in rows]
        axes[0].plot(step, [r["loss"] for r in rows], label=name)
        if "rec_video" in rows[0]:
            axes[1].plot(step, [r["rec_video"] for r in rows], label=f"{name}: video-driven")
            axes[1].plot(step, [r["rec_audio"] for r in rows], "--", label=f"{name}: audio-driven")
        if "con" in rows[0]:
            line = axes[2].plot(step, [r["con"] for r in rows], label=f"{name}: L_con")[0]
            axes[2].axhline(rows[0]["ln_n"], color=line.get_color(), ls=":", label=f"ln N = {rows[0]['ln_n']:.2f}")
            axes[3].plot(step, [r["top1"] for r in rows], label=name)
        if "amb" in rows[0]:  # L_amb's chance is ln of the clip's frames left in (the demo: the same 14 as L_con)
            axes[2].plot(step, [r["amb"] for r in rows], "--", label=f"{name}: L_amb")
    for ax, title in zip(axes, ["total loss", "L_rec (masked patches, norm-pix MSE)", "L_con (L_amb dashed) vs ln N (plateau)",
                                "in-batch top-1 (audio <-> video frame)"]):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_reconstructions(images: dict, path: Path, n: int = 6) -> Path:
    """images: {"input", "masked", "pred_video", "pred_audio"}: float [N, H, W, 3] in [0, 1]."""
    plt = _plt()
    rows = ["input", "masked", "pred_video", "pred_audio"]
    titles = {"input": "input", "masked": "view A (masked)", "pred_video": "video-driven (c = z_voc)",
              "pred_audio": "audio-driven (c = a_t)"}
    n = min(n, images["input"].shape[0])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.7 * len(rows)))
    for i, row in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            ax.imshow(np.asarray(images[row][j]).clip(0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(titles[row], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_sync_curves(curves: dict, path: Path, max_offset: int) -> Path:
    """curves: {label: {"planted", "predicted", "distances"}} -> distance vs offset, one panel each."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.2), squeeze=False)
    ks = np.arange(-max_offset, max_offset + 1)
    for ax, (label, c) in zip(axes[0], curves.items()):
        ax.plot(ks, c["distances"], marker=".")
        ax.axvline(c["planted"], color="green", ls="--", label=f"planted {c['planted']:+d}")
        ax.axvline(c["predicted"], color="red", ls=":", label=f"predicted {c['predicted']:+d}")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("offset k (frames; > 0 = audio late)")
        ax.set_ylabel("d_k = mean(1 - cos)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")
    return path
