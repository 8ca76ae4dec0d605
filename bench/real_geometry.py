"""Real label geometry end to end: the layer map proven on cls-stats.json, the round trip
labels -> masks -> polygons -> Kaggle metric for all 25 real training images through the CLI,
and the time and peak memory of each command.

Usage:
    python bench/real_geometry.py [--data ../shared/real] [--work /out/real_geometry]
                                  [--parts layers cli thin] [--ids ID ...] [--json OUT.json]

Data: the real files of ../shared/real (README there): the GeoJSON label layers of the 25
training images (`train_geojson_v3/`), the real grid_sizes.csv, and `cls-stats.json` (polygon
count, area fraction and perimeter per image and class, computed from the real train_wkt_v4.csv
by the 3rd-place team). The real 3-band images are not available: each image's 3-band size is
estimated from its grid size (`dstl.real_sizes`; exact for 6010_1_2 and 6120_2_2).

Parts:
- layers: every (image, class) cell of cls-stats.json against the GeoJSON labels mapped by
  `dstl.geojson_labels.LAYER_CLASSES` (count equal; area fraction within 0.2 %; perimeter within
  1 %), every miss listed.
- cli: per image `python -m dstl rasterize` and `python -m dstl polygons` as a user runs them, then
  `labels --to-wkt` (the GeoJSON as a train_wkt_v4.csv), and `evaluate` of that file against
  itself and of the round trip, both with the GeoJSON folder and with the WKT file as the truth.
  Each command runs in its own process: wall time, CPU time (user + system) and peak RSS
  (ru_maxrss from wait4) per run.
- evaluate: only the four `evaluate` runs of the cli part, on its files in --work (median of
  --rounds runs each).
- thin: why misc. structures (class 2) stay below 0.9: the share of their area in parts thinner
  than 3 px, and the Jaccard of the masks' exact pixel squares (what any vectoriser starts from).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dstl.classes import CLASS_IDS  # noqa: E402


def run_measured(*args) -> dict:
    """Run `python -m dstl ARGS` as its own process: wall s, CPU s (user + system) and peak RSS MB
    of that process alone (the child is reaped with os.wait4), and its stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dstl", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"python -m dstl {' '.join(map(str, args))} failed (exit {proc.returncode})")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "stdout": out.decode()}


# ----------------------------------------------------------------------------- layers


def check_layers(data: Path, ids: list[str]) -> dict:
    import shapely

    from dstl.dataset import DstlDataset

    ds = DstlDataset(data, labels_from="geojson")
    stats = json.loads((data / "cls-stats.json").read_text())
    cells, misses = 0, []
    counts = dict.fromkeys(("number", "area", "perimeter", "all"), 0)
    for image_id in ids:
        labels = ds.labels(image_id)
        t = ds.transform(image_id)
        h, w = ds.image_size(image_id)
        for k in CLASS_IDS:
            want = stats[image_id][str(k - 1)]
            geom = labels[k]
            px = t.to_pixels(geom) if not geom.is_empty else geom
            got = {"number": len(geom.geoms), "area": px.area / (h * w),
                   "perimeter": float(shapely.length(px)) if not geom.is_empty else 0.0}
            ok = {"number": got["number"] == want["number"],
                  "area": abs(got["area"] - want["area"]) <= 0.002 * max(want["area"], 1e-12)
                  or (want["area"] == 0 and got["area"] == 0),
                  "perimeter": abs(got["perimeter"] - want["perimeter"])
                  <= max(0.01 * want["perimeter"], 1.0)  # cls-stats rounds perimeters to whole px
                  or (want["perimeter"] == 0 and got["perimeter"] == 0)}
            ok["all"] = all(ok.values())
            cells += 1
            for key, good in ok.items():
                counts[key] += good
            if not ok["all"]:
                misses.append({"image": image_id, "class": k, "geojson": got,
                               "cls_stats": {key: want[key] for key in ("number", "area", "perimeter")}})
    return {"cells": cells, "match": counts, "misses": misses}


# ----------------------------------------------------------------------------- cli round trip


def cli_round_trip(data: Path, ids: list[str], work: Path) -> dict:
    from dstl.dataset import DstlDataset

    ds = DstlDataset(data, labels_from="geojson")
    (work / "masks").mkdir(parents=True, exist_ok=True)
    (work / "rows").mkdir(exist_ok=True)
    per_image = []
    for image_id in ids:
        n_polys = sum(len(g.geoms) for g in ds.labels(image_id).values())
        masks = work / "masks" / f"{image_id}.tif"
        rows = work / "rows" / f"{image_id}.csv"
        r = run_measured("rasterize", data, image_id, "--out", masks)
        p = run_measured("polygons", masks, "--data", data, "--image-id", image_id, "--out", rows)
        per_image.append({"image": image_id, "polygons": n_polys, "size": ds.image_size(image_id),
                          "rasterize": {k: v for k, v in r.items() if k != "stdout"},
                          "polygons_cmd": {k: v for k, v in p.items() if k != "stdout"}})
        print(f"{image_id}: {n_polys} polygons, rasterize {r['cpu_s']} s CPU / {r['peak_rss_mb']} MB, "
              f"polygons {p['cpu_s']} s CPU / {p['peak_rss_mb']} MB", flush=True)
    round_trip = work / "roundtrip.csv"
    with open(round_trip, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("ImageId", "ClassType", "MultipolygonWKT"))
        for image_id in ids:
            with open(work / "rows" / f"{image_id}.csv", newline="") as f:
                reader = csv.reader(f)
                next(reader)
                writer.writerows(reader)
    truth = work / "train_wkt_v4.csv"
    to_wkt = run_measured("labels", data, "--to-wkt", truth)
    wkt_data = work / "wkt-data"  # the same labels as a WKT file: grid_sizes.csv + train_wkt_v4.csv
    wkt_data.mkdir(exist_ok=True)
    for name, target in (("grid_sizes.csv", data / "grid_sizes.csv"), ("train_wkt_v4.csv", truth)):
        link = wkt_data / name
        link.unlink(missing_ok=True)
        link.symlink_to(target.resolve())
    evals = evaluate_all(data, work)
    # One image's labels from the WKT file: must not pay for the other 24 images' geometry.
    small = min(per_image, key=lambda r: r["polygons"])["image"]
    one = run_measured("rasterize", wkt_data, small, "--out", work / "masks" / f"{small}_wkt.tif")
    return {"per_image": per_image, "labels_to_wkt": {k: v for k, v in to_wkt.items() if k != "stdout"},
            "evaluate": evals,
            "rasterize_one_from_wkt": {"image": small, **{k: v for k, v in one.items() if k != "stdout"}}}


def evaluate_all(data: Path, work: Path, rounds: int = 1) -> dict:
    """`evaluate --json` of the truth against itself and of the round trip, with the GeoJSON folder
    and with the WKT file as the truth (files of a previous `cli` part in `work`); the median of
    `rounds` runs of each."""
    truth, round_trip, wkt_data = work / "train_wkt_v4.csv", work / "roundtrip.csv", work / "wkt-data"
    evals = {}
    for name, folder, sub in (("geojson_truth_vs_itself", data, truth),
                              ("wkt_truth_vs_itself", wkt_data, truth),
                              ("round_trip_vs_geojson", data, round_trip),
                              ("round_trip_vs_wkt", wkt_data, round_trip)):
        runs = sorted((run_measured("evaluate", folder, sub, "--json") for _ in range(rounds)),
                      key=lambda e: e["cpu_s"])
        e = runs[len(runs) // 2]
        evals[name] = {**{k: v for k, v in e.items() if k != "stdout"}, "scores": json.loads(e["stdout"]),
                       "rounds": rounds}
        print(f"evaluate {name}: {e['wall_s']} s wall, {e['cpu_s']} s CPU, {e['peak_rss_mb']} MB, "
              f"mean {evals[name]['scores']['mean']:.4f}", flush=True)
    return evals


# ----------------------------------------------------------------------------- thin structures


def thin_structures(data: Path, ids: list[str]) -> dict:
    """Class 2 (and 10): area share in parts under 3 px wide; Jaccard of exact pixel squares."""
    import numpy as np
    import shapely

    from dstl.dataset import DstlDataset
    from dstl.metrics import jaccard_sums
    from dstl.polygonize import _pixel_squares

    ds = DstlDataset(data, labels_from="geojson", mask_cache=0)
    out = {}
    for k in (2, 10):
        area = thin = 0.0
        inter = union = 0.0
        lost_centres = 0.0
        for image_id in ids:
            geom = ds.labels(image_id)[k]
            if geom.is_empty:
                continue
            t = ds.transform(image_id)
            px = t.to_pixels(geom)
            # Parts thinner than 3 px: what an opening with a 1.5 px radius removes.
            opened = shapely.buffer(shapely.buffer(px, -1.5, quad_segs=4), 1.5, quad_segs=4)
            area += px.area
            thin += px.area - px.intersection(opened).area
            mask = ds.masks(image_id)[k - 1]
            squares = shapely.union_all(_pixel_squares(np.ascontiguousarray(mask), 0, 0)) \
                if mask.any() else shapely.MultiPolygon()
            # Polygons that hold no pixel centre are gone before any vectoriser sees them.
            hit = np.asarray([bool(mask[min(int(p.representative_point().y), mask.shape[0] - 1),
                                        min(int(p.representative_point().x), mask.shape[1] - 1)])
                              for p in px.geoms])
            lost_centres += sum(p.area for p, h in zip(px.geoms, hit, strict=True) if not h)
            i, u = jaccard_sums({k: t.to_grid(squares)}, {k: geom})
            inter += i[k - 1]
            union += u[k - 1]
        out[str(k)] = {"area_px": round(area), "thin_share": round(thin / area, 4),
                       "pixel_squares_jaccard": round(inter / union, 4),
                       "area_share_of_polygons_without_pixel_at_their_centre": round(lost_centres / area, 4)}
        print(f"class {k}: {out[str(k)]}", flush=True)
    return out


# ----------------------------------------------------------------------------- report


def markdown(result: dict) -> str:
    lines = []
    if "cli" in result:
        cli = result["cli"]
        for name in ("round_trip_vs_geojson", "round_trip_vs_wkt"):
            s = cli["evaluate"][name]["scores"]
            row = " | ".join("-" if s["per_class"][str(k)] is None else f"{s['per_class'][str(k)]:.3f}"
                             for k in CLASS_IDS)
            lines.append(f"| {name} | {row} | **{s['mean']:.3f}** |")
        lines.append("")
        lines.append("| command | wall s | CPU s | peak RSS MB |")
        lines.append("|---|---|---|---|")
        for key in ("rasterize", "polygons_cmd"):
            runs = [r[key] for r in cli["per_image"]]
            lines.append(f"| {key} x {len(runs)} (sum; max RSS) | {sum(r['wall_s'] for r in runs):.1f} | "
                         f"{sum(r['cpu_s'] for r in runs):.1f} | {max(r['peak_rss_mb'] for r in runs)} |")
        for name, e in cli["evaluate"].items():
            lines.append(f"| evaluate {name} | {e['wall_s']} | {e['cpu_s']} | {e['peak_rss_mb']} |")
        t = cli["labels_to_wkt"]
        lines.append(f"| labels --to-wkt | {t['wall_s']} | {t['cpu_s']} | {t['peak_rss_mb']} |")
        o = cli["rasterize_one_from_wkt"]
        lines.append(f"| rasterize {o['image']} from the WKT file | {o['wall_s']} | {o['cpu_s']} | "
                     f"{o['peak_rss_mb']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "real")
    parser.add_argument("--work", type=Path, default=Path("/out/real_geometry"))
    parser.add_argument("--parts", nargs="+", choices=("layers", "cli", "evaluate", "thin"),
                        default=["layers", "cli", "thin"])
    parser.add_argument("--ids", nargs="+", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each evaluate (evaluate part)")
    args = parser.parse_args()
    ids = args.ids or sorted(p.name for p in (args.data / "train_geojson_v3").iterdir() if p.is_dir())
    result: dict = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                                "load_at_start": os.getloadavg()}, "ids": ids}
    if "layers" in args.parts:
        result["layers"] = check_layers(args.data, ids)
        m = result["layers"]["match"]
        print(f"layers: {m} of {result['layers']['cells']} cells", flush=True)
        for miss in result["layers"]["misses"]:
            print(f"  miss {miss}", flush=True)
    if "cli" in args.parts:
        result["cli"] = cli_round_trip(args.data, ids, args.work)
    if "evaluate" in args.parts and "cli" not in args.parts:  # re-score a previous cli part's files
        result["evaluate"] = evaluate_all(args.data, args.work, args.rounds)
    if "thin" in args.parts:
        result["thin"] = thin_structures(args.data, ids)
    result["machine"]["load_at_end"] = os.getloadavg()
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
