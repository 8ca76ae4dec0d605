"""Calibrate the generator's SWIR on the real A products: per-class signatures, fit, before / after.

Real: the 26 real A products of ../shared/real (values / 16383); per-class signatures of the 25
labelled ones under their real labels (`dstl.synthetic.swir`). Generated: the real-layout scene
of each labelled image (one class-rich window per image at full resolution, so that A pixels
are 7.5 m as in the real product; same labels), rendered with the library spectra, once per
endmember group with that group's A reflectance doubled, and with the fitted factors (measured,
not predicted). Prints the before / after table, writes JSON, a plot, and the factors to paste
into `dstl.synthetic.spectra.SWIR_FACTORS`.

    python bench/swir_calibration.py --data ../shared/real --window 1280 --cache /tmp/layers.pkl \
        --json out/swir_calibration.json --plot docs/swir_calibration.png
"""

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dstl.atomic import write_text_atomic  # noqa: E402
from dstl.classes import CLASS_NAMES  # noqa: E402
from dstl.labels import read_grid_sizes  # noqa: E402
from dstl.synthetic import spectra  # noqa: E402
from dstl.synthetic.real_layout import (  # noqa: E402
    class_rich_windows,
    list_real_ids,
    load_real_source,
    prepare_real_layout,
)
from dstl.synthetic.swir import class_fractions, fit_group_factors, signatures  # noqa: E402
from dstl.tiff import read_tiff  # noqa: E402

ROWS = list(CLASS_NAMES) + ["no class"]
MIN_PURE = 30   # pure A pixels a class needs, real and generated, to take part in the fit


def _sources(data: str, ids: list[str], cache: Path | None) -> dict:
    if cache is not None and cache.is_file():
        return pickle.loads(cache.read_bytes())
    grid = read_grid_sizes(Path(data) / "grid_sizes.csv")
    out = {i: load_real_source(data, i, grid) for i in ids}
    if cache is not None:
        cache.write_bytes(pickle.dumps(out))
    return out


def _generated(prepared: list, table: np.ndarray):
    pairs = []
    for p in prepared:
        img = p.render(table)
        a = img.products["A"].astype(np.float32) / 16383
        pairs.append((a, class_fractions(img.labels, img.xmax, img.ymin, a.shape[1:])))
    return signatures(pairs)


def _error(sig, real, w) -> float:
    ok = w > 0
    return float(np.nanmean(np.abs(sig.mean[ok] - real.mean[ok])))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/real")
    p.add_argument("--window", type=int, default=1280,
                   help="generated side: one class-rich window of this many full-size px per image, "
                        "at full resolution, so its A pixels are 7.5 m like the real ones "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=None,
                   help="pickle of the real label layers (speeds re-runs)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--report", type=Path, default=None, metavar="JSON",
                   help="only print the markdown tables of a previous run's JSON (and --plot it)")
    args = p.parse_args(argv)
    if args.report:
        doc = json.loads(args.report.read_text())
        print(markdown(doc))
        if args.plot:
            plot(doc, args.plot)
        return 0
    t0 = time.perf_counter()
    ids = list_real_ids(args.data)
    sources = _sources(args.data, ids, args.cache)
    # Real: all 26 A products for the whole-product statistics; the 25 labelled under their labels.
    real_pairs, every = [], []
    for path in sorted((Path(args.data) / "sixteen_band").glob("*_A.tif")):
        a = read_tiff(path).astype(np.float32) / 16383
        every.append(a.reshape(8, -1).T)
        rid = path.name[:-len("_A.tif")]
        if rid in sources:
            s = sources[rid]
            real_pairs.append((a, class_fractions(s.labels, s.xmax, s.ymin, a.shape[1:])))
    real = signatures(real_pairs)
    allv = np.concatenate(every)
    real_all = (allv.mean(axis=0), allv.std(axis=0), len(every))
    print(f"real: {len(every)} A products, {len(real_pairs)} labelled; "
          f"pure pixels per class {real.n.tolist()}", flush=True)
    prep_cache = args.cache.with_suffix(f".prepared-{args.seed}-w{args.window}.pkl") if args.cache else None
    if prep_cache is not None and prep_cache.is_file():
        prepared = pickle.loads(prep_cache.read_bytes())
    else:
        windows = {i: class_rich_windows(sources[i], args.window, 1)[0] for i in ids}
        prepared = [prepare_real_layout(sources[i], args.seed, window=windows[i]) for i in ids]
        for p_ in prepared:
            p_.layout.shadows()  # cast once, kept with the layout
        if prep_cache is not None:
            prep_cache.write_bytes(pickle.dumps(prepared))
    print(f"prepared {len(prepared)} windows of {args.window} px ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    before = _generated(prepared, spectra.REFLECTANCE)
    doubled = []
    for g in spectra.GROUPS:
        table = spectra.swir_scaled({g: (2.0,) * 8})
        doubled.append(_generated(prepared, table).mean)
        print(f"  sensitivity {g} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    weight = ((real.n >= MIN_PURE) & (before.n >= MIN_PURE)).astype(float)
    weight[10] *= 2.0  # the ground between objects is most of every scene
    base = np.nan_to_num(before.mean)
    dbl = np.nan_to_num(np.array(doubled))
    factors = fit_group_factors(base, dbl, np.nan_to_num(real.mean), weight)
    fitted = {g: tuple(round(float(f), 3) for f in factors[k]) for k, g in enumerate(spectra.GROUPS)}
    after = _generated(prepared, spectra.swir_scaled(fitted))
    err_before, err_after = _error(before, real, weight), _error(after, real, weight)
    print(f"class-signature error (mean |generated - real| over fitted classes and bands): "
          f"{err_before:.3f} -> {err_after:.3f}")
    print("SWIR_FACTORS = {")
    for g, f in fitted.items():
        print(f"    {g!r}: {f},")
    print("}")
    for name, sig in (("real", real), ("before", before), ("after", after)):
        print(name, "all-pixel mean", np.round(sig.all_mean, 3).tolist(),
              "std", np.round(sig.all_std, 3).tolist())
    print("real (26 products) mean", np.round(real_all[0], 3).tolist(),
          "std", np.round(real_all[1], 3).tolist())
    doc = {"ids": ids, "window": args.window, "seed": args.seed, "rows": ROWS, "weight": weight.tolist(),
           "factors": fitted, "error_before": err_before, "error_after": err_after,
           "real_26": {"mean": real_all[0].tolist(), "std": real_all[1].tolist()},
           "cpu_count": os.cpu_count(), "seconds": time.perf_counter() - t0}
    for name, sig in (("real", real), ("before", before), ("after", after)):
        doc[name] = {k: np.asarray(getattr(sig, k)).tolist() for k in
                     ("mean", "std", "n", "image_std", "all_mean", "all_std")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json, json.dumps(doc, indent=1) + "\n")
    if args.plot:
        plot(doc, args.plot)
    return 0


def markdown(doc: dict) -> str:
    """The before / after tables of docs/swir_calibration.md from a run's JSON."""
    rows = doc["rows"]
    real, before, after = (np.array(doc[k]["mean"], float) for k in ("real", "before", "after"))
    rs, bs, as_ = (np.array(doc[k]["std"], float) for k in ("real", "before", "after"))
    ri, bi, ai = (np.array(doc[k]["image_std"], float) for k in ("real", "before", "after"))
    out = ["| class | pure A px real / generated | fitted | mean abs error before | after | "
           "spread (sd) real | before | after | scene-to-scene sd real | before | after |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(x):
        return "-" if not np.isfinite(x) else f"{x:.3f}"

    for k, name in enumerate(rows):
        eb = np.nanmean(np.abs(before[k] - real[k])) if doc["real"]["n"][k] else np.nan
        ea = np.nanmean(np.abs(after[k] - real[k])) if doc["real"]["n"][k] else np.nan
        out.append(f"| {name} | {doc['real']['n'][k]} / {doc['after']['n'][k]} | "
                   f"{'yes' if doc['weight'][k] > 0 else 'no'} | {f(eb)} | {f(ea)} | "
                   f"{f(np.nanmean(rs[k]))} | {f(np.nanmean(bs[k]))} | {f(np.nanmean(as_[k]))} | "
                   f"{f(np.nanmean(ri[k]))} | {f(np.nanmean(bi[k]))} | {f(np.nanmean(ai[k]))} |")
    out += ["", "| A band | " + " | ".join(f"A{i}" for i in range(1, 9)) + " |",
            "|---|" + "---|" * 8]
    lines = (("real, 26 products: mean", ("real_26", "mean")), ("real, 26 products: sd", ("real_26", "std")),
             ("generated before: mean", ("before", "all_mean")), ("before: sd", ("before", "all_std")),
             ("generated after: mean", ("after", "all_mean")), ("after: sd", ("after", "all_std")))
    for name, key in lines:
        vals = doc[key[0]][key[1]]
        out.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    out += ["", "| class | " + " | ".join(f"A{i} real / after" for i in range(1, 9)) + " |",
            "|---|" + "---|" * 8]
    for k, name in enumerate(rows):
        if doc["real"]["n"][k] == 0:
            continue
        cells = " | ".join(f"{real[k, b]:.3f} / {f(after[k, b])}" for b in range(8))
        out.append(f"| {name} | {cells} |")
    out += ["", "factors (group: A1..A8): " + "; ".join(f"{g}: {', '.join(f'{x:.2f}' for x in v)}"
                                                       for g, v in doc["factors"].items())]
    return "\n".join(out)


def plot(doc: dict, path: Path) -> None:
    """Per-class A spectra: real (black), generated before (grey dashed) and after (red) the fit."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nm = [1210, 1570, 1660, 1730, 2165, 2205, 2260, 2330]
    shown = [k for k in range(len(doc["rows"])) if doc["real"]["n"][k] > 0]  # vehicles: no pure A pixel
    fig, axes = plt.subplots(3, 3, figsize=(9, 7), sharex=True, sharey=True)
    for j, ax in enumerate(axes.ravel()):
        if j >= len(shown):
            ax.axis("off")
            continue
        k = shown[j]
        for name, style in (("real", dict(color="k", lw=2)), ("before", dict(color="0.55", ls="--")),
                            ("after", dict(color="tab:red"))):
            m, s = np.array(doc[name]["mean"][k]), np.array(doc[name]["std"][k])
            ax.plot(nm, m, label=name, **style)
            if name == "real":
                ax.fill_between(nm, m - s, m + s, color="k", alpha=0.12, lw=0)
        fitted = doc["weight"][k] > 0
        ax.set_title(f"{doc['rows'][k]}{'' if fitted else ' (not fitted)'}\nreal n={doc['real']['n'][k]}",
                     fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.supxlabel("wavelength (nm)", fontsize=8)
    fig.supylabel("A value / 16383 (pure A pixels; band: real ± 1 sd)", fontsize=8)
    fig.suptitle(f"SWIR per class: real A products vs real-layout scenes, class-signature error "
                 f"{doc['error_before']:.3f} -> {doc['error_after']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


if __name__ == "__main__":
    sys.exit(main())
