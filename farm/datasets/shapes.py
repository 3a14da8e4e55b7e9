"""A procedural labelled image set, generated deterministically in code: small RGB pictures of shapes and
patterns on a background, one class per kind of picture.

Every image depends only on ``(seed, class, index)`` through ``numpy.random.default_rng([seed, class,
index])``, so the set is the same on every machine and any image can be regenerated alone. Shapes vary in
position, size, colour, background colour and pixel noise, so a classifier has to learn the shape, not a
colour or a place. :func:`write_image_folder` writes the ImageFolder layout (``<root>/<class>/<name>.png``)
that a sweep's ``dataset:`` field reads (PNG through Pillow, lossless).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Sorted by name: an ImageFolder's labels are its class folders in name order, and so are the model's outputs.
CLASSES: tuple[str, ...] = (
    "checker",
    "circle",
    "cross",
    "hstripes",
    "ring",
    "square",
    "triangle",
    "vstripes",
)
IMAGE_SIZE = 32
#: Held-out images are drawn with this seed offset: they are never seen in training.
HELDOUT_SEED_OFFSET = 1_000_003


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    return y, x


def _circle(rng, y, x, cy, cx, r):
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def _square(rng, y, x, cy, cx, r):
    h = r * 0.85
    return (np.abs(y - cy) <= h) & (np.abs(x - cx) <= h)


def _triangle(rng, y, x, cy, cx, r):
    # upright isosceles triangle: apex at the top, base at the bottom
    top, bottom = cy - r, cy + r * 0.8
    half = (y - top) / (bottom - top) * r
    return (y >= top) & (y <= bottom) & (np.abs(x - cx) <= half)


def _cross(rng, y, x, cy, cx, r):
    w = max(1.2, r * 0.3)
    return ((np.abs(y - cy) <= w) & (np.abs(x - cx) <= r)) | ((np.abs(x - cx) <= w) & (np.abs(y - cy) <= r))


def _ring(rng, y, x, cy, cx, r):
    d2 = (y - cy) ** 2 + (x - cx) ** 2
    inner = r * rng.uniform(0.45, 0.65)
    return (d2 <= r * r) & (d2 >= inner * inner)


def _stripes(axis):
    def draw(rng, y, x, cy, cx, r):
        period = rng.uniform(4.0, 7.0)
        phase = rng.uniform(0.0, period)
        coord = y if axis == 0 else x
        return ((coord + phase) % period) < period / 2

    return draw


def _checker(rng, y, x, cy, cx, r):
    cell = rng.uniform(3.5, 6.5)
    oy, ox = rng.uniform(0.0, cell, size=2)
    return ((np.floor((y + oy) / cell) + np.floor((x + ox) / cell)) % 2) == 0


_DRAW: dict[str, Callable] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "hstripes": _stripes(0),
    "vstripes": _stripes(1),
    "ring": _ring,
    "checker": _checker,
}


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A background and a foreground colour that differ by at least 0.35 in mean brightness or 0.5 in
    some channel, so every shape is visible."""
    while True:
        bg, fg = rng.uniform(0.0, 1.0, size=3), rng.uniform(0.0, 1.0, size=3)
        if abs(bg.mean() - fg.mean()) >= 0.35 or np.abs(bg - fg).max() >= 0.5:
            return bg, fg


def make_image(label: int, index: int, seed: int = 0, size: int = IMAGE_SIZE) -> np.ndarray:
    """Image ``index`` of class ``label`` for ``seed``: uint8, (size, size, 3), RGB."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    rng = np.random.default_rng([int(seed), int(label), int(index)])
    y, x = _grid(size)
    r = rng.uniform(0.22, 0.38) * size
    margin = r * 0.9
    cy, cx = rng.uniform(margin, size - margin, size=2)
    mask = _DRAW[CLASSES[label]](rng, y, x, cy, cx, r)
    bg, fg = _colours(rng)
    img = np.where(mask[..., None], fg, bg)
    img = img + rng.normal(0.0, 0.04, size=img.shape)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def generate(per_class: int, seed: int = 0, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class: ``(images uint8 (N, size, size, 3), labels int64 (N,))``,
    class by class in :data:`CLASSES` order."""
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    images = np.empty((per_class * len(CLASSES), size, size, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    for n, label in enumerate(labels):
        images[n] = make_image(int(label), n % per_class, seed, size)
    return images, labels


def write_image_folder(root: str | Path, per_class: int = 40, seed: int = HELDOUT_SEED_OFFSET) -> list[Path]:
    """Writes ``<root>/<class>/<class>_<index>.png`` for every class; returns the files, sorted.

    The default seed is the held-out one: the images the zoo's ``shapes_net`` was trained on (seed 0)
    are not in the folder, so its accuracy there is a held-out figure."""
    from PIL import Image  # Pillow comes with streamlit (a farm dependency)

    root = Path(root)
    images, labels = generate(per_class, seed)
    written = []
    for n, (img, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / CLASSES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{CLASSES[int(label)]}_{n % per_class:04d}.png"
        Image.fromarray(img, mode="RGB").save(path, format="PNG", optimize=False)
        written.append(path)
    return sorted(written)
