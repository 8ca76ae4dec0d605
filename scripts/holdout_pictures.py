"""Pictures of held-out images: a model's prediction beside the ground truth, one JPEG per image.

    python scripts/holdout_pictures.py --weights unet-20band --holdout data/rl_holdout --out docs/holdout

Each picture is `dstl.render.compare` (prediction | ground truth, class legend below) of one
labelled image of `--holdout`, segmented through the CLI's inference path (`load_model`,
`Predictor`, `segment_image`, default options, thresholds from the weights), each panel reduced to
at most `--side` pixels. The images are what the README and BENCHMARKS.md show; their pixels are
whatever the folder holds (for `synth --layouts` scenes: real label geometry, generated pixels).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

from dstl.atomic import write_bytes_atomic
from dstl.dataset import DstlDataset
from dstl.engine import Predictor
from dstl.models import load_model
from dstl.pipeline import segment_image
from dstl.render import compare, titled


def picture(dataset: DstlDataset, image_id: str, predictor: Predictor, side: int, label: str) -> bytes:
    """JPEG bytes of prediction vs truth for one image, titled with its id and `label`."""
    result = segment_image(dataset, image_id, predictor, metrics=False)
    image = compare(result.masks, dataset.masks(image_id), result.preview, errors=False, panel_side=side,
                    font_size=16)
    image = titled(image, f"{image_id}: {label}", font_size=16)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=72, optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="unet-20band", help="weights folder, bundled name or Hub id")
    p.add_argument("--holdout", type=Path, required=True, help="labelled DSTL folder")
    p.add_argument("--out", type=Path, required=True, help="folder for the JPEGs (<image_id>.jpg)")
    p.add_argument("--side", type=int, default=300, help="largest side of each panel in pixels")
    args = p.parse_args(argv)
    dataset = DstlDataset(args.holdout)
    loaded = load_model(args.weights)
    predictor = Predictor(loaded)
    args.out.mkdir(parents=True, exist_ok=True)
    for image_id in dataset.train_ids:
        data = picture(dataset, image_id, predictor, args.side, f"{args.weights} prediction vs truth")
        write_bytes_atomic(args.out / f"{image_id}.jpg", data)
        print(f"wrote {args.out / f'{image_id}.jpg'} ({len(data) / 1024:.0f} KiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
