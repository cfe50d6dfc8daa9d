"""Near-duplicate test for reference images: colour thumbnails aligned for small crops, compared block by block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# Measured choices (bench/near_duplicates.py, docs/near-duplicates.md): a 128 px thumbnail keeps a raised arm or a
# changed line of text visible; blocks of 8x8 on a 64x64 grid localise a change to 1/64 of the picture.
THUMB = 128
GRID = 64
ALIGN_GRID = 32
BLOCK = 8
MAX_CROP = 0.08  # each side of one picture may be cut by up to 8% of the other
EDGE = 0.02  # the outer 2% of the overlap is left out: at a cut edge the thumbnails' blur saw different pixels
CHROMA_WEIGHT = 2.0  # colour differences count double: an arm the same grey as the wall still shows in colour
MIN_CONTRAST = 8.0  # grey levels; a nearly blank picture's noise is not amplified into structure
RIDGE = 0.01  # bounds a block's colour remap: a nearly flat block cannot be stretched into one with structure
# Largest difference (hundredths of the picture's contrast, in its worst block) at which two images are the same
# picture. Measured: copies 21 at p99 (27 on subjects not used to choose), the nearest other view or other picture
# 35 (38): a real different view must never be refused, so the threshold sits well below the nearest non-copy.
NEAR_DUPLICATE_MAX_DIFFERENCE = 25

Floats = NDArray[np.float64]
# Pillow modes whose samples are wider than 8 bits, and the sample value that means full white in each: a PNG
# decoder gives 16-bit grey as I;16 (or I in older Pillow), so those span 0..65535; F has no file format here and
# follows Pillow's own convention (convert("F") of an 8-bit image keeps 0..255).
WIDE_WHITE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 255}
_BACKGROUND = 255  # transparent parts are shown on white, as most viewers and browsers do
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """What the comparison needs of one picture (any size or aspect, squeezed to a square): a blurred YCbCr
    thumbnail, a smaller luminance for alignment, and whether it has colour at all."""

    ycc: Floats  # THUMB x THUMB x 3
    luma: Floats  # THUMB/2 x THUMB/2
    colourful: bool


def displayed(image: Image.Image) -> Image.Image:
    """The picture as a viewer sees it, as 8-bit L or RGB: any bit depth or mode, transparency flattened on white."""
    white = WIDE_WHITE.get(image.mode)
    if white is not None:
        return _scale_wide(image, white)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (_BACKGROUND, _BACKGROUND, _BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def _scale_wide(image: Image.Image, white: int) -> Image.Image:
    # Pillow's convert("L") clips every sample above 255 to white, which made any two 16-bit PNGs "the same".
    samples = np.asarray(image).astype(np.float64)
    grey = np.clip(samples * (255.0 / white), 0, 255)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        grey[samples == transparent] = _BACKGROUND
    return Image.fromarray(np.rint(grey).astype(np.uint8), "L")


def fingerprint(image: Image.Image) -> Fingerprint:
    """Fingerprint a decoded, upright picture (EXIF orientation already applied)."""
    shown = displayed(image)
    small = shown.resize((THUMB, THUMB), Image.Resampling.LANCZOS, reducing_gap=2.0).convert("RGB")
    ycc = _blur(np.asarray(small.convert("YCbCr"), dtype=np.float64), 1.0)
    half = THUMB // 2
    luma = _blur(ycc[..., 0].reshape(half, 2, half, 2).mean(axis=(1, 3)), 1.0)
    colourful = shown.mode != "L" and float(np.abs(ycc[..., 1:] - 128).mean()) > 4.0
    return Fingerprint(ycc=ycc, luma=luma, colourful=colourful)


def _blur(a: Floats, sigma: float) -> Floats:
    """Separable Gaussian over the first two axes, edges repeated."""
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (a.ndim - 2)
    p = np.pad(a, pad, mode="edge")
    rows = sum(k * p[i : i + a.shape[0]] for i, k in enumerate(kernel))
    return np.asarray(sum(k * rows[:, i : i + a.shape[1]] for i, k in enumerate(kernel)))


def difference(a: Fingerprint, b: Fingerprint) -> int:
    """How much two pictures differ where they differ most, in hundredths of contrast: 0 for the same pixels."""
    window = _align(a, b)[None]
    xa, xb = _axes(window[:, :2], GRID)
    ya, yb = _axes(window[:, 2:], GRID)
    channels = 3 if a.colourful and b.colourful else 1
    sa = _normalised(_sample(a.ycc, xa, ya)[0, ..., :channels])
    sb = _normalised(_sample(b.ycc, xb, yb)[0, ..., :channels])
    # Each picture must explain the other block by block, as well as it explains itself: a per-block colour remap is
    # allowed (brightness, contrast, saturation and hue edits still match); the worst block decides.
    excess = np.maximum(_unexplained(sa, sb) - _unexplained(sb, sb), _unexplained(sb, sa) - _unexplained(sa, sa))
    return round(100 * float(np.sqrt(max(0.0, float((excess * _WEIGHTS[:channels]).max())))))


def is_same_picture(difference: int) -> bool:
    """The decision: a measured difference at or below the threshold means the same picture."""
    return difference <= NEAR_DUPLICATE_MAX_DIFFERENCE


_WEIGHTS = np.array([1.0, CHROMA_WEIGHT**2, CHROMA_WEIGHT**2])
_IDENTITY = np.array([0.0, 1.0, 0.0, 1.0])
_MOVES = np.concatenate([np.eye(4), -np.eye(4)])


def _align(a: Fingerprint, b: Fingerprint) -> Floats:
    """Where b's edges fall in a's coordinates (x0, x1, y0, y1), allowing a crop of up to MAX_CROP per side."""
    starts = np.stack([_IDENTITY, _profile_window(a.luma, b.luma)])
    window = starts[int(np.argmin(_costs(a.luma, b.luma, starts, ALIGN_GRID)))]
    window = _descend(a.luma, b.luma, window, ALIGN_GRID, (0.02, 0.01, 0.005))
    # Thin lines need the finer thumbnail to land on each other.
    return _descend(a.ycc[..., 0], b.ycc[..., 0], window, GRID, (0.002,))


def _descend(a: Floats, b: Floats, window: Floats, grid: int, steps: tuple[float, ...]) -> Floats:
    """Move one edge at a time by ``step`` while that lowers the luminance mismatch, then try a smaller step."""
    best = float(_costs(a, b, window[None], grid)[0])
    for step in steps:
        for _ in range(12):  # bounded: 12 of the largest step cross the whole range
            candidates = np.clip(window + step * _MOVES, _IDENTITY - MAX_CROP, _IDENTITY + MAX_CROP)
            costs = _costs(a, b, candidates, grid)
            k = int(np.argmin(costs))
            if costs[k] >= best - 1e-12:
                break
            window, best = candidates[k], float(costs[k])
    return window


def _costs(a: Floats, b: Floats, windows: Floats, grid: int) -> Floats:
    xa, xb = _axes(windows[:, :2], grid)
    ya, yb = _axes(windows[:, 2:], grid)
    return np.asarray(((_zscore(_sample(a, xa, ya)) - _zscore(_sample(b, xb, yb))) ** 2).mean(axis=(1, 2)))


def _zscore(samples: Floats) -> Floats:
    mean = samples.mean(axis=(1, 2), keepdims=True)
    return np.asarray((samples - mean) / np.maximum(samples.std(axis=(1, 2), keepdims=True), MIN_CONTRAST))


def _profile_window(a: Floats, b: Floats) -> Floats:
    """A first guess from the column and row means: a crop shifts and stretches those profiles."""
    return np.concatenate([_profile_fit(a.mean(axis=0), b.mean(axis=0)), _profile_fit(a.mean(axis=1), b.mean(axis=1))])


def _profile_fit(pa: Floats, pb: Floats) -> Floats:
    offsets = np.arange(-MAX_CROP, MAX_CROP + 1e-9, 0.01)
    p, q = (grid.reshape(-1, 1) for grid in np.meshgrid(offsets, 1 + offsets, indexing="ij"))
    xa, xb = _axes(np.hstack([p, q]), len(pa))
    index = np.arange(len(pa))
    ia, ib = np.interp(xa * len(pa) - 0.5, index, pa), np.interp(xb * len(pb) - 0.5, index, pb)
    za = (ia - ia.mean(axis=1, keepdims=True)) / np.maximum(ia.std(axis=1, keepdims=True), 1e-3)
    zb = (ib - ib.mean(axis=1, keepdims=True)) / np.maximum(ib.std(axis=1, keepdims=True), 1e-3)
    k = int(np.argmin(((za - zb) ** 2).mean(axis=1)))
    return np.array([p[k, 0], q[k, 0]])


def _axes(spans: Floats, n: int) -> tuple[Floats, Floats]:
    """n sample positions across the overlap of each span (K x 2: b's ends in a's 0..1), in a's and in b's terms."""
    start, end = spans[:, :1], spans[:, 1:]
    low, high = np.maximum(start, 0.0) + EDGE, np.minimum(end, 1.0) - EDGE
    in_a = low + (high - low) * ((np.arange(n) + 0.5) / n)
    return in_a, (in_a - start) / (end - start)


def _sample(image: Floats, xs: Floats, ys: Floats) -> Floats:
    """Bilinear samples of ``image`` (N x N [x C]) on K grids: xs and ys are K x n positions in 0..1."""
    size = image.shape[0]
    x = np.clip(xs * size - 0.5, 0, size - 1)
    y = np.clip(ys * size - 0.5, 0, size - 1)
    x0, y0 = x.astype(int), y.astype(int)
    x1, y1 = np.minimum(x0 + 1, size - 1), np.minimum(y0 + 1, size - 1)
    extra = (None,) * (image.ndim - 2)
    fy = (y - y0)[:, :, None, *extra]
    rows = image[y0] * (1 - fy) + image[y1] * fy  # K x n x N [x C]: rows first, then columns of those rows
    fx = (x - x0)[:, None, :, *extra]
    left = np.take_along_axis(rows, x0[:, None, :, *extra], axis=2)
    right = np.take_along_axis(rows, x1[:, None, :, *extra], axis=2)
    return np.asarray(left * (1 - fx) + right * fx)


def _normalised(samples: Floats) -> Floats:
    """Zero mean per channel, in units of the picture's luminance contrast (so colour keeps its scale)."""
    return np.asarray((samples - samples.mean(axis=(0, 1))) / max(float(samples[..., 0].std()), MIN_CONTRAST))


def _unexplained(x: Floats, y: Floats) -> Floats:
    """Per block and channel: the variance of y left over after the best linear remap of x's colours."""
    g, c = GRID // BLOCK, x.shape[-1]
    xb = x.reshape(g, BLOCK, g, BLOCK, c).transpose(0, 2, 1, 3, 4).reshape(g * g, BLOCK * BLOCK, c)
    yb = y.reshape(g, BLOCK, g, BLOCK, c).transpose(0, 2, 1, 3, 4).reshape(g * g, BLOCK * BLOCK, c)
    xb, yb = xb - xb.mean(axis=1, keepdims=True), yb - yb.mean(axis=1, keepdims=True)
    n = BLOCK * BLOCK
    xt = xb.transpose(0, 2, 1)
    beta = np.linalg.solve(xt @ xb / n + RIDGE * np.eye(c), xt @ yb / n)
    rest = yb - xb @ beta
    return np.asarray((rest * rest).mean(axis=1))
