"""Deterministic synthetic inputs: image-like pictures for calibration, fidelity checks and the inputs a
run measures with (numpy only, Python 3.8: part of the board agent).

One implementation serves both sides, so this module is part of the farm-agent contract (with
protocol.py): the farm's toolchains calibrate and check INT8 fidelity on these pictures (``farm.zoo.inputs``
re-exports this module), the agent measures on pictures from the same generator (another seed stream,
:func:`make_batches`), so an INT8 model is run on the kind of input it was calibrated for, and the farm
computes FP32 reference outputs on exactly the batches a run will feed (farm/accuracy/reference.py).
"""

from __future__ import annotations

import functools

import numpy as np

# torchvision / ImageNet preprocessing constants (RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_OCTAVES = ((2, 1.0), (4, 0.6), (8, 0.35), (16, 0.2))  # (grid cells, amplitude): luminance
_CHROMA_OCTAVES = ((2, 0.45), (4, 0.25))  # per-channel colour variation


@functools.lru_cache(maxsize=64)
def _interp_matrix(n: int, octaves: tuple[tuple[int, float], ...]) -> np.ndarray:
    """(n, K) matrix: side by side, for each octave, amplitude x linear interpolation of cells+1 grid
    values onto n pixels (cells capped at n - 1). ``M_y @ blockdiag(grids) @ M_x.T`` sums the octaves."""
    blocks = []
    for cells, amp in octaves:
        cells = max(1, min(cells, n - 1))
        pos = np.linspace(0.0, cells, n) if n > 1 else np.zeros(1)
        lo = np.minimum(np.floor(pos).astype(np.int64), cells - 1)
        frac = pos - lo
        m = np.zeros((n, cells + 1), dtype=np.float64)
        m[np.arange(n), lo] = 1.0 - frac
        m[np.arange(n), lo + 1] += frac
        blocks.append(amp * m)
    out = np.concatenate(blocks, axis=1)
    out.setflags(write=False)
    return out


def _block_grid(rng: np.random.Generator, sizes_y: list[int], sizes_x: list[int]) -> np.ndarray:
    grid = np.zeros((sum(sizes_y), sum(sizes_x)))
    y = x = 0
    for sy, sx in zip(sizes_y, sizes_x):
        grid[y : y + sy, x : x + sx] = rng.standard_normal((sy, sx))
        y, x = y + sy, x + sx
    return grid


def _image(rng: np.random.Generator, c: int, h: int, w: int) -> np.ndarray:
    octaves = _OCTAVES + _CHROMA_OCTAVES
    my, mx = _interp_matrix(h, octaves), _interp_matrix(w, octaves)
    sy = [max(1, min(cells, h - 1)) + 1 for cells, _ in octaves]
    sx = [max(1, min(cells, w - 1)) + 1 for cells, _ in octaves]
    n_lum = len(_OCTAVES)
    lum = _block_grid(rng, sy[:n_lum], sx[:n_lum])
    ky, kx = lum.shape
    chans = np.empty((c, h, w))
    for i in range(c):
        # One shared luminance grid plus this channel's own colour grids, interpolated in one product.
        grid = np.zeros((my.shape[1], mx.shape[1]))
        grid[:ky, :kx] = lum
        grid[ky:, kx:] = _block_grid(rng, sy[n_lum:], sx[n_lum:])
        chans[i] = my @ grid @ mx.T
    chans *= 1.0 / max(float(chans.std()), 1e-6)
    brightness = rng.uniform(0.35, 0.6)
    contrast = rng.uniform(0.15, 0.3)
    pixels = (brightness + contrast * chans).astype(np.float32)
    pixels += np.float32(0.03) * rng.standard_normal((c, h, w), dtype=np.float32)
    np.clip(pixels, 0.0, 1.0, out=pixels)
    if c == 3:
        mean = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
        std = np.array(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
    else:
        mean, std = np.float32(0.45), np.float32(0.225)
    return (pixels - mean) / std


def synthetic_inputs(shape: tuple[int, ...], count: int, seed: int, start: int = 0) -> np.ndarray:
    """``count`` deterministic synthetic samples, as one float32 array of shape ``(count, *shape)``.

    ``shape`` is the per-sample shape, without the batch dimension (``(C, H, W)`` for images).

    Sample ``k`` of the result is sample number ``start + k`` of the stream for ``seed``, and depends only on
    ``(shape, seed, start + k)``: ``synthetic_inputs(s, 10, 7)[4:]`` equals ``synthetic_inputs(s, 6, 7,
    start=4)``, so callers can generate a long stream in chunks.

    For 3-D shapes each sample is an image-like picture: smooth low-frequency noise (a luminance field
    of a few octaves of bilinearly interpolated random grids, plus per-channel colour variation), random
    brightness and contrast, a little pixel noise, clipped to [0, 1] and then normalised like
    ImageNet-preprocessed images (``(pixel - mean) / std`` with torchvision's RGB constants when C == 3,
    mean 0.45 / std 0.225 otherwise). Values are roughly mean 0, std 1, in about [-2.1, 2.7].
    For other ranks the samples are standard normal noise.
    """
    shape = tuple(int(d) for d in shape)
    if any(d < 1 for d in shape):
        raise ValueError("synthetic_inputs: every dimension must be positive, got %s" % (shape,))
    if count < 0 or start < 0 or seed < 0:
        raise ValueError("synthetic_inputs: count, start and seed must be non-negative")
    out = np.empty((count, *shape), dtype=np.float32)
    for k in range(count):
        rng = np.random.default_rng([seed, start + k])
        if len(shape) == 3:
            out[k] = _image(rng, *shape)
        else:
            out[k] = rng.standard_normal(shape, dtype=np.float32)
    return out


#: Seed stream of the pictures runs measure with (calibration uses the toolchain's seed, fidelity +1000).
RUN_SEED_OFFSET = 2000

#: Most bytes of distinct synthetic input kept in memory; past this, batches are reused cyclically.
MAX_INPUT_BYTES = 256 * 1024 * 1024


def make_batches(shape, dtype, count, seed=0, max_bytes=MAX_INPUT_BYTES):
    """``count`` deterministic input batches of ``shape``/``dtype``.

    Float image batches (N, C, H, W) are image-like pictures from :func:`synthetic_inputs` (the generator the INT8
    toolchains calibrate on), on their own seed stream (``RUN_SEED_OFFSET + seed``), so INT8 runs see the
    kind of input they were calibrated for but never the calibration pictures themselves. Other float
    inputs are standard normal, integer inputs uniform in [0, 128).

    At most ``max_bytes`` of distinct data is generated; beyond that, index ``i`` reuses batch
    ``i % distinct`` (same data every run for a given seed).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    distinct = max(1, min(int(count), int(max_bytes // max(1, nbytes))))
    rng = np.random.default_rng(seed)
    unique = []
    for index in range(distinct):
        if np.issubdtype(dtype, np.floating) and len(shape) == 4:
            batch = int(shape[0])
            arr = synthetic_inputs(shape[1:], batch, RUN_SEED_OFFSET + int(seed), start=index * batch)
            arr = arr.astype(dtype, copy=False)
        elif np.issubdtype(dtype, np.floating):
            arr = rng.standard_normal(size=shape, dtype=np.float32).astype(dtype, copy=False)
        elif dtype == np.bool_:
            arr = rng.integers(0, 2, size=shape).astype(np.bool_)
        else:
            arr = rng.integers(0, 128, size=shape).astype(dtype)
        unique.append(np.ascontiguousarray(arr))
    return [unique[i % distinct] for i in range(int(count))]
