"""Pictures of scenes and masks: RGB preview, false colour, class overlay, legend, mask panels.

Everything here is numpy + Pillow (matplotlib only for `scene_figure`) and returns uint8 (H, W, 3)
RGB images, so the app, the CLI and the exports share one set of pictures.

Speed matters because the app re-renders a full scene (~3350 x 3400) whenever a class is toggled
or the opacity changes, without rerunning the model. The expensive steps are therefore split:

- once per scene: `rgb_preview` (percentile stretch to uint8);
- once per set of masks: `pack_masks` folds the ten (H, W) masks into one uint16 bit field
  (bit k-1 set <=> class k present), optionally reduced to a display size;
- per view: `OverlayRenderer.render` maps the bit field through a 1024-entry table to the
  top-most shown class and blends with a (class, value) -> value table per channel, row block by
  row block so the working set stays in cache. See bench/bench_render.py for measured times.

Overlap rule: classes overlap (a car on a road is both). Each pixel shows the colour of the
top-most shown class in `DRAW_ORDER` (area classes first, vehicles last so they stay visible),
alpha-blended over the preview with the chosen opacity; the colours of the classes under it are
not mixed in, so the picture never shows a colour that belongs to no class.

Display size: functions taking `max_side` shrink by an integer factor f (the smallest with
ceil(max(H, W) / f) <= max_side). Images are block-averaged; masks are block-*any*, so a
vehicle a few pixels across still shows up in a reduced picture.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dstl.atomic import atomic_path
from dstl.bands import RGB_BANDS
from dstl.classes import CLASSES, NUM_CLASSES, class_by_id
from dstl.errors import BandMismatchError
from dstl.scene import Scene

#: Order in which classes are painted; later classes cover earlier ones where they overlap.
#: Large area classes first (crops, trees, water), then linear and built classes, vehicles last.
DRAW_ORDER: tuple[int, ...] = (6, 5, 8, 7, 4, 3, 1, 2, 9, 10)

#: Bands of the false-colour composite: NIR1 (M7, 832 nm) -> red, red (M5, 660 nm) -> green,
#: green (M3, 545 nm) -> blue. This is the classic colour-infrared (CIR) view: vegetation is
#: bright red, water near black, bare soil and buildings cyan/grey. All three come from the
#: same 8-band M product (~1.24 m/px, resampled to the 3-band grid), so they are co-registered
#: with each other; the picture is softer than the pansharpened RGB.
FALSE_COLOUR_BANDS: tuple[str, str, str] = ("M7", "M5", "M3")

#: Colours of the error map in `compare` (Okabe-Ito palette: distinguishable with colour-blindness).
ERROR_COLOURS: dict[str, tuple[int, int, int]] = {
    "true positive": (0, 158, 115),
    "false positive": (213, 94, 0),
    "false negative": (0, 114, 178),
    "wrong class": (240, 228, 66),
}

_ROWS_PER_BLOCK = 32  # rows per block in the blending loop: ~0.3 MB of indices, stays in cache
_MAX_STRETCH_SAMPLES = 1 << 19  # pixels per band used to find the percentiles
_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)


# --------------------------------------------------------------------------------------------
# sizes and reduction


def display_factor(height: int, width: int, max_side: int | None) -> int:
    """The integer shrink factor that brings the longer side to at most `max_side` (1 if None)."""
    if max_side is None:
        return 1
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    return max(1, math.ceil(max(height, width) / max_side))


def _pad_to_multiple(a: np.ndarray, f: int, axes: tuple[int, int], mode: str) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    for ax in axes:
        pad[ax] = (0, (-a.shape[ax]) % f)
    if all(p == (0, 0) for p in pad):
        return a
    return np.pad(a, pad, mode=mode)


def _block_reduce(a: np.ndarray, f: int, dtype, op) -> np.ndarray:
    """Combine each f x f block of `a` (axes 0 and 1; sides multiples of f) with the in-place
    ufunc `op` (np.add, np.bitwise_or) into a new `dtype` array.

    Rows first (f strided slices of whole, contiguous rows), then columns: a few passes over
    memory, several times faster than a reshape + reduction over two non-adjacent axes.
    """
    h, w = a.shape[0] // f, a.shape[1] // f
    rows = np.zeros((h, a.shape[1], *a.shape[2:]), dtype)
    for i in range(f):
        op(rows, a[i::f], out=rows)
    out = np.zeros((h, w, *a.shape[2:]), dtype)
    for j in range(f):
        op(out, rows[:, j::f], out=out)
    return out


def reduce_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Shrink a (H, W) or (H, W, C) image by block averaging over factor x factor blocks.

    The output is ceil(H / factor) x ceil(W / factor); edge blocks are padded by repeating the
    last row/column. The dtype is kept (uint8 results are rounded, half up).
    """
    if factor == 1:
        return image
    a = _pad_to_multiple(image, factor, (0, 1), "edge")
    n = factor * factor
    if image.dtype == np.uint8 and n <= 257:  # exact integer sums fit in uint16
        acc16 = _block_reduce(a, factor, np.uint16, np.add)
        acc16 += n // 2
        acc16 //= n
        return acc16.astype(np.uint8)
    acc = _block_reduce(a, factor, np.float32, np.add)
    acc *= np.float32(1.0 / n)
    if np.issubdtype(image.dtype, np.integer):
        return np.rint(acc).astype(image.dtype)
    return acc.astype(image.dtype, copy=False)


def reduce_masks(masks: np.ndarray, factor: int) -> np.ndarray:
    """Shrink (K, H, W) masks with block-any: a reduced pixel is set if any pixel of its block is.

    Keeps tiny objects (vehicles) visible at display size. Output dtype is uint8 (0/1).
    """
    masks = np.asarray(masks)
    m = masks.view(np.uint8) if masks.dtype == bool else (masks != 0).view(np.uint8)
    if factor == 1:
        return m
    a = _pad_to_multiple(m, factor, (1, 2), "constant")
    return np.stack([_block_reduce(plane, factor, np.uint8, np.bitwise_or) for plane in a])


def _reduce_packed(packed: np.ndarray, factor: int) -> np.ndarray:
    """Block-OR of a packed bit field: per class, block-any."""
    if factor == 1:
        return packed
    a = _pad_to_multiple(packed, factor, (0, 1), "constant")
    return _block_reduce(a, factor, packed.dtype, np.bitwise_or)


# --------------------------------------------------------------------------------------------
# stretch: RGB preview and false colour


def stretch_limits(plane: np.ndarray, percentiles: tuple[float, float] = (2, 98)) -> tuple[float, float]:
    """Low/high values of one band at the given percentiles, on a regular subsample.

    At most ~0.5 M pixels are looked at (a strided grid), so this costs milliseconds on a full
    scene; non-finite values are ignored. Falls back to the dtype's full range (0..1 for floats)
    when the band is constant or empty.
    """
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    h, w = plane.shape
    step = max(1, math.ceil(math.sqrt(h * w / _MAX_STRETCH_SAMPLES)))
    sample = np.asarray(plane[::step, ::step], dtype=np.float32).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size:
        lo, hi = (float(v) for v in np.percentile(sample, [lo_p, hi_p]))
        if hi > lo:
            return lo, hi
    if np.issubdtype(plane.dtype, np.integer):
        return 0.0, float(np.iinfo(plane.dtype).max)
    return 0.0, 1.0


def _stretch_plane(plane: np.ndarray, lo: float, hi: float, gamma: float, out: np.ndarray) -> None:
    """Write round(255 * clip((plane - lo) / (hi - lo), 0, 1) ** (1 / gamma)) into `out` (uint8)."""
    levels = 255 if gamma == 1.0 else 4095  # finer steps before a gamma curve avoid banding
    scale = levels / (hi - lo)
    lut = None
    if gamma != 1.0:
        lut = np.rint(255 * (np.arange(4096) / 4095) ** (1 / gamma)).astype(np.uint8)
    for r0 in range(0, plane.shape[0], 256):  # row blocks: the float temporaries stay small
        block = np.asarray(plane[r0:r0 + 256], dtype=np.float32)
        t = (block - np.float32(lo)) * np.float32(scale)
        np.nan_to_num(t, copy=False, nan=0.0)
        np.clip(t, 0, levels, out=t)
        t += 0.5
        if lut is None:
            out[r0:r0 + 256] = t.astype(np.uint8)
        else:
            out[r0:r0 + 256] = lut[t.astype(np.intp)]


def stretch(planes: Sequence[np.ndarray], percentiles: tuple[float, float] = (2, 98),
            gamma: float = 1.0, max_side: int | None = None) -> np.ndarray:
    """Stretch three (H, W) bands into an 8-bit (H', W', 3) picture, each band on its own.

    Each band is mapped linearly from its `percentiles` (low -> 0, high -> 255, clipped), then
    through `gamma` (> 1 brightens mid-tones: out = t ** (1 / gamma)). With `max_side`, bands are
    block-averaged to display size first (see module doc).
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    planes = [np.asarray(p) for p in planes]
    h, w = planes[0].shape
    f = display_factor(h, w, max_side)
    if f > 1:
        planes = [reduce_image(p.astype(np.float32, copy=False), f) for p in planes]
    out = np.empty((*planes[0].shape, len(planes)), np.uint8)
    channel = np.empty(planes[0].shape, np.uint8)
    for i, p in enumerate(planes):
        lo, hi = stretch_limits(p, percentiles)
        _stretch_plane(p, lo, hi, float(gamma), channel)
        out[..., i] = channel
    return out


def rgb_preview(scene: Scene | np.ndarray, percentiles: tuple[float, float] = (2, 98),
                gamma: float = 1.0, max_side: int | None = None) -> np.ndarray:
    """An 8-bit RGB picture of a scene (bands R, G, B) or of an (H, W, 3) array.

    Robust per-band percentile stretch (see `stretch`): a few saturated or dead pixels do not
    change the picture. Returns uint8 (H, W, 3), or smaller with `max_side`. Compute it once per
    scene and reuse it for every overlay.
    """
    if isinstance(scene, Scene):
        missing = [b for b in RGB_BANDS if b not in scene.bands]
        if missing:
            raise BandMismatchError(f"scene {scene.image_id} has no {'/'.join(missing)} band(s) "
                                    "for an RGB preview")
        planes = [scene.data[scene.bands.index(b)] for b in RGB_BANDS]
    else:
        arr = np.asarray(scene)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) array, got shape {arr.shape}")
        planes = [arr[..., i] for i in range(3)]
    return stretch(planes, percentiles, gamma, max_side)


def false_colour(scene: Scene, bands: tuple[str, str, str] = FALSE_COLOUR_BANDS,
                 percentiles: tuple[float, float] = (2, 98), gamma: float = 1.0,
                 max_side: int | None = None) -> np.ndarray:
    """A colour-infrared picture (default M7/M5/M3 -> R/G/B: vegetation red), uint8 (H, W, 3).

    Raises BandMismatchError for a scene without those bands (an RGB-only image has no
    near-infrared, so there is no false colour to show).
    """
    missing = [b for b in bands if b not in scene.bands]
    if missing:
        have = ", ".join(scene.bands)
        raise BandMismatchError(
            f"false colour needs bands {', '.join(bands)} (near-infrared, red, green from the M "
            f"product); scene {scene.image_id} has only {have}")
    planes = [scene.data[scene.bands.index(b)] for b in bands]
    return stretch(planes, percentiles, gamma, max_side)


# --------------------------------------------------------------------------------------------
# overlay


def _check_masks(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != NUM_CLASSES:
        raise ValueError(f"masks must be ({NUM_CLASSES}, H, W), got shape {masks.shape}")
    return masks


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """Fold (10, H, W) masks (bool, or any integer type: nonzero = set) into a uint16 (H, W)
    bit field: bit k-1 is set where class k is present."""
    masks = _check_masks(masks)
    h, w = masks.shape[1:]
    # uint8 arithmetic on the two bytes separately is twice as fast as uint16 arithmetic
    low = np.zeros((h, w), np.uint8)
    high = np.zeros((h, w), np.uint8)
    tmp = np.empty((h, w), np.uint8)
    for i in range(NUM_CLASSES):
        m = masks[i]
        m = m.view(np.uint8) if m.dtype == bool else (m != 0).view(np.uint8)
        target = low if i < 8 else high
        np.left_shift(m, i % 8, out=tmp)
        np.bitwise_or(target, tmp, out=target)
    packed = high.astype(np.uint16)
    packed <<= 8
    packed |= low
    return packed


def _class_list(classes: Iterable[int] | None) -> list[int]:
    if classes is None:
        return [c.id for c in CLASSES]
    ids = []
    for c in classes:
        class_by_id(int(c))  # ValueError for ids outside 1..10
        ids.append(int(c))
    return ids


def _top_class_lut(classes: Iterable[int] | None, order: Sequence[int] = DRAW_ORDER) -> np.ndarray:
    """uint8 table over the 1024 bit patterns: the top-most shown class id, or 0 for none."""
    shown = set(_class_list(classes))
    values = np.arange(1 << NUM_CLASSES)
    lut = np.zeros(1 << NUM_CLASSES, np.uint8)
    for k in order:
        if k in shown:
            lut[(values >> (k - 1)) & 1 == 1] = k
    return lut


def _palette() -> np.ndarray:
    """(11, 3) uint8: row 0 unused (no class), row k the colour of class k."""
    pal = np.zeros((NUM_CLASSES + 1, 3), np.uint8)
    for c in CLASSES:
        pal[c.id] = c.colour
    return pal


class OverlayRenderer:
    """Re-renders the class overlay of one scene quickly for any set of classes and opacity.

    Build it once per (preview, masks) pair; `render` then costs a few table look-ups per pixel.

    Args:
        preview: uint8 (H, W, 3) picture, e.g. from `rgb_preview`.
        masks: (10, H, W) masks (bool/uint8, nonzero = set), or a uint16 (H, W) array from
            `pack_masks`.
        max_side: render at display size (see module doc); None keeps full resolution.
    """

    def __init__(self, preview: np.ndarray, masks: np.ndarray, max_side: int | None = None):
        preview = np.asarray(preview)
        if preview.dtype != np.uint8 or preview.ndim != 3 or preview.shape[2] != 3:
            raise ValueError(f"preview must be uint8 (H, W, 3), got {preview.dtype} {preview.shape}")
        masks = np.asarray(masks)
        packed = masks if (masks.ndim == 2 and masks.dtype == np.uint16) else pack_masks(masks)
        if packed.shape != preview.shape[:2]:
            raise ValueError(f"masks are {packed.shape[0]}x{packed.shape[1]} but the preview is "
                             f"{preview.shape[0]}x{preview.shape[1]}")
        f = display_factor(*packed.shape, max_side)
        self.factor = f
        self.preview = np.ascontiguousarray(reduce_image(preview, f))
        self.packed = np.ascontiguousarray(_reduce_packed(packed, f))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the rendered pictures."""
        return self.packed.shape

    def top_class(self, classes: Iterable[int] | None = None) -> np.ndarray:
        """uint8 (H, W): the class id each pixel shows (0 = none) for the shown `classes`."""
        return _top_class_lut(classes)[self.packed]

    def render(self, classes: Iterable[int] | None = None, opacity: float = 0.5,
               outline: bool = False) -> np.ndarray:
        """The preview with the shown `classes` (default: all) blended in at `opacity` (0..1).

        With `outline`, each shown region also gets a fully opaque 1-pixel border in its colour
        (opacity 0 with outline gives outlines only). Opacity 0 without outline returns the
        preview unchanged. Returns a new uint8 (H, W, 3) array.
        """
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must be in 0..1, got {opacity}")
        top_lut = _top_class_lut(classes).astype(np.intp) * 256  # top class -> row of the table
        pal = _palette().astype(np.float32)
        values = np.arange(256, dtype=np.float32)
        # table[c, k * 256 + v]: channel c of a pixel with preview value v under class k
        table = np.empty((3, NUM_CLASSES + 1, 256), np.uint8)
        for c in range(3):
            blended = values * (1 - opacity) + pal[:, c:c + 1] * opacity
            table[c] = np.rint(blended).astype(np.uint8)
            table[c, 0] = np.arange(256)  # no class: the preview as it is
        table = table.reshape(3, -1)
        out = np.empty_like(self.preview)
        h = self.shape[0]
        for r0 in range(0, h, _ROWS_PER_BLOCK):
            r1 = min(h, r0 + _ROWS_PER_BLOCK)
            base = top_lut[self.packed[r0:r1]]  # intp: no index conversion in the takes below
            idx = np.empty_like(base)
            for c in range(3):
                np.bitwise_or(base, self.preview[r0:r1, :, c], out=idx)
                out[r0:r1, :, c] = np.take(table[c], idx)
        if outline:
            top = self.top_class(classes)
            edge = _edges(top)
            out[edge] = _palette()[top[edge]]
        return out


def _edges(top: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels of a class region whose 4-neighbourhood holds a different value."""
    diff = np.zeros(top.shape, bool)
    v = top[1:] != top[:-1]
    diff[1:] |= v
    diff[:-1] |= v
    hz = top[:, 1:] != top[:, :-1]
    diff[:, 1:] |= hz
    diff[:, :-1] |= hz
    diff &= top > 0
    return diff


def overlay(preview: np.ndarray, masks: np.ndarray, classes: Iterable[int] | None = None,
            opacity: float = 0.5, outline: bool = False, max_side: int | None = None) -> np.ndarray:
    """One-off overlay: `OverlayRenderer(preview, masks, max_side).render(classes, opacity, outline)`.

    For repeated renders of the same scene (toggling classes, moving an opacity slider) keep an
    `OverlayRenderer` instead; it does the packing once.
    """
    return OverlayRenderer(preview, masks, max_side).render(classes, opacity, outline)


def class_coverage(masks: np.ndarray) -> dict[int, float]:
    """Fraction of pixels (0..1) covered by each class of (10, H, W) masks, keyed by class id."""
    masks = _check_masks(masks)
    n = masks.shape[1] * masks.shape[2]
    return {c.id: (np.count_nonzero(masks[c.index]) / n if n else 0.0) for c in CLASSES}


# --------------------------------------------------------------------------------------------
# text, legend, panels


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_width(font, text: str) -> int:
    return int(math.ceil(font.getlength(text)))


def format_coverage(frac: float) -> str:
    """A coverage fraction (0..1) as a short percentage: "0%", "<0.01%", "3.14%", "12.3%"."""
    pct = 100 * frac
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    return f"{pct:.2f}%" if pct < 10 else f"{pct:.1f}%"


def legend(classes: Iterable[int] | None = None, coverage: dict[int, float] | None = None,
           width: int | None = None, font_size: int = 16,
           background: tuple[int, int, int] = _BACKGROUND) -> np.ndarray:
    """A legend strip: a colour swatch and "k  Name" per class (plus "  12.3%" with `coverage`,
    a {class id: fraction} dict; classes it says are absent are greyed out).

    Entries are laid out in as many columns as fit in `width` pixels (one column when None), in
    class-id order. Returns uint8 (h, w, 3); w == `width` when given.
    """
    ids = _class_list(classes)
    font = _font(font_size)
    pad = max(4, font_size // 2)
    sw = font_size  # swatch side
    labels = []
    for k in ids:
        text = f"{k}  {class_by_id(k).name}"
        if coverage is not None and k in coverage:
            text += f"  {format_coverage(coverage[k])}"
        labels.append(text)
    entry_w = max([_text_width(font, t) for t in labels], default=0) + sw + 3 * pad
    row_h = font_size + pad
    if width is None:
        cols = 1
        width = entry_w + pad
    else:
        cols = max(1, min(len(ids), (width - pad) // entry_w))
        cols = math.ceil(len(ids) / math.ceil(len(ids) / cols)) if ids else 1  # balance the rows
    rows = max(1, math.ceil(len(ids) / cols))
    height = rows * row_h + pad
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    x0 = max(pad, (width - cols * entry_w) // 2)  # centre the block of entries
    for i, (k, text) in enumerate(zip(ids, labels, strict=True)):
        r, c = divmod(i, cols)  # fill row by row: reads left to right like text
        x = x0 + c * entry_w
        y = pad + r * row_h
        draw.rectangle([x, y, x + sw - 1, y + sw - 1], fill=class_by_id(k).colour, outline=(60, 60, 60))
        absent = coverage is not None and coverage.get(k, 1) == 0  # greyed out: not in the image
        draw.text((x + sw + pad, y + sw // 2), text, font=font, fill=(140, 140, 140) if absent else _TEXT,
                  anchor="lm")
    if not ids:
        draw.text((pad, pad + sw // 2), "no classes shown", font=font, fill=_TEXT, anchor="lm")
    return np.asarray(img)


def _stack_vertical(images: Sequence[np.ndarray], background=_BACKGROUND) -> np.ndarray:
    width = max(i.shape[1] for i in images)
    parts = []
    for im in images:
        if im.shape[1] < width:
            pad = np.empty((im.shape[0], width - im.shape[1], 3), np.uint8)
            pad[:] = background
            im = np.concatenate([im, pad], axis=1)
        parts.append(im)
    return np.concatenate(parts, axis=0)


def _title_bar(text: str, width: int, font_size: int, swatch: tuple[int, int, int] | None = None,
               background=_BACKGROUND) -> np.ndarray:
    font = _font(font_size)
    pad = max(3, font_size // 3)
    h = font_size + 2 * pad
    img = Image.new("RGB", (width, h), background)
    draw = ImageDraw.Draw(img)
    x = pad
    if swatch is not None:
        draw.rectangle([x, pad, x + font_size - 1, pad + font_size - 1], fill=swatch, outline=(60, 60, 60))
        x += font_size + pad
    # shorten the text with an ellipsis until it fits
    while text and _text_width(font, text) > width - x - pad:
        text = text[:-2] + "…" if len(text) > 2 else ""
    draw.text((x, h // 2), text, font=font, fill=_TEXT, anchor="lm")
    return np.asarray(img)


def titled(image: np.ndarray, title: str, font_size: int = 18) -> np.ndarray:
    """`image` with a one-line title bar above it."""
    return np.concatenate([_title_bar(title, image.shape[1], font_size), image], axis=0)


def with_legend(image: np.ndarray, classes: Iterable[int] | None = None,
                coverage: dict[int, float] | None = None, font_size: int | None = None) -> np.ndarray:
    """`image` with a legend strip of its width below it (font scaled to the image width)."""
    if font_size is None:
        font_size = int(np.clip(image.shape[1] / 70, 12, 64))
    strip = legend(classes, coverage, width=image.shape[1], font_size=font_size)
    return _stack_vertical([image, strip])


def _grid(panels: Sequence[np.ndarray], columns: int, gap: int, background=_BACKGROUND) -> np.ndarray:
    ph = max(p.shape[0] for p in panels)
    pw = max(p.shape[1] for p in panels)
    rows = math.ceil(len(panels) / columns)
    cols = min(columns, len(panels))
    out = np.empty((rows * ph + (rows + 1) * gap, cols * pw + (cols + 1) * gap, 3), np.uint8)
    out[:] = background
    for i, p in enumerate(panels):
        r, c = divmod(i, cols)
        y = gap + r * (ph + gap)
        x = gap + c * (pw + gap)
        out[y:y + p.shape[0], x:x + p.shape[1]] = p
    return out


def mask_panels(masks: np.ndarray, classes: Iterable[int] | None = None, columns: int = 5,
                panel_side: int = 320, font_size: int = 15, coverage: bool = True) -> np.ndarray:
    """A grid of per-class binary masks (white = class present on black), one titled panel per
    class ("k Name  x.xx%"), each reduced with block-any to at most `panel_side` pixels.

    Returns one uint8 (h, w, 3) picture.
    """
    masks = _check_masks(masks)
    ids = _class_list(classes)
    if not ids:
        raise ValueError("mask_panels needs at least one class")
    cov = class_coverage(masks) if coverage else {}
    f = display_factor(masks.shape[1], masks.shape[2], panel_side)
    panels = []
    for k in ids:
        small = reduce_masks(masks[k - 1:k], f)[0]
        pic = np.repeat((small * 255)[..., None], 3, axis=2)
        pic = np.pad(pic, ((1, 1), (1, 1), (0, 0)), constant_values=110)  # frame: see black edges
        title = f"{k} {class_by_id(k).name}"
        if coverage:
            title += f"  {format_coverage(cov[k])}"
        bar = _title_bar(title, pic.shape[1], font_size, swatch=class_by_id(k).colour)
        panels.append(np.concatenate([bar, pic], axis=0))
    return _grid(panels, columns, gap=max(6, font_size // 2))


def error_map(pred_masks: np.ndarray, true_masks: np.ndarray, preview: np.ndarray,
              classes: Iterable[int] | None = None, opacity: float = 0.75,
              max_side: int | None = None) -> np.ndarray:
    """Where the prediction of the shown classes is right or wrong, over a dimmed grey preview.

    Per pixel, over the shown classes: "true positive" if every class present in either mask
    is present in both; "false positive" if some class is predicted but not true and none is
    missed; "false negative" if some class is missed and none is wrongly predicted; "wrong class"
    when both happen at once (e.g. road predicted on a track). Colours: `ERROR_COLOURS`.
    """
    shown = _class_list(classes)
    bits = np.uint16(sum(1 << (k - 1) for k in shown))
    pred = np.asarray(pred_masks)
    true = np.asarray(true_masks)
    p = pred if (pred.ndim == 2 and pred.dtype == np.uint16) else pack_masks(pred)
    t = true if (true.ndim == 2 and true.dtype == np.uint16) else pack_masks(true)
    if p.shape != t.shape or p.shape != preview.shape[:2]:
        raise ValueError(f"prediction {p.shape}, truth {t.shape} and preview {preview.shape[:2]} "
                         "must have the same height and width")
    f = display_factor(*p.shape, max_side)
    p = _reduce_packed(p, f) & bits
    t = _reduce_packed(t, f) & bits
    grey = reduce_image(preview, f).mean(axis=2, dtype=np.float32) * 0.6 + 40  # dim: colours stand out
    fp = (p & ~t) != 0
    fn = (t & ~p) != 0
    tp = ((p & t) != 0) & ~fp & ~fn
    cat = np.zeros(p.shape, np.uint8)
    cat[tp] = 1
    cat[fp] = 2
    cat[fn] = 3
    cat[fp & fn] = 4
    pal = np.array([(0, 0, 0), *ERROR_COLOURS.values()], np.float32)
    alpha = np.where(cat > 0, np.float32(opacity), np.float32(0))[..., None]
    out = grey[..., None] * (1 - alpha) + pal[cat] * alpha
    return np.rint(out).astype(np.uint8)


def _error_legend(width: int, font_size: int) -> np.ndarray:
    font = _font(font_size)
    pad = max(4, font_size // 2)
    entries = [(name, colour, _text_width(font, name)) for name, colour in ERROR_COLOURS.items()]
    total = sum(font_size + pad // 2 + tw + 2 * pad for _, _, tw in entries)
    img = Image.new("RGB", (width, font_size + 2 * pad), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    x = max(pad, (width - total) // 2)
    for name, colour, tw in entries:
        draw.rectangle([x, pad, x + font_size - 1, pad + font_size - 1], fill=colour, outline=(60, 60, 60))
        x += font_size + pad // 2
        draw.text((x, pad + font_size // 2), name, font=font, fill=_TEXT, anchor="lm")
        x += tw + 2 * pad
    return np.asarray(img)


def compare(pred_masks: np.ndarray, true_masks: np.ndarray, preview: np.ndarray,
            classes: Iterable[int] | None = None, opacity: float = 0.5, errors: bool = True,
            outline: bool = False, panel_side: int | None = 1024, font_size: int = 18) -> np.ndarray:
    """Prediction vs ground truth side by side (and, with `errors`, the `error_map`), titled,
    with the class legend below. Each panel is reduced to at most `panel_side` pixels.

    Args:
        pred_masks, true_masks: (10, H, W) masks (or packed uint16 (H, W), see `pack_masks`).
        preview: uint8 (H, W, 3) picture of the scene.
        classes: class ids to show (default all); opacity: overlay opacity 0..1.
    Returns:
        uint8 (h, w, 3).
    """
    shown = _class_list(classes)
    left = OverlayRenderer(preview, pred_masks, panel_side).render(shown, opacity, outline)
    right = OverlayRenderer(preview, true_masks, panel_side).render(shown, opacity, outline)
    panels = [titled(left, "Prediction", font_size), titled(right, "Ground truth", font_size)]
    if errors:
        err = error_map(pred_masks, true_masks, preview, shown, max_side=panel_side)
        panels.append(titled(err, "Errors (shown classes)", font_size))
    gap = 8
    row = _grid(panels, len(panels), gap)
    parts = [row, legend(shown, width=row.shape[1], font_size=font_size - 2)]
    if errors:
        parts.append(_error_legend(row.shape[1], font_size - 2))
    return _stack_vertical(parts)


# --------------------------------------------------------------------------------------------
# figures and PNG


def scene_figure(scene: Scene, masks: np.ndarray | None = None, title: str | None = None,
                 classes: Iterable[int] | None = None, opacity: float = 0.5, outline: bool = False,
                 max_side: int = 1200, percentiles: tuple[float, float] = (2, 98)):
    """A matplotlib Figure: RGB | false colour | RGB with the label overlay, and a class legend.

    `masks` (10, H, W) may be None (no labels: the third panel says so); an RGB-only scene gets
    a note instead of the false-colour panel. Pictures are reduced to `max_side` pixels. Uses
    the object-oriented API (no pyplot), so it is safe in threads and leaves no open figures.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    shown = _class_list(classes)
    rgb = rgb_preview(scene, percentiles, max_side=max_side)
    panels: list[tuple[str, np.ndarray | None, str]] = [("RGB (R, G, B; 2–98% stretch)", rgb, "")]
    try:
        fc = false_colour(scene, percentiles=percentiles, max_side=max_side)
        panels.append(("False colour (NIR1, red, green = M7, M5, M3)", fc, ""))
    except BandMismatchError:
        panels.append(("False colour", None, "RGB-only scene:\nno near-infrared band"))
    if masks is not None:
        masks = _check_masks(masks)
        if masks.shape[1:] != (scene.height, scene.width):
            raise ValueError(f"masks are {masks.shape[1]}x{masks.shape[2]} but scene {scene.image_id} "
                             f"is {scene.height}x{scene.width}")
        f = display_factor(scene.height, scene.width, max_side)
        over = OverlayRenderer(rgb, _reduce_packed(pack_masks(masks), f)).render(shown, opacity, outline)
        panels.append((f"Labels (opacity {opacity:g})", over, ""))
    else:
        panels.append(("Labels", None, "no labels for this image"))

    h, w = rgb.shape[:2]
    panel_w = 6.0
    fig = Figure(figsize=(panel_w * 3, panel_w * h / w + 1.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (name, img, note) in zip(axes, panels, strict=True):
        ax.set_title(name, fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
        if img is not None:
            ax.imshow(img, interpolation="antialiased")
        else:
            ax.imshow(np.full((h, w, 3), 235, np.uint8))
            ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, fontsize=13,
                    color="0.3")
    if title:
        fig.suptitle(title, fontsize=15, fontweight="bold")
    if masks is not None:
        cov = class_coverage(masks)
        handles = [Patch(facecolor=class_by_id(k).hex, edgecolor="0.3",
                         label=f"{k} {class_by_id(k).name} ({format_coverage(cov[k])})") for k in shown]
        if handles:
            leg = fig.legend(handles=handles, loc="outside lower center", ncol=min(5, len(handles)),
                             fontsize=11, frameon=False)
            for k, text in zip(shown, leg.get_texts(), strict=True):
                if cov[k] == 0:
                    text.set_color("0.55")  # absent from this image: greyed out
    return fig


def figure_bytes(fig, fmt: str = "png", dpi: int = 100) -> bytes:
    """Encode a matplotlib Figure (png, pdf, svg, jpg) to bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, facecolor="white")
    return buf.getvalue()


def save_figure(path: str | os.PathLike, fig, dpi: int = 100) -> None:
    """Save a matplotlib Figure atomically; the format comes from the file suffix."""
    fmt = os.fspath(path).rsplit(".", 1)[-1].lower()
    with atomic_path(path) as tmp:
        tmp.write_bytes(figure_bytes(fig, fmt, dpi))


def png_bytes(image: np.ndarray, compress_level: int = 3) -> bytes:
    """Encode a uint8 (H, W, 3) or (H, W) image as PNG bytes.

    `compress_level` 0..9 (zlib): 3 is ~3x faster than Pillow's default 6 for a few % larger files.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W[, 3]) image, got {image.dtype} {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray, compress_level: int = 3) -> None:
    """Write `image` as a PNG file atomically (see `png_bytes`)."""
    data = png_bytes(image, compress_level)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
