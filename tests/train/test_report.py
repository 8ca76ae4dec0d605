"""dstl/train/report.py: metrics.csv, curves.png, model card notes."""

import csv

from PIL import Image

from dstl.train.config import TrainConfig
from dstl.train.report import card_notes, limitations, plot_curves, scores_table, write_metrics_csv

HISTORY = [
    {"epoch": 1, "train_loss": 1.5, "lr": 1e-3},
    {"epoch": 2, "train_loss": 1.2, "lr": 5e-4, "val_loss": 0.6, "val_iou_mean": 0.3,
     "val_jaccard_mean": 0.25, "iou_1": 0.4, "iou_2": None},
]
SCORES = {"iou": {1: 0.4, 2: None}, "jaccard": {1: 0.35, 2: None}, "iou_mean": 0.4, "jaccard_mean": 0.35}


def test_metrics_csv_has_one_row_per_epoch_and_all_columns(tmp_path):
    path = tmp_path / "metrics.csv"
    write_metrics_csv(path, HISTORY)
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["val_iou_mean"] == "" and float(rows[1]["val_iou_mean"]) == 0.3
    assert rows[1]["iou_2"] == ""


def test_curves_png_is_written(tmp_path):
    path = tmp_path / "curves.png"
    plot_curves(path, HISTORY, SCORES, title="test")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 800
    plot_curves(path, HISTORY[:1], None)  # before any validation
    assert not list(tmp_path.glob(".*"))  # written atomically: no temporary left


def _notes(synthetic):
    return card_notes(synthetic=synthetic, train_ids=["a", "b"], val_ids=["c"], recipe="r",
                      config=TrainConfig().to_dict(), kept_epoch=2, epochs_run=3, thresholds=[0.5] * 10,
                      val_scores=SCORES, holdout={"description": "2 images", "scores": SCORES})


def test_card_says_synthetic_plainly_only_when_it_is():
    synthetic = _notes(True)
    assert "Trained on SYNTHETIC data" in synthetic
    assert "SYNTHETIC" not in _notes(False)
    assert "Held-out images (2 images" in synthetic and "| 1 Buildings | 0.400 | 0.350 | 0.50 |" in synthetic
    assert "SYNTHETIC" in limitations(True, 5, 1, "20-band")[0]


def test_scores_table_marks_undefined_classes():
    table = scores_table(SCORES)
    assert "| 2 Misc. manmade structures | n/a | n/a |" in table
    assert "**0.400**" in table
