"""Model card summaries for the model menu: architecture, bands, and what the weights were trained on.

The facts come from the weights' config.json (`ModelConfig`): the architecture and its arguments,
the band list, and the free-form `training` metadata written by the training script (data
description, whether the data was synthetic, validation and held-out scores). Weights trained on
synthetic scenes are flagged loudly wherever results are shown; weights without training
metadata are reported as untrained (random) weights.
"""

from collections.abc import Mapping

from dstl.demo.registry import ModelRegistry, describe_bands

__all__ = ["training_facts", "short_summary", "card_markdown"]

_ARCH_NAMES = {"unet": "UNet", "res50unet": "Res50UNet"}


def _find(d, key: str):
    """The first value stored under `key` anywhere in nested dicts (breadth-first), else None."""
    queue = [d]
    while queue:
        item = queue.pop(0)
        if isinstance(item, Mapping):
            if key in item and item[key] is not None:
                return item[key]
            queue.extend(v for v in item.values() if isinstance(v, Mapping))
    return None


def training_facts(config) -> dict:
    """What the config says about training: trained, synthetic, data, holdout/validation mean Jaccard."""
    training = config.training
    if not training:
        return {"trained": False, "synthetic": False, "data": None, "jaccard": None, "jaccard_on": None}
    text = " ".join(str(training.get(k, "")) for k in ("data_description", "data", "dataset", "recipe"))
    synthetic = bool(training.get("synthetic")) or "synthetic" in text.lower()
    data = training.get("data_description") or training.get("dataset") or training.get("data")
    jaccard, on = None, None
    for where, label in (("holdout", "held-out synthetic scenes" if synthetic else "held-out images"),
                         ("val_scores", "validation images"), ("validation", "validation images")):
        value = _find(training.get(where), "jaccard_mean")
        if isinstance(value, int | float):
            jaccard, on = float(value), label
            break
    return {"trained": True, "synthetic": synthetic, "data": data, "jaccard": jaccard, "jaccard_on": on}


def _arch(config) -> str:
    name = _ARCH_NAMES.get(config.architecture, config.architecture)
    width = config.model_args.get("base_width")
    return f"{name} (base width {width})" if width else name


def _parameters(loaded) -> int | None:
    try:
        return sum(p.numel() for p in loaded.module.parameters())
    except Exception:  # a module without parameters() (tests' stand-ins)
        return None


def short_summary(registry: ModelRegistry, key: str) -> str:
    """One line for result captions, e.g. "unet-20band: UNet, all 20 bands, trained on SYNTHETIC scenes"."""
    config = registry.load(key).config
    facts = training_facts(config)
    trained = ("trained on SYNTHETIC scenes" if facts["synthetic"] else "trained on real data") \
        if facts["trained"] else "UNTRAINED (random weights)"
    return f"{key}: {_ARCH_NAMES.get(config.architecture, config.architecture)}, " \
           f"{describe_bands(config.bands)}, {trained}"


def card_markdown(registry: ModelRegistry, key: str) -> str:
    """The model card summary shown under the model menu (Markdown)."""
    source = registry.source(key)
    loaded = registry.load(key)
    config = loaded.config
    facts = training_facts(config)
    n = _parameters(loaded)
    params = f" · {n / 1e6:.2f} M parameters" if n else ""
    where = {"bundled": "bundled with the app", "local": "local folder",
             "hub": "Hugging Face Hub"}[source.kind]
    lines = [f"**{key}** — {_arch(config)}{params} · {where}",
             f"**Input:** {describe_bands(config.bands)} · tiles of {config.tile_size} px"]
    if not facts["trained"]:
        lines.append("⚠️ **Untrained weights** (randomly initialised): the predictions are meaningless.")
    else:
        if facts["synthetic"]:
            lines.append("⚠️ **Trained on SYNTHETIC scenes**, not real satellite imagery: results on real "
                         "data will be poor.")
        if facts["data"]:
            data = str(facts["data"]).strip().splitlines()[0]
            lines.append(f"**Trained on:** {data if len(data) <= 200 else data[:200] + '…'}")
        if facts["jaccard"] is not None:
            lines.append(f"**Mean Kaggle Jaccard:** {facts['jaccard']:.3f} on {facts['jaccard_on']}")
    return "  \n".join(lines)
