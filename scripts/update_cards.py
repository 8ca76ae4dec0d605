"""Regenerate the model cards (README.md) of weights folders from their config.json.

    python scripts/update_cards.py                      # every bundled weights folder (weights/*)
    python scripts/update_cards.py --check              # exit 1, naming the stale cards, if any
    python scripts/update_cards.py runs/x --base-model owner/stage1 --heldout-name "..."

(`dstl` must be importable: installed, or ``PYTHONPATH=.`` from the repository root.)

The card is `dstl.models.card.model_card` of the folder's config (Hub front matter: licence,
datasets, base_model, metrics and a model-index with the held-out results) around the card's own
notes (`card_notes`: the tables and text that training and people added), so the figures a card
quotes stay those recorded in config.json. Only README.md is written; config.json and
model.safetensors are read, never changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dstl.atomic import write_text_atomic
from dstl.errors import DstlError
from dstl.models import BUNDLED_DIR, list_bundled, load_model
from dstl.models.card import card_notes, model_card
from dstl.models.config import CARD_FILE
from dstl.models.hub import base_model_of, parse_repo_id

#: The held-out set the bundled weights' recorded metrics come from (train/train.py --holdout).
BUNDLED_HELDOUT = "8 held-out synthetic scenes (python -m dstl synth, seed 1000, 1024 x 1024 px)"


def card_for(folder: Path, *, base_model: str | None = None, heldout_name: str | None = None) -> str:
    """The regenerated README.md text of the weights folder `folder`."""
    loaded = load_model(folder)  # strict: a card is only written for weights that load
    old = (folder / CARD_FILE).read_text(encoding="utf-8") if (folder / CARD_FILE).is_file() else ""
    return model_card(loaded.config, sum(p.numel() for p in loaded.module.parameters()), card_notes(old),
                      base_model=base_model or base_model_of(loaded.config), heldout_name=heldout_name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", type=Path, help="weights folders (default: the bundled ones)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card is stale")
    p.add_argument("--base-model", help="Hub repo id the weights were trained from (card base_model)")
    p.add_argument("--heldout-name", help="what the held-out metrics were measured on (model-index)")
    args = p.parse_args(argv)
    if args.base_model is not None and (parse_repo_id(args.base_model) or (None, "x"))[1] is not None:
        print(f"error: --base-model {args.base_model!r}: expected a Hub repo id owner/name (no @revision)",
              file=sys.stderr)
        return 2
    bundled = not args.folders
    folders = [BUNDLED_DIR / n for n in list_bundled()] if bundled else args.folders
    heldout = args.heldout_name or (BUNDLED_HELDOUT if bundled else None)
    stale = []
    try:
        for folder in folders:
            text = card_for(folder, base_model=args.base_model, heldout_name=heldout)
            path = folder / CARD_FILE
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            stale.append(str(path))
            if not args.check:
                write_text_atomic(path, text)
    except DstlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(f"stale model cards (run python scripts/update_cards.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    for s in stale:
        print(f"wrote {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
