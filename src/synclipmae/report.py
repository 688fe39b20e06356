"""Reports: JSON for machines, Markdown with PNG plots for people."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from synclipmae.timing import TIMING


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only; matplotlib is imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 90) -> Path:
    """Lay `fig` out, write it to `path` and close it. Returns the path."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)


def plot_losses(runs: dict, path: Path) -> Path:
    """runs: {name: metrics rows from metrics.jsonl}. Panels: total loss; reconstruction terms;
    L_con (and L_amb when on) against ln N (the plateau line); in-batch top-1 of the contrastive task."""
    plt = pyplot()
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
    return save_figure(fig, path)


def plot_reconstructions(images: dict, path: Path, n: int = 6) -> Path:
    """images: {"input", "masked", "pred_video", "pred_audio"}: float [N, H, W, 3] in [0, 1]."""
    plt = pyplot()
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
    return save_figure(fig, path)


def plot_sync_curves(curves: dict, path: Path, max_offset: int) -> Path:
    """curves: {label: {"planted", "predicted", "distances"}} -> distance vs offset, one panel each."""
    plt = pyplot()
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
    return save_figure(fig, path)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def read_records(path) -> list[dict]:
    """The JSON-lines records in `path` (none when it does not exist), for a batch that resumes: a last
    line cut short by a killed run is removed from the file, so records appended next stay whole."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) < len(data):
        with open(path, "r+b") as f:
            f.truncate(len(complete))
    records = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line that is not a record (hand-edited, half-written long ago) is not a done input
    return records


def write_json(data: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")
    return path


def plot_record(record: dict, png, title: str | None = None) -> Path:
    """Draw a `sync_file` record: per track, the distance curve d_k against the offset k (minimum
    marked) and a strip of the local offsets of each second. Returns the path."""
    plt = pyplot()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    tracks = record.get("tracks") or []
    rows = max(1, len(tracks))
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.8 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6]})
    fig.suptitle(title or Path(record["input"]).name, fontsize=10)
    if not tracks:
        axes[0, 0].text(0.5, 0.5, record.get("error") or "no track", ha="center", va="center", wrap=True)
        axes[0, 0].set_axis_off()
        axes[0, 1].set_axis_off()
    for row, tr in zip(axes, tracks):
        d = np.asarray(tr["distances"])
        K = (len(d) - 1) // 2
        ks = np.arange(-K, K + 1)
        ax = row[0]
        ax.plot(ks, d, marker=".", lw=1)
        ax.axvline(0, color="0.7", lw=0.8)
        ax.plot([tr["offset_frames"]], [tr["min_distance"]], "o", color="C3")
        ax.set_xlabel("offset k (frames; > 0: audio late)")
        ax.set_ylabel("distance d_k")
        ax.set_title(f"track {tr['track']}: offset {tr['offset_frames']:+d} ({tr['offset_ms']:+.0f} ms), "
                     f"conf {tr['confidence']:.3f}, min {tr['min_distance']:.3f}", fontsize=9)
        ax = row[1]
        local = tr.get("local_offsets") or []
        if local:
            t = np.array([x["start_frame"] for x in local]) / TIMING.fps
            o = np.array([x["offset_frames"] for x in local])
            c = np.array([x["confidence"] for x in local])
            sc = ax.scatter(t + 0.5, o, c=c, cmap="viridis", s=40, vmin=0)
            fig.colorbar(sc, ax=ax, label="confidence", pad=0.01)
            ax.axhline(tr["offset_frames"], color="C3", lw=0.8, ls="--")
            ax.set_ylim(-K - 1, K + 1)
        else:
            ax.text(0.5, 0.5, "track shorter than one 1 s window", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("local offset (frames)")
        ax.set_xlim(tr["start_frame"] / TIMING.fps, tr["end_frame"] / TIMING.fps)
    return save_figure(fig, png, dpi=100)


def plot_real_sync(result: dict, png) -> Path:
    """`bench real-sync`: whole-clip accuracy per set, one bar per model, with the ROC AUC of the zero
    margin (in sync against moved >= 5 frames) written above each bar."""
    plt = pyplot()
    sets = list(result["sets"])
    models = list(next(iter(result["sets"].values()))["models"]) if sets else []
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(sets) * max(1, len(models))), 3.6))
    width = 0.8 / max(1, len(models))
    for j, m in enumerate(models):
        xs = np.arange(len(sets)) + (j - (len(models) - 1) / 2) * width
        bars = ax.bar(xs, [result["sets"][s]["models"][m]["accuracy"] or 0.0 for s in sets], width, label=m)
        for b, s in zip(bars, sets):
            auc = result["sets"][s]["models"][m]["auc_zero_margin"]
            if auc is not None:
                ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.01, f"{auc:.2f}", ha="center",
                        va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(sets)), [f"{s}\n({result['sets'][s]['clips']} clips)" for s in sets])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy within ±1 frame (whole clip)")
    ax.set_title("planted offsets on real clips (numbers: ROC AUC of the zero margin, in sync vs moved >= 5)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, png, dpi=120)
