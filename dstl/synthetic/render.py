"""Raster synthesis: from a scene's objects and label masks to the four DSTL products.

Physics, in order:

1. A full-resolution material map. Every pixel takes the object drawn on top of it (painter's
   order by layer), but the label masks have the last word: a pixel inside class k's mask (the
   highest-priority class present there, `CLASS_PRIORITY`) is always drawn with a class-k
   object, so pixels and labels agree exactly. Each object's `Look` turns a texture value into
   fractions of three endmembers and a brightness (`looks`): per-pixel endmember abundances.
2. Shadows: polygons cast by buildings, trees, structures and vehicles away from the sun; a
   shadowed pixel keeps only the diffuse skylight share of its irradiance (`Atmosphere.diffuse`,
   blue-rich). Partial strengths model see-through casters (trees, pylons).
3. Products. R, G, B and P at full resolution from the abundances and the endmember table. M
   (~1/4 resolution) and A (~1/25) are NOT made from 20 full-resolution bands: the abundances
   (sunlit and shaded parts apart) are summed per 4 x 4-pixel cell into endmember histograms,
   which times the spectra give each cell's exact mean reflectance in all 16 bands; the cells are
   then area-averaged onto each product's own grid, shifted by a sub-pixel mis-registration.
   (Within a cell the mixture is treated as uniform: a blur of at most 4 px, below M's pixel.)
4. Atmosphere and sensor: transmittance and additive haze (a smooth field over the scene,
   stronger at short wavelengths), per-product gain and dark offset, signal-dependent noise,
   quantisation to 11 bits (3-band, P, M) or 14 bits (A).

The full-resolution work runs in bands of rows (float32, vectorised), so memory stays at a few
full-size arrays and a full 3350 x 3400 scene renders in a few seconds.
"""

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import rasterio.features
import scipy.sparse
from rasterio.transform import IDENTITY
from scipy import ndimage

from dstl.bands import BIT_DEPTH_MAX
from dstl.synthetic.layout import Layout
from dstl.synthetic.looks import (
    TEXTURE_CROWNS,
    TEXTURE_GABLE,
    TEXTURE_NOISE,
    TEXTURE_PATCHES,
    TEXTURE_ROWS,
)
from dstl.synthetic.spectra import FULL_RES_WEIGHTS, Atmosphere, sample_atmosphere, scene_reflectance

#: Order in which overlapping classes claim a pixel's appearance (first wins): vehicles on
#: roads look like vehicles, structures and buildings hide the ground, and so on.
CLASS_PRIORITY = (10, 9, 2, 1, 3, 4, 7, 8, 5, 6)

#: Side (3-band pixels) of the cells in which abundances are histogrammed for M and A.
CELL = 4

#: Rows of the full-resolution image processed at a time (a multiple of CELL).
CHUNK_ROWS = 128

#: Most threads the full-resolution rendering uses (it stops scaling beyond a few).
MAX_THREADS = 4


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ProductGeometry:
    """Sizes of the products of one image and the mis-registration of M and A.

    Attributes:
        height, width: 3-band / P size.
        m_size, a_size: (rows, cols) of the M and A products.
        m_shift, a_shift: (dy, dx) offsets in 3-band pixels of the M / A grids.
    """

    height: int
    width: int
    m_size: tuple[int, int]
    a_size: tuple[int, int]
    m_shift: tuple[float, float]
    a_shift: tuple[float, float]


def sample_product_geometry(rng: np.random.Generator, height: int, width: int) -> ProductGeometry:
    """Product sizes like the real data's (M ~ H/4, A ~ H/25, each off by up to a pixel) and
    mis-registrations of up to ~2.5 px (M) and ~8 px (A) on the 3-band grid."""
    def jitter(n: float) -> int:
        return max(int(round(n)) + int(rng.choice([-1, 0, 0, 1])), 2)

    return ProductGeometry(
        height, width,
        (jitter(height / 4), jitter(width / 4)),
        (jitter(height / 25), jitter(width / 25)),
        (float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-2.5, 2.5))),
        (float(rng.uniform(-8, 8)), float(rng.uniform(-8, 8))),
    )


# --------------------------------------------------------------------------- resampling

def _gauss_matrix(n_out: int, n_in: int, sigma: float) -> scipy.sparse.csr_matrix:
    """Sparse (n_out, n_in) matrix resampling n_in samples to n_out over the same extent with a
    Gaussian kernel of `sigma` input samples (pixel-centre aligned, rows summing to 1)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    reach = int(np.ceil(3 * sigma)) + 1
    base = np.floor(src).astype(np.int64)
    cols = base[:, None] + np.arange(-reach + 1, reach + 1)[None, :]
    w = np.exp(-0.5 * ((src[:, None] - cols) / sigma) ** 2)
    w[(cols < 0) | (cols >= n_in)] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(n_out), cols.shape[1])
    mat = scipy.sparse.csr_matrix((w.ravel().astype(np.float32), (rows, np.clip(cols, 0, n_in - 1).ravel())),
                                  shape=(n_out, n_in))
    mat.sum_duplicates()
    return mat


def _area_matrix(n_out: int, n_in_px: int, cell: int, shift: float) -> scipy.sparse.csr_matrix:
    """Sparse (n_out, ceil(n_in_px / cell)) matrix averaging cells of `cell` pixels onto n_out
    output pixels of n_in_px / n_out pixels each, the output grid shifted by `shift` pixels.

    Weights are the overlap lengths (in pixels) of each output pixel with each cell, both clipped
    to [0, n_in_px), normalised per row: an area average.
    """
    n_cells = -(-n_in_px // cell)
    size = n_in_px / n_out
    lo = np.clip(np.arange(n_out) * size + shift, 0, n_in_px)
    hi = np.clip((np.arange(n_out) + 1) * size + shift, 0, n_in_px)
    # An edge pixel pushed off the image by the shift still sees the nearest strip of the image.
    empty = hi - lo < 0.5
    lo[empty] = np.clip(lo[empty] - 1, 0, n_in_px - 1)
    hi[empty] = lo[empty] + 1
    c0 = np.floor(lo / cell).astype(np.int64)
    span = int(np.ceil(size / cell)) + 2
    cols = c0[:, None] + np.arange(span)[None, :]
    cell_lo = cols * cell
    cell_hi = np.minimum(cell_lo + cell, n_in_px)
    w = np.clip(np.minimum(hi[:, None], cell_hi) - np.maximum(lo[:, None], cell_lo), 0, None)
    w[cols >= n_cells] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(n_out), span)
    mat = scipy.sparse.csr_matrix(
        (w.ravel().astype(np.float32), (rows, np.clip(cols, 0, n_cells - 1).ravel())), shape=(n_out, n_cells))
    mat.sum_duplicates()
    return mat


def _resample_cells(cells: np.ndarray, ry: scipy.sparse.csr_matrix,
                    rx: scipy.sparse.csr_matrix) -> np.ndarray:
    """(gh, gw, B) cell values -> (B, h, w) through row and column matrices (ry: h x gh)."""
    gh, gw, B = cells.shape
    rows = (ry @ cells.reshape(gh, gw * B)).reshape(-1, gw, B)          # (h, gw, B)
    h = rows.shape[0]
    cols = rx @ np.ascontiguousarray(rows.transpose(1, 0, 2)).reshape(gw, h * B)  # (w, h*B)
    return np.ascontiguousarray(cols.reshape(-1, h, B).transpose(2, 1, 0)).astype(np.float32)


class SmoothNoise:
    """Zero-mean, unit-variance smooth noise on an H x W grid with features ~`scale` px across,
    evaluated band by band of rows (`rows(r0, r1)`): white noise on a grid `scale` times
    coarser, resampled with sparse Gaussian matrices (far cheaper than filtering full-size)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], scale: float):
        h, w = shape
        gh, gw = max(int(np.ceil(h / scale)) + 1, 2), max(int(np.ceil(w / scale)) + 1, 2)
        coarse = rng.standard_normal((gh, gw), dtype=np.float32)
        self.ry = _gauss_matrix(h, gh, 0.7)
        # Columns resampled once for the whole field: (gh, w), C-ordered for the row products.
        self.cols = np.ascontiguousarray((_gauss_matrix(w, gw, 0.7) @ coarse.T).T, dtype=np.float32)
        sample = self.ry[::17] @ self.cols
        self.scale = np.float32(1.0 / (float(np.std(sample)) or 1.0))

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows r0..r1 of the field, (r1 - r0, w) float32."""
        out = np.ascontiguousarray(self.ry[r0:r1] @ self.cols, dtype=np.float32)
        out *= self.scale
        return out


class _CoarseField:
    """A coarse (gh, gw) control grid resampled to an H x W grid (same extent), row bands on demand."""

    def __init__(self, coarse: np.ndarray, shape: tuple[int, int], sigma: float = 1.0):
        self.ry = _gauss_matrix(shape[0], coarse.shape[0], sigma)
        self.cols = np.ascontiguousarray((_gauss_matrix(shape[1], coarse.shape[1], sigma) @ coarse.T).T,
                                         dtype=np.float32)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        return np.ascontiguousarray(self.ry[r0:r1] @ self.cols, dtype=np.float32)


# --------------------------------------------------------------------------- material map

@dataclass
class _Tables:
    """Per-object look parameters as 1-D arrays indexed by object number (0 = background)."""

    cls: np.ndarray
    m0: np.ndarray
    m1: np.ndarray
    m2: np.ndarray
    base0: np.ndarray
    base2: np.ndarray
    amp: np.ndarray
    bright: np.ndarray
    bamp: np.ndarray
    famp: np.ndarray
    texture: np.ndarray
    params: np.ndarray   # (N, 5)


def _tables(layout: Layout) -> _Tables:
    looks_ = [layout.background] + [o.look for o in layout.objects]
    f32 = np.float32
    mats = np.array([lk.materials for lk in looks_], dtype=np.int64)
    texture = np.array([lk.texture for lk in looks_], dtype=np.uint8)
    amp = np.array([lk.amp for lk in looks_], dtype=f32)
    amp[texture == TEXTURE_GABLE] = 0.0  # a roof plane's texture is light, not material
    return _Tables(
        cls=np.array([0] + [o.cls for o in layout.objects], dtype=np.uint8),
        m0=mats[:, 0].copy(), m1=mats[:, 1].copy(), m2=mats[:, 2].copy(),
        base0=np.array([lk.base0 for lk in looks_], dtype=f32),
        base2=np.array([lk.base2 for lk in looks_], dtype=f32),
        amp=amp,
        bright=np.array([lk.bright for lk in looks_], dtype=f32),
        bamp=np.array([lk.bamp for lk in looks_], dtype=f32),
        famp=np.array([lk.famp for lk in looks_], dtype=f32),
        texture=texture,
        params=np.array([lk.params for lk in looks_], dtype=f32).reshape(-1, 5),
    )


def top_class(masks: np.ndarray) -> np.ndarray:
    """(H, W) uint8: the highest-priority class (`CLASS_PRIORITY`) whose mask holds each pixel, 0 if none."""
    rank = np.zeros(masks.shape[1:], dtype=np.uint8)
    for r, cls in enumerate(reversed(CLASS_PRIORITY), start=1):
        np.maximum(rank, masks[cls - 1] * np.uint8(r), out=rank)
    lut = np.array((0,) + tuple(reversed(CLASS_PRIORITY)), dtype=np.uint8)
    return lut[rank]


def object_map(layout: Layout, masks: np.ndarray, tables: _Tables) -> np.ndarray:
    """(H, W) int32 object number per pixel, consistent with the label `masks`.

    Objects are burnt in layer order (pixel-centre rule); then every pixel whose top object's
    class differs from the masks' top class (a boundary pixel on which the rounding of grid
    coordinates decided otherwise) takes that class's largest object instead.
    """
    H, W = layout.height, layout.width
    order = sorted(range(len(layout.objects)), key=lambda i: layout.objects[i].layer)  # stable
    obj = np.zeros((H, W), dtype=np.int32)
    if order:
        rasterio.features.rasterize([(layout.objects[i].geom, i + 1) for i in order], out_shape=(H, W),
                                    out=obj, transform=IDENTITY, all_touched=False, dtype=np.int32)
    top = top_class(masks)
    wrong = tables.cls[obj] != top
    if wrong.any():
        default = np.zeros(11, dtype=np.int32)
        areas = [o.geom.area for o in layout.objects]
        for i in np.argsort(areas, kind="stable"):  # largest last, so it wins
            default[layout.objects[i].cls] = i + 1
        default[0] = 0
        obj[wrong] = default[top[wrong]]
    return obj


def shadow_map(layout: Layout) -> np.ndarray:
    """(H, W) uint8 shadow strength 0..255 (255: direct sunlight fully blocked)."""
    H, W = layout.height, layout.width
    shadows = layout.shadows()
    sh = np.zeros((H, W), dtype=np.uint8)
    if shadows:
        rasterio.features.rasterize(((g, int(round(s * 255))) for g, s in shadows), out_shape=(H, W),
                                    out=sh, transform=IDENTITY, dtype=np.uint8)
    return sh


def _texture_tables(t: _Tables) -> dict[str, np.ndarray]:
    """Per-object texture coefficients as 1-D float32 arrays (1-D gathers are the fast ones).

    Rows: phase = kx * x + ky * y + phase0 (kx, ky: the row direction's wave vector).
    Gable: side = sign(nx * x + ny * y - c) (the ridge line), brightness +- contrast.
    """
    p = t.params.astype(np.float64)
    rows = t.texture == TEXTURE_ROWS
    gable = t.texture == TEXTURE_GABLE
    k = np.where(rows, 2 * np.pi / np.where(rows, p[:, 1], 1.0), 0.0)
    f32 = np.float32
    return {
        "kx": (np.cos(p[:, 0]) * k).astype(f32), "ky": (np.sin(p[:, 0]) * k).astype(f32),
        "ph": np.where(rows, p[:, 2], 0.0).astype(f32),
        "nx": np.where(gable, p[:, 2], 0.0).astype(f32), "ny": np.where(gable, p[:, 3], 0.0).astype(f32),
        "nc": np.where(gable, p[:, 0] * p[:, 2] + p[:, 1] * p[:, 3], 0.0).astype(f32),
        "contrast": np.where(gable, p[:, 4], 0.0).astype(f32),
    }


@functools.lru_cache(maxsize=4)
def _pixel_centres(rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat float32 x and y (row offset 0) of the pixel centres of a band of rows."""
    x = np.tile(np.arange(width, dtype=np.float32) + np.float32(0.5), rows)
    y = np.repeat(np.arange(rows, dtype=np.float32) + np.float32(0.5), width)
    return x, y


def _textures(o: np.ndarray, t: _Tables, tt: dict[str, np.ndarray], mid: np.ndarray, coarse: np.ndarray,
              r0: int) -> tuple[np.ndarray, np.ndarray]:
    """Texture value t of each pixel of a band of rows, (R, W) float32. It drives both the
    fraction and the brightness; gable roofs have amp = 0 (`_tables`), so their t (the lit or
    shaded roof plane) changes only the brightness."""
    R, W = o.shape
    kind = t.texture[o].ravel()
    tex = np.zeros(R * W, dtype=np.float32)
    midv, coarsev, ov = mid.ravel(), coarse.ravel(), o.ravel()
    sel = np.flatnonzero(kind == TEXTURE_NOISE)
    tex[sel] = midv[sel]
    sel = np.flatnonzero(kind == TEXTURE_PATCHES)
    tex[sel] = 0.75 * coarsev[sel] + 0.35 * midv[sel]
    sel = np.flatnonzero(kind == TEXTURE_CROWNS)
    tex[sel] = np.tanh(2.5 * midv[sel] + 0.3)
    for texture in (TEXTURE_ROWS, TEXTURE_GABLE):
        sel = np.flatnonzero(kind == texture)
        if not len(sel):
            continue
        os_ = ov[sel]
        x, y = _pixel_centres(R, W)
        x, y = x[sel], y[sel] + np.float32(r0)
        if texture == TEXTURE_ROWS:
            phase = x * tt["kx"][os_] + y * tt["ky"][os_] + tt["ph"][os_]
            tex[sel] = np.sin(phase) + 0.25 * midv[sel]
        else:
            side = np.sign(x * tt["nx"][os_] + y * tt["ny"][os_] - tt["nc"][os_])
            tex[sel] = side * tt["contrast"][os_] + 0.05 * midv[sel]
    return tex.reshape(R, W)


def _uniform_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean unit-variance uniform noise (cheaper to draw than Gaussian; after adding it to
    a signal and quantising, the difference does not matter here)."""
    u = rng.random(shape, dtype=np.float32)
    u -= np.float32(0.5)
    u *= np.float32(np.sqrt(12.0))
    return u


@dataclass(frozen=True)
class _Sensor:
    """One product's radiometry: gain (fraction of full scale per unit reflectance), dark offset
    (counts), read noise (counts) and shot-noise factor (variance per count)."""

    max_dn: int
    gain: float
    offset: float
    read: float
    shot: float

    def noise_sd(self, dn: np.ndarray) -> np.ndarray:
        sd = np.maximum(dn, 0) * np.float32(self.shot)
        sd += np.float32(self.read**2)
        return np.sqrt(sd, out=sd)

    def quantise(self, dn: np.ndarray, rounded: bool = False) -> np.ndarray:
        """Counts (float, in place) -> uint16, rounded half up, clipped to 0..max_dn.
        `rounded`: 0.5 was already added (folded into an offset), just truncate."""
        if not rounded:
            dn += np.float32(0.5)
        np.clip(dn, 0, self.max_dn + 0.5, out=dn)
        return dn.astype(np.uint16)


def _sample_sensor(rng: np.random.Generator, product: str) -> _Sensor:
    max_dn = BIT_DEPTH_MAX[product]
    if product == "A":
        return _Sensor(max_dn, rng.uniform(0.35, 0.55), rng.uniform(0.004, 0.02) * max_dn, 12.0, 2.0)
    return _Sensor(max_dn, rng.uniform(0.9, 1.3), rng.uniform(0.004, 0.02) * max_dn, 2.0, 0.4)


def render_products(rng: np.random.Generator, layout: Layout, masks: np.ndarray,
                    geometry: ProductGeometry, lap: Callable[[str], None] | None = None,
                    reflectance: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Render the four DSTL products of one scene.

    Args:
        rng: random stream (consumed deterministically).
        layout: the scene's objects (pixel coordinates).
        masks: uint8 (10, H, W) label masks of exactly the polygons written as labels.
        geometry: product sizes and mis-registrations (H, W must match `masks`).
        lap: optional callback called with a stage name after each stage (timing).
        reflectance: the endmember table (endmembers x 16) to jitter and render with; default
            `spectra.REFLECTANCE` (the library spectra the rule-based scenes use).

    Returns:
        {"3": uint16 (3, H, W), "P": uint16 (H, W), "M": uint16 (8, h_M, w_M),
        "A": uint16 (8, h_A, w_A)}; 3-band, P and M 11-bit (<= 2047), A 14-bit (<= 16383).
    """
    H, W = geometry.height, geometry.width
    if masks.shape != (10, H, W):
        raise ValueError(f"masks must be (10, {H}, {W}), got {masks.shape}")
    spectra = scene_reflectance(rng, reflectance).astype(np.float64)  # (E, 16)
    E = spectra.shape[0]
    atmos: Atmosphere = sample_atmosphere(rng)
    sensors = {p: _sample_sensor(rng, p) for p in ("3", "M", "A")}
    haze_coarse = np.clip(1.0 + 0.5 * rng.standard_normal((6, 6)), 0.2, 2.0).astype(np.float32)
    mid_noise = SmoothNoise(rng, (H, W), 6.0)
    coarse_noise = SmoothNoise(rng, (H, W), 60.0)
    haze_full = _CoarseField(haze_coarse, (H, W))

    lap = lap or (lambda stage: None)
    t = _tables(layout)
    tt = _texture_tables(t)
    obj = object_map(layout, masks, t)
    lap("object map")
    sh = shadow_map(layout)
    lap("shadows")

    # Full-res band b of a pixel, in counts before noise:
    #   (bright * C_b + a0 * D_b) * (1 - shadow * k_b) + haze * P_b + offset
    # with per-object C_b = G T_b (S_b[m1] + base2 (S_b[m2] - S_b[m1])), D_b = G T_b (S_b[m0] - S_b[m1])
    # (w1 = 1 - w0 - w2 folded in), transmittance T_b, path radiance P_b, gain G counts/reflectance.
    sens = sensors["3"]
    g3 = sens.gain * sens.max_dn
    s4 = (spectra @ FULL_RES_WEIGHTS.T.astype(np.float64))                     # (E, 4)
    trans4, path4 = atmos.full_res(atmos.transmittance), atmos.full_res(atmos.path_radiance)
    c4, d4 = [], []
    for b in range(4):
        scale = g3 * float(trans4[b])
        c4.append((scale * (s4[t.m1, b] + t.base2 * (s4[t.m2, b] - s4[t.m1, b]))).astype(np.float32))
        d4.append((scale * (s4[t.m0, b] - s4[t.m1, b])).astype(np.float32))
    keep4 = 1.0 - atmos.full_res(atmos.diffuse)         # share of the signal a full shadow removes
    shade_spectra = spectra * (1.0 - atmos.diffuse.astype(np.float64))[None, :]

    rgbp = np.empty((4, H, W), dtype=np.uint16)
    gh, gw = -(-H // CELL), -(-W // CELL)
    # Per 4 x 4 cell: sums of sunlit abundance per endmember, then of shaded abundance
    # (histogram columns E..2E-1); times [S; -S (1 - diffuse)] they give the summed reflectance.
    cell_spectra = np.vstack([spectra, -shade_spectra]).astype(np.float32)
    cells = np.empty((gh, gw, spectra.shape[1]), dtype=np.float32)
    col_cell = np.arange(W) // CELL
    inv255 = np.float32(1 / 255)
    offset = np.float32(sens.offset + 0.5)  # + 0.5: `quantise` truncates, so this rounds

    def render_rows(r0: int, seed: np.random.SeedSequence) -> None:
        """Rows r0 .. r0 + CHUNK_ROWS: R, G, B, P counts and the 4 x 4 cells' reflectance."""
        rng_rows = np.random.default_rng(seed)
        r1 = min(r0 + CHUNK_ROWS, H)
        R = r1 - r0
        o = obj[r0:r1]
        tex = _textures(o, t, tt, mid_noise.rows(r0, r1), coarse_noise.rows(r0, r1), r0)
        w2 = t.base2[o]
        w0 = t.amp[o]
        w0 *= tex
        w0 += t.base0[o]
        np.clip(w0, 0.0, 1.0 - w2, out=w0)
        bright = t.bamp[o]
        bright *= tex
        noise = _uniform_noise(rng_rows, (R, W))
        noise *= t.famp[o]
        bright += noise
        bright += np.float32(1.0)
        bright *= t.bright[o]
        np.maximum(bright, 0.05, out=bright)
        del tex, noise
        a0 = w0 * bright
        a2 = w2 * bright
        a1 = bright - a0
        a1 -= a2
        shaded = np.flatnonzero(sh[r0:r1])
        shc = sh[r0:r1] * inv255 if len(shaded) else None

        # -- full resolution: P first (its signal sets the noise level), then R, G, B
        haze = haze_full.rows(r0, r1)
        sd = None
        for b in (3, 0, 1, 2):
            dn = bright * c4[b][o]
            dn += a0 * d4[b][o]
            if shc is not None:
                dn *= 1.0 - shc * np.float32(keep4[b])
            dn += haze * np.float32(path4[b] * g3) + offset
            if sd is None:
                sd = sens.noise_sd(dn)
            noise = _uniform_noise(rng_rows, (R, W))
            noise *= sd
            dn += noise
            rgbp[b, r0:r1] = sens.quantise(dn, rounded=True)

        # -- 4 x 4 cells: endmember histograms, sunlit and shaded, in one bincount
        g0, g1 = r0 // CELL, -(-r1 // CELL)
        nb = (g1 - g0) * gw
        blk = (((np.arange(r0, r1) // CELL) - g0)[:, None] * gw + col_cell[None, :]).ravel() * (2 * E)
        idx_parts, w_parts = [], []
        shf = shc.ravel()[shaded] if shc is not None else None
        for a, mt in ((a0, t.m0), (a1, t.m1), (a2, t.m2)):
            av = a.ravel()
            idx = blk + mt[o].ravel()
            if mt is t.m2:  # the third endmember is absent from most objects
                nz = np.flatnonzero(av)
                idx_parts.append(idx[nz])
                w_parts.append(av[nz])
            else:
                idx_parts.append(idx)
                w_parts.append(av)
            if shf is not None:
                idx_parts.append(idx[shaded] + E)
                w_parts.append(av[shaded] * shf)
        acc = np.bincount(np.concatenate(idx_parts), weights=np.concatenate(w_parts), minlength=nb * 2 * E)
        cells[g0:g1] = (acc.astype(np.float32).reshape(nb, 2 * E) @ cell_spectra).reshape(g1 - g0, gw, -1)

    # Bands of rows are independent (each has its own random stream, so the result does not
    # depend on the order they run in): spread them over the cores; numpy releases the GIL.
    starts = list(range(0, H, CHUNK_ROWS))
    seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(starts))
    workers = min(MAX_THREADS, _available_cores(), len(starts))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(render_rows, starts, seeds))
    else:
        for r0, seed in zip(starts, seeds, strict=True):
            render_rows(r0, seed)
    counts = np.outer(np.bincount(np.arange(H) // CELL, minlength=gh), np.bincount(col_cell, minlength=gw))
    cells /= counts[..., None].astype(np.float32)
    lap("full resolution")

    products: dict[str, np.ndarray] = {"3": rgbp[:3], "P": rgbp[3]}
    for name, size, shift, cols in (("M", geometry.m_size, geometry.m_shift, slice(0, 8)),
                                    ("A", geometry.a_size, geometry.a_shift, slice(8, 16))):
        ry = _area_matrix(size[0], H, CELL, shift[0])
        rx = _area_matrix(size[1], W, CELL, shift[1])
        refl = _resample_cells(np.ascontiguousarray(cells[..., cols]), ry, rx)
        refl = ndimage.gaussian_filter(refl, sigma=(0, 0.35, 0.35), mode="nearest")  # optics PSF
        haze = _CoarseField(haze_coarse, size).rows(0, size[0])
        toa = (refl * atmos.transmittance[cols, None, None]
               + atmos.path_radiance[cols, None, None] * haze[None])
        sens = sensors[name]
        dn = (toa * (sens.gain * sens.max_dn) + sens.offset).astype(np.float32)
        dn += rng.standard_normal(dn.shape, dtype=np.float32) * sens.noise_sd(dn)
        products[name] = sens.quantise(dn)
    lap("M and A")
    return products
