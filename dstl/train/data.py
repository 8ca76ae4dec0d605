"""Training data: the split by image, the in-memory training set, crops and the 8 dihedral transforms.

- `split_ids`: labelled images -> (train, validation) by image, reproducible from a seed, chosen
  among many random candidates to keep each class's share of the pixels similar in both parts.
- `TrainSet`: the training images held in memory (on the GPU when training on one) as int16
  (value in [0, 1] * 32767: lossless for 11- and 14-bit data, half of float32) or float32,
  padded to a common size, channels last: images (N, Hmax, Wmax, C), masks (N, Hmax, Wmax, 10).
  `sample(batch, generator)` draws a batch of random crops with rare-class oversampling, applies
  one of the 8 dihedral transforms per crop, and normalises - all as batched tensor ops on the
  data's device (one gather for the whole batch, no per-sample Python).
- Augmentation: the 8 flips/rotations of the square (the group D4), index k as in
  `dstl.engine.dihedral` (the engine's test-time augmentation), realised as per-crop index maps
  inside the same gather that cuts the crops, so image and masks move together at no extra cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dstl.classes import NUM_CLASSES
from dstl.engine import dihedral
from dstl.errors import DataError
from dstl.normalization import BandStats

#: int16 storage scale: stored = round(value * STORE_SCALE) for value in [0, 1].
STORE_SCALE = 32767.0
#: Cap on stored rare-class pixel positions per (image, class); a random subset beyond that is
#: as good a source of crop centres and keeps memory bounded when a "rare" class is large.
MAX_POOL_PER_IMAGE = 200_000
#: Crop centres drawn from rare-class pixels are jittered by up to this fraction of the crop
#: side, so the object is not always in the middle.
CENTRE_JITTER = 0.25
#: Pixels sampled (over all training images) to estimate the per-band normalisation statistics.
STATS_PIXELS = 2_000_000


# ---------------------------------------------------------------------------------------------
# The split

def class_fractions(masks: np.ndarray) -> np.ndarray:
    """Pixel count of each class in a (10, H, W) mask stack, as float64 (10,)."""
    return masks.reshape(masks.shape[0], -1).sum(axis=1, dtype=np.int64).astype(np.float64)


def split_score(val_counts: np.ndarray, train_counts: np.ndarray) -> float:
    """Imbalance of a split (lower is better): for each class present anywhere, the absolute log
    ratio of its pixel share in validation vs training, plus a large penalty when the class is
    missing from either side."""
    score = 0.0
    vt, tt = val_counts.sum(), train_counts.sum()
    for v, t in zip(val_counts, train_counts, strict=True):
        if v + t == 0:
            continue
        if v == 0 or t == 0:
            score += 10.0
            continue
        score += abs(np.log((v / max(vt, 1)) / (t / max(tt, 1))))
    return score


def split_ids(ids: list[str], counts: dict[str, np.ndarray], val_fraction: float, seed: int,
              candidates: int = 2000) -> tuple[list[str], list[str]]:
    """Split labelled image ids into (train, validation), by image.

    Args:
        ids: the labelled image ids (order does not matter: they are sorted first).
        counts: image id -> (10,) pixel count per class (`class_fractions`).
        val_fraction: share of the images for validation; at least 1 image each side.
        seed: the split depends only on this and the ids' counts.
        candidates: random subsets tried; the most balanced (`split_score`) wins.

    Returns:
        (train_ids, val_ids), each sorted.
    """
    ids = sorted(ids)
    if len(ids) < 2:
        raise DataError(f"need at least 2 labelled images to split into training and validation, "
                        f"found {len(ids)}")
    n_val = min(max(1, round(len(ids) * val_fraction)), len(ids) - 1)
    rng = np.random.default_rng(seed)
    total = np.sum([counts[i] for i in ids], axis=0)
    best, best_score = None, np.inf
    seen = set()
    for _ in range(candidates):
        pick = tuple(sorted(rng.choice(len(ids), size=n_val, replace=False).tolist()))
        if pick in seen:
            continue
        seen.add(pick)
        val = np.sum([counts[ids[i]] for i in pick], axis=0)
        s = split_score(val, total - val)
        if s < best_score - 1e-12:
            best, best_score = pick, s
    val_ids = [ids[i] for i in best]
    return [i for i in ids if i not in val_ids], val_ids


# ---------------------------------------------------------------------------------------------
# Dihedral transforms

def dihedral_offsets(size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Source offsets of the 8 transforms: (dy, dx), each (8, size, size) long, such that
    `dihedral(crop, k)[i, j] == crop[dy[k, i, j], dx[k, i, j]]` for a (size, size) crop.

    Obtained by applying `dstl.engine.dihedral` to the row and column index maps themselves (a
    transform only moves pixels), so training uses exactly the engine's test-time transforms.
    """
    ar = torch.arange(size, device=device)
    rows = ar.view(size, 1).expand(size, size)
    cols = ar.view(1, size).expand(size, size)
    dy = torch.stack([dihedral(rows, k) for k in range(8)])
    dx = torch.stack([dihedral(cols, k) for k in range(8)])
    return dy.contiguous(), dx.contiguous()


# ---------------------------------------------------------------------------------------------
# The in-memory training set

@dataclass
class Batch:
    """A training batch: x float32 (B, C, s, s) normalised, y float32 (B, 10, s, s) 0/1, both in
    channels_last memory layout; plus where each crop came from (for tests and debugging)."""

    x: torch.Tensor
    y: torch.Tensor
    image: torch.Tensor      # (B,) index into TrainSet.ids
    top: torch.Tensor        # (B,) crop's top row in that image
    left: torch.Tensor       # (B,) crop's left column
    transform: torch.Tensor  # (B,) dihedral index 0..7


def to_storage(data: np.ndarray, store_dtype: str) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) storage array (int16 scaled, or float32)."""
    hwc = np.moveaxis(data, 0, -1)
    if store_dtype == "int16":
        return np.rint(np.clip(hwc, 0.0, 1.0) * STORE_SCALE).astype(np.int16)
    return np.ascontiguousarray(hwc, dtype=np.float32)


class TrainSet:
    """Training images and masks in memory; draws augmented, normalised crop batches.

    Args:
        ids: image ids.
        sizes: (H, W) of each image, in the order of `ids`.
        load: load(k) -> (image (C, H, W) float in [0, 1], masks (10, H, W) 0/1) for image k;
            called once per image, so only one float image is in memory at a time.
        bands: names of the C bands.
        crop_size: crop side in pixels; every image must be at least this large.
        rare_classes: class ids (1..10) whose pixels serve as crop centres with `rare_prob`.
        rare_prob: probability that a crop is centred (with jitter) on a rare-class pixel.
        sample_by: how crops pick their image: "area" (in proportion to its pixels; rare-class
            crops: to its pixels of the class) or "image" (uniformly over the images; rare-class
            crops: over the images that hold the class).
        device: where the tensors live (the GPU when training on one).
        store_dtype: "int16" or "float32" (see module docstring).
        seed: seeds the pixel sampling for statistics and of large rare-class pixel pools.
        stats: normalisation statistics; None = estimate them from these images (`self.stats`).
        progress: optional tqdm-like object; `update(1)` is called per loaded image.
    """

    def __init__(self, ids: list[str], sizes: list[tuple[int, int]], load, bands: tuple[str, ...],
                 crop_size: int, rare_classes=(), rare_prob: float = 0.0, sample_by: str = "area",
                 device: torch.device | str = "cpu", store_dtype: str = "int16", seed: int = 0,
                 stats: BandStats | None = None, progress=None):
        if not ids or len(ids) != len(sizes):
            raise ValueError("ids and sizes must be non-empty and of equal length")
        self.ids = list(ids)
        self.bands = tuple(bands)
        self.crop_size = int(crop_size)
        self.device = torch.device(device)
        self.store_dtype = store_dtype
        self.num_bands = len(self.bands)
        sizes = [tuple(int(v) for v in s) for s in sizes]
        for image_id, (h, w) in zip(ids, sizes, strict=True):
            if min(h, w) < crop_size:
                raise DataError(f"image {image_id} is {h}x{w} px, smaller than the training crop "
                                f"{crop_size}; lower crop_size")
        hmax = max(s[0] for s in sizes)
        wmax = max(s[1] for s in sizes)
        n = len(ids)
        np_dtype = np.int16 if store_dtype == "int16" else np.float32
        # One padded host array filled image by image (the padding is never read: crops stay
        # inside each image's own size), moved to the device in one go.
        img_store = np.zeros((n, hmax, wmax, self.num_bands), dtype=np_dtype)
        mask_store = np.zeros((n, hmax, wmax, NUM_CLASSES), dtype=np.uint8)
        rng = np.random.default_rng(seed)
        pool_parts: dict[int, list[np.ndarray]] = {c: [] for c in sorted(set(rare_classes))}
        samples = []
        class_pixels = np.zeros(NUM_CLASSES, dtype=np.float64)
        per_image = max(1, STATS_PIXELS // n)
        for k, (image_id, (h, w)) in enumerate(zip(ids, sizes, strict=True)):
            img, m = load(k)
            if img.shape != (self.num_bands, h, w) or m.shape != (NUM_CLASSES, h, w):
                raise DataError(f"image {image_id}: got image {img.shape} and masks {m.shape}, expected "
                                f"({self.num_bands}, {h}, {w}) and ({NUM_CLASSES}, {h}, {w})")
            img_store[k, :h, :w] = to_storage(img, store_dtype)
            mask_store[k, :h, :w] = np.moveaxis(np.asarray(m), 0, -1) != 0
            flat = rng.choice(h * w, size=min(per_image, h * w), replace=False)
            samples.append(img.reshape(self.num_bands, -1)[:, flat].astype(np.float64))
            class_pixels += np.asarray(m).reshape(NUM_CLASSES, -1).sum(axis=1, dtype=np.int64)
            for c in pool_parts:
                pos = np.flatnonzero(np.asarray(m[c - 1]))
                if pos.size > MAX_POOL_PER_IMAGE:
                    pos = np.sort(rng.choice(pos, size=MAX_POOL_PER_IMAGE, replace=False))
                pool_parts[c].append(np.stack([np.full(pos.size, k), pos // w, pos % w], axis=1))
            del img, m
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        if stats is None:
            sample = np.concatenate(samples, axis=1)
            stats = BandStats.from_arrays(self.bands, [sample[:, :, None]], max_pixels=sample.shape[1])
        self.stats = stats
        #: Share of the training pixels labelled with each class (class k at index k-1).
        self.class_frequency = class_pixels / sum(h * w for h, w in sizes)
        self.images = torch.from_numpy(img_store).to(self.device)
        self.masks = torch.from_numpy(mask_store).to(self.device)
        del img_store, mask_store
        self.sizes = torch.tensor(sizes, dtype=torch.long, device=self.device)  # (N, 2)
        scale = 1.0 / STORE_SCALE if store_dtype == "int16" else 1.0
        mean = torch.tensor(stats.mean, dtype=torch.float32)
        std = torch.tensor(stats.std, dtype=torch.float32)
        # normalised = stored * a + b, folded into one multiply-add per element
        self._a = (scale / std).to(self.device)
        self._b = (-mean / std).to(self.device)
        self.rare_prob = float(rare_prob)
        if sample_by not in ("area", "image"):
            raise ValueError(f"sample_by must be 'area' or 'image', got {sample_by!r}")
        self.sample_by = sample_by
        self._build_pools(pool_parts)
        self._dy, self._dx = dihedral_offsets(self.crop_size, self.device)

    @classmethod
    def from_arrays(cls, ids: list[str], images: list[np.ndarray], masks: list[np.ndarray],
                    bands: tuple[str, ...], crop_size: int, **kwargs) -> TrainSet:
        """Build from in-memory (C, H, W) images and (10, H, W) masks."""
        return cls(ids, [im.shape[1:] for im in images], lambda k: (images[k], masks[k]), bands, crop_size,
                   **kwargs)

    def _build_pools(self, parts: dict[int, list[np.ndarray]]) -> None:
        """Concatenate the positions (image, row, col) of each rare class that has any pixels
        (`parts[c]`: one chunk per image, in image order), and note where each image's chunk lies
        in it (segments, for drawing the image first with `sample_by` "image")."""
        pools, self.rare_present = [], []
        seg_start, seg_len, cls_first, cls_count = [], [], [], []
        offset = 0
        for c, chunks in parts.items():
            pool = np.concatenate(chunks) if chunks else np.zeros((0, 3), dtype=np.int64)
            if len(pool):
                cls_first.append(len(seg_start))
                local = 0
                for chunk in chunks:
                    if len(chunk):
                        seg_start.append(offset + local)
                        seg_len.append(len(chunk))
                    local += len(chunk)
                cls_count.append(len(seg_start) - cls_first[-1])
                pools.append(pool)
                offset += len(pool)
                self.rare_present.append(c)
        if pools:
            def long(values):
                return torch.tensor(values, dtype=torch.long, device=self.device)

            lengths = [len(p) for p in pools]
            self.pool = torch.from_numpy(np.concatenate(pools).astype(np.int64)).to(self.device)
            self.pool_len = long(lengths)
            self.pool_start = torch.cumsum(self.pool_len, 0) - self.pool_len
            self.seg_start, self.seg_len = long(seg_start), long(seg_len)
            self.cls_first, self.cls_count = long(cls_first), long(cls_count)
        else:
            self.pool = None

    def __len__(self) -> int:
        return len(self.ids)

    def memory_bytes(self) -> int:
        return (self.images.numel() * self.images.element_size()
                + self.masks.numel() * self.masks.element_size())

    def sample_positions(self, batch: int, generator: torch.Generator):
        """Draw crop origins and transforms: (image, top, left, transform), each (batch,) long.

        With probability rare_prob a crop is centred on a random pixel of a rare class (class
        chosen uniformly among the rare classes present, pixel uniformly within it), jittered by
        up to CENTRE_JITTER * crop_size; otherwise the image is drawn in proportion to its area
        (`sample_by` "area") or uniformly ("image"), and the position uniformly. With "image" the
        rare-class pixel is drawn the same way: an image holding the class, uniformly, then a
        pixel of the class in it (with "area", uniformly over all the class's pixels). Crops always lie
        fully inside their image.
        """
        dev, s = self.device, self.crop_size

        def rand(n):
            return torch.rand(n, generator=generator, device=dev)

        if self.sample_by == "area":
            weights = (self.sizes[:, 0] * self.sizes[:, 1]).double()
        else:
            weights = torch.ones(len(self.sizes), dtype=torch.double, device=dev)
        image = torch.multinomial(weights / weights.sum(), batch, replacement=True, generator=generator)
        h = self.sizes[image, 0]
        w = self.sizes[image, 1]
        top = (rand(batch) * (h - s + 1)).long()
        left = (rand(batch) * (w - s + 1)).long()
        use_rare = rand(batch) < self.rare_prob
        # Draw the rare alternatives for every sample (fixed RNG consumption, no branches).
        if self.pool is not None:
            cls = (rand(batch) * len(self.pool_len)).long()
            if self.sample_by == "area":  # a pixel of the class, uniformly over all its pixels
                idx = self.pool_start[cls] + (rand(batch) * self.pool_len[cls]).long()
            else:  # an image holding the class uniformly, then one of its pixels
                seg = self.cls_first[cls] + (rand(batch) * self.cls_count[cls]).long()
                idx = self.seg_start[seg] + (rand(batch) * self.seg_len[seg]).long()
            centre = self.pool[idx]  # (batch, 3): image, row, col
            jitter = int(CENTRE_JITTER * s)
            jy = (rand(batch) * (2 * jitter + 1)).long() - jitter
            jx = (rand(batch) * (2 * jitter + 1)).long() - jitter
            r_image = centre[:, 0]
            rh = self.sizes[r_image, 0]
            rw = self.sizes[r_image, 1]
            r_top = torch.minimum(torch.clamp(centre[:, 1] + jy - s // 2, min=0), rh - s)
            r_left = torch.minimum(torch.clamp(centre[:, 2] + jx - s // 2, min=0), rw - s)
            image = torch.where(use_rare, r_image, image)
            top = torch.where(use_rare, r_top, top)
            left = torch.where(use_rare, r_left, left)
        transform = (rand(batch) * 8).long()
        return image, top, left, transform

    def crops(self, image, top, left, transform) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather crops under their transforms: x float32 normalised (B, C, s, s) and y float32
        (B, 10, s, s), both channels_last (the gather yields (B, s, s, C), viewed as NCHW);
        x[b] == dihedral(plain crop b, transform[b]), and the same for y."""
        rows = top.view(-1, 1, 1) + self._dy[transform]
        cols = left.view(-1, 1, 1) + self._dx[transform]
        n = image.view(-1, 1, 1)
        x = self.images[n, rows, cols]                    # (B, s, s, C)
        y = self.masks[n, rows, cols]                     # (B, s, s, 10)
        x = torch.addcmul(self._b, x.float(), self._a)    # stored * a + b (broadcast over C)
        return x.permute(0, 3, 1, 2), y.float().permute(0, 3, 1, 2)

    def sample(self, batch: int, generator: torch.Generator) -> Batch:
        """A batch of `batch` augmented crops (see `sample_positions` and `crops`)."""
        image, top, left, transform = self.sample_positions(batch, generator)
        x, y = self.crops(image, top, left, transform)
        return Batch(x, y, image, top, left, transform)

    def plain_crop(self, image: int, top: int, left: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One untransformed crop (C, s, s) normalised and (10, s, s), by simple slicing."""
        s = self.crop_size
        x = self.images[image, top:top + s, left:left + s].float() * self._a + self._b
        y = self.masks[image, top:top + s, left:left + s].float()
        return x.permute(2, 0, 1), y.permute(2, 0, 1)
