"""What a training run leaves beside its weights: metrics.csv, curves.png and the model card.

- metrics.csv: one row per epoch (training loss, learning rate, throughput, validation loss,
  mean and per-class pixel IoU and Kaggle polygon Jaccard, tuned thresholds).
- curves.png: training/validation loss and mean validation scores per epoch, and the per-class
  scores of the kept weights.
- the model card: `dstl.models.save_pretrained` writes README.md from the config (architecture,
  bands, normalisation, classes, thresholds, and the training metadata: data, command, metrics,
  limitations); `card_notes` adds the SYNTHETIC banner where it applies, the split and recipe in
  words, score tables and the curves.
All files are written atomically (`dstl.atomic`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dstl.atomic import atomic_path, write_text_atomic
from dstl.classes import CLASSES


def write_metrics_csv(path: str | Path, history: list[dict]) -> None:
    """One row per entry of `history` (dicts of scalars); columns in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    write_text_atomic(path, buf.getvalue())


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in history:
        v = row.get(key)
        if v is not None and v != "":
            xs.append(row["epoch"])
            ys.append(float(v))
    return xs, ys


def _curves(ax, history: list[dict], series, ylabel: str, title: str) -> None:
    """One panel of per-epoch lines: `series` is ((metrics key, legend label), ...)."""
    for key, label in series:
        xs, ys = _series(history, key)
        if xs:
            ax.plot(xs, ys, marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def plot_curves(path: str | Path, history: list[dict], final: dict | None, title: str = "") -> None:
    """Learning curves and per-class scores as one PNG.

    `final` holds the kept weights' per-class scores: {"iou": {k: v}, "jaccard": {k: v}} (class
    ids 1..10, None where undefined), or None before any validation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    losses = (("train_loss", "training loss"), ("val_loss", "validation BCE"))
    _curves(axes[0], history, losses, "loss", "Loss")
    scores = (("val_iou_mean", "pixel IoU (mean)"), ("val_jaccard_mean", "Kaggle Jaccard (mean)"))
    _curves(axes[1], history, scores, "score", "Validation (per-class thresholds tuned)")
    axes[1].set_ylim(0, 1)

    ax = axes[2]
    names = [c.name for c in CLASSES]
    ys = range(len(CLASSES))
    if final:
        iou = [final.get("iou", {}).get(c.id) for c in CLASSES]
        jac = [final.get("jaccard", {}).get(c.id) for c in CLASSES]
        ax.barh([y - 0.2 for y in ys], [v or 0 for v in iou], height=0.4, label="pixel IoU")
        ax.barh([y + 0.2 for y in ys], [v or 0 for v in jac], height=0.4, label="Kaggle Jaccard",
                color=[tuple(x / 255 for x in c.colour) for c in CLASSES], edgecolor="black", lw=0.5)
        for y, a, b in zip(ys, iou, jac, strict=True):
            if a is None and b is None:
                ax.text(0.01, y, "no pixels in validation", va="center", fontsize=8)
        ax.legend(loc="lower right")
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title("Per class (kept weights)")
    ax.grid(alpha=0.3, axis="x")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Model card

def _score(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def scores_table(scores: dict, thresholds: list[float] | None = None) -> str:
    """Markdown table of per-class scores: scores = {"iou": {k: v}, "jaccard": {k: v}}."""
    head = "| class | pixel IoU | Kaggle Jaccard |" + (" threshold |" if thresholds else "")
    sep = "|---|---:|---:|" + ("---:|" if thresholds else "")
    lines = [head, sep]
    for c in CLASSES:
        row = (f"| {c.id} {c.name} | {_score(scores.get('iou', {}).get(c.id))} | "
               f"{_score(scores.get('jaccard', {}).get(c.id))} |")
        if thresholds:
            row += f" {thresholds[c.id - 1]:.2f} |"
        lines.append(row)
    iou_m, jac_m = _score(scores.get("iou_mean")), _score(scores.get("jaccard_mean"))
    lines.append(f"| **mean** | **{iou_m}** | **{jac_m}** |" + (" |" if thresholds else ""))
    return "\n".join(lines)


def limitations(synthetic: bool, n_images: int, n_val: int, band_word: str) -> list[str]:
    """The model card's limitations (stored in the config's training metadata)."""
    first = ("Trained only on SYNTHETIC scenes: real imagery differs in texture, spectra and context, so "
             "expect poor results on real WorldView-3 data; train on the Kaggle download for that."
             if synthetic else
             f"Trained on {n_images} labelled scenes (for the DSTL download: one region, one sensor): "
             "expect lower scores on other places and sensors.")
    return [
        first,
        f"Per-class thresholds were tuned on {n_val} validation image(s); rare, small classes "
        "(vehicles, misc. structures) have few examples and noisy scores.",
        f"Input must be the {band_word} band list of config.json, aligned on the 3-band grid as dstl reads "
        "it; the model cannot be applied to other band sets.",
        "Scores are pixel IoU and the Kaggle polygon Jaccard on validation data, not on the competition's "
        "hidden test labels.",
    ]


def card_notes(*, synthetic: bool, train_ids: list[str], val_ids: list[str],
               recipe: str, config: dict, kept_epoch: int | None, epochs_run: int,
               thresholds: list[float], val_scores: dict | None, holdout: dict | None = None) -> str:
    """Markdown added to the model card of `dstl.models.save_pretrained`: a SYNTHETIC banner when
    it applies, the data and recipe in words, score tables and the learning curves."""
    out = []
    if synthetic:
        out.append("> **Trained on SYNTHETIC data.** These weights were trained on synthetic scenes written "
                   "by `python -m dstl synth` in the DSTL layout, not on real satellite imagery. They show "
                   "what the pipeline does; they are not meant for real scenes.\n\n")
    c = config
    init_line = ""
    if c.get("init_weights"):
        init_line = (f"\n- Initialised from the weights `{c['init_weights']}` (not at random): this run "
                     "continues their training (the command that made them is under init_weights in the "
                     "training details above)")
    out.append(f"""## Data split and recipe

- Training images ({len(train_ids)}): {", ".join(train_ids)}
- Validation images ({len(val_ids)}): {", ".join(val_ids)} (split by image, class-balanced)
- Recipe `{recipe}`: {epochs_run} epochs x {c["steps_per_epoch"]} steps, global batch {c["batch_size"]},
  {c["crop_size"]} x {c["crop_size"]} crops ({round(c["rare_prob"] * 100)}% centred on pixels of the rare
  classes {c["rare_classes"]}; the others from images drawn {"uniformly" if c.get("sample_by") == "image"
  else "by area"}), all 8 flips/rotations; loss `{c["loss"]}`; AdamW, lr {c["lr"]},
  {c["schedule"]} schedule with {c["warmup_frac"]:.0%} warm-up; gradient clipping {c["grad_clip"]};
  seed {c["seed"]}{init_line}
- Kept weights: epoch {kept_epoch} of {epochs_run} ({"best mean validation pixel IoU"
  if c["keep"] == "best" else "the last epoch"})

## Results
""")
    if val_scores:
        out.append("\nValidation images, whole scenes through `dstl.engine`'s tiled inference, masks at the "
                   "per-class thresholds tuned on these same images (so slightly optimistic):\n\n")
        out.append(scores_table(val_scores, thresholds) + "\n")
    if holdout:
        out.append(f"\nHeld-out images ({holdout['description']}; never used for training or for tuning "
                   "the thresholds), thresholds as saved:\n\n")
        out.append(scores_table(holdout["scores"]) + "\n")
    out.append("\nLearning curves and per-class scores: `curves.png`; every epoch: `metrics.csv`.\n\n"
               "![learning curves](curves.png)\n")
    return "".join(out)


def _compact(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "defaults"
