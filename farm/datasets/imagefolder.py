"""A labelled image folder (torchvision's ImageFolder layout: ``<root>/<class>/<image>``): checked at submit,
decoded and preprocessed by the farm, packed into one content-addressed ``.npz`` for the boards.

Classes are the sub-folders, sorted by name; label ``i`` is the ``i``-th class (as torchvision does it), so
class folder order must match the model's output order. Images are decoded with Pillow (installed with
streamlit, a farm dependency), converted to RGB (or L for a 1-channel model), resized and normalised as the
sweep's ``dataset.preprocessing`` says, and laid out NCHW float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.artifacts import sha256_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".webp", ".tif", ".tiff")
PACK_FORMAT = 1  # bump when the pack's layout or the preprocessing code changes
PACK_FILE = "dataset.npz"


class DatasetError(ValueError):
    """A problem with the dataset folder; ``field`` is the sweep field it belongs to (e.g. "path")."""

    def __init__(self, message: str, field: str = "path") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Preprocessing:
    resize: int | None = None  # shorter side to this, then a centre crop to the model's size; None: resize
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"

    def as_dict(self) -> dict[str, Any]:
        return {
            "resize": self.resize,
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
        }


@dataclass(frozen=True)
class Folder:
    root: Path
    classes: tuple[str, ...]
    files: tuple[tuple[str, int], ...]  # (path relative to root, label)


#: Bounds on reading a dataset folder: directory entries looked at, and folders below the root (the
#: ImageFolder layout is one: <class>/<image>). ImageNet's validation set is 51,000 entries; a folder past
#: these is not a dataset (a typo such as `dataset: ~`), and walking it could take hours.
MAX_ENTRIES = 200_000
MAX_DEPTH = 8
#: An image larger than this is refused before it is decoded (PIL would take gigabytes for it).
MAX_PIXELS = 50_000_000


def scan(root: Path, *, max_entries: int = MAX_ENTRIES, max_depth: int = MAX_DEPTH) -> Folder:
    """The classes and image files of ``root``; DatasetError when it is missing, empty, has no images, has
    more than ``max_entries`` entries, nests deeper than ``max_depth`` or cannot be read. Symlinked class
    folders and image files are followed; symlinked folders inside a class are not (a loop never ends)."""
    root = Path(root)
    walk = _BoundedWalk(root, max_entries, max_depth)
    try:
        exists, is_dir = root.exists(), root.is_dir()
    except (OSError, ValueError) as exc:  # EACCES on a parent, a NUL in the path
        raise DatasetError(f"cannot read dataset folder {root}: {exc}") from None
    if not exists:
        raise DatasetError(f"dataset folder not found: {root}")
    if not is_dir:
        raise DatasetError(f"dataset is not a folder: {root}")
    classes = sorted(
        name for name, kind in walk.entries(root) if kind in ("dir", "dir-link") and not name.startswith(".")
    )
    if not classes:
        raise DatasetError(
            f"dataset folder {root} has no class folders (expected the ImageFolder layout <class>/<image>)"
        )
    files = []
    for label, name in enumerate(classes):
        # sorted by path parts, as sorted(Path.rglob("*")) did: the pack's content key depends on the order
        for parts in sorted(walk.files(root / name, (name,), 1)):
            if Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES and not parts[-1].startswith("."):
                files.append(("/".join(parts), label))
    if not files:
        raise DatasetError(
            f"dataset folder {root} has 0 images in its {len(classes)} class folders "
            f"(looked for {', '.join(IMAGE_SUFFIXES)})"
        )
    return Folder(root, tuple(classes), tuple(files))


class _BoundedWalk:
    """os.scandir with a budget of entries and a depth bound; every OSError becomes a DatasetError."""

    def __init__(self, root: Path, max_entries: int, max_depth: int) -> None:
        self.root, self.max_entries, self.max_depth = root, max_entries, max_depth
        self.seen = 0

    def entries(self, folder: Path) -> list[tuple[str, str]]:
        """(name, kind) of each entry of ``folder``; kind: dir, dir-link (a symlinked folder), file (a
        regular file, or a symlink to one) or other."""
        out = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    self.seen += 1
                    if self.seen > self.max_entries:
                        raise DatasetError(
                            f"dataset folder {self.root} has more than {self.max_entries:,} entries: "
                            "not an image folder (expected <class>/<image>)"
                        )
                    out.append((entry.name, _kind(entry)))
        except OSError as exc:
            raise DatasetError(f"cannot read {folder}: {exc.strerror or exc}") from None
        return out

    def files(self, folder: Path, parts: tuple[str, ...], depth: int) -> list[tuple[str, ...]]:
        """Path parts (relative to the root) of every file under ``folder``, ``depth`` folders below it."""
        if depth > self.max_depth:
            raise DatasetError(
                f"dataset folder {self.root} nests deeper than {self.max_depth} folders (at {folder}): "
                "expected <class>/<image>"
            )
        found: list[tuple[str, ...]] = []
        for name, kind in self.entries(folder):
            if kind == "dir":  # a symlinked folder inside a class is not followed (as Path.rglob did)
                found.extend(self.files(folder / name, (*parts, name), depth + 1))
            elif kind == "file":
                found.append((*parts, name))
        return found


def _kind(entry: os.DirEntry) -> str:
    try:
        if entry.is_dir():
            return "dir-link" if entry.is_symlink() else "dir"
        return "file" if entry.is_file() else "other"
    except OSError:  # a dangling or unreadable entry: not an image
        return "other"


def _open(path: Path, channels: int):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise DatasetError(
                    f"image {path} is {width}x{height}, more than {MAX_PIXELS:,} pixels: resize it first"
                )
            img.load()
            return img.convert("L" if channels == 1 else "RGB")
    except DatasetError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"unreadable image {path}: {exc}") from None
    except Exception as exc:  # any other decoder failure (DecompressionBombError, SyntaxError, ...)
        raise DatasetError(f"unreadable image {path}: {type(exc).__name__}: {exc}") from None


def check(root: Path, num_classes: int | None = None) -> Folder:
    """Everything a submit can check: the folder, its classes against the model's outputs, and that every
    image decodes."""
    folder = scan(root)
    if num_classes is not None and len(folder.classes) > num_classes:
        raise DatasetError(
            f"dataset has {len(folder.classes)} classes but the model has {num_classes} outputs"
        )
    for rel, _ in folder.files:
        _open(folder.root / rel, 3)
    return folder


def load_image(path: Path, shape: tuple[int, int, int], prep: Preprocessing) -> np.ndarray:
    """One image as the model's input: float32 (C, H, W)."""
    from PIL import Image

    c, h, w = shape
    img = _open(path, c)
    if prep.resize:
        scale = prep.resize / min(img.size)
        img = img.resize(
            (max(w, round(img.size[0] * scale)), max(h, round(img.size[1] * scale))), Image.BILINEAR
        )
        left, top = (img.size[0] - w) // 2, (img.size[1] - h) // 2
        img = img.crop((left, top, left + w, top + h))
    elif img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    if c == 1:
        x = x[None, :, :]
        mean = np.float32(np.mean(prep.mean))
        std = np.float32(np.mean(prep.std))
        return (x - mean) / std
    x = x.transpose(2, 0, 1)  # RGB, CHW
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(3, 1, 1)
    x = (x - mean) / std
    return x[::-1].copy() if prep.channel_order == "BGR" else x


@dataclass(frozen=True)
class Pack:
    key: str  # content key: what went into it
    path: Path
    file_sha256: str
    samples: int
    classes: tuple[str, ...]


def pack_key(folder: Folder, shape: tuple[int, int, int], prep: Preprocessing) -> str:
    ident = {
        "format": PACK_FORMAT,
        "shape": list(shape),
        "preprocessing": prep.as_dict(),
        "classes": list(folder.classes),
        "files": [[rel, label, sha256_file(folder.root / rel)] for rel, label in folder.files],
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def build_pack(root: Path, shape: tuple[int, int, int], prep: Preprocessing, cache_dir: Path) -> Pack:
    """The dataset packed for ``shape`` (C, H, W): ``<cache_dir>/<key[:2]>/<key>/dataset.npz`` with
    ``inputs`` (N, C, H, W) float32, ``labels`` (N,) int64 and ``classes``. Built once per content key (the
    images' bytes, the classes, the shape and the preprocessing), reused afterwards."""
    folder = scan(Path(root))
    key = pack_key(folder, shape, prep)
    final = Path(cache_dir) / key[:2] / key
    path = final / PACK_FILE
    if not path.is_file():
        inputs = np.stack([load_image(folder.root / rel, shape, prep) for rel, _ in folder.files])
        labels = np.array([label for _, label in folder.files], dtype=np.int64)
        save_npz_entry(final, PACK_FILE, inputs=inputs, labels=labels, classes=np.array(folder.classes))
    return Pack(key, path, sha256_file(path), len(folder.files), folder.classes)


def save_npz_entry(final: Path, name: str, **arrays: Any) -> None:
    """Write ``<final>/<name>`` (an .npz of ``arrays``) as a cache entry: staged in a sibling folder and
    renamed into place, so a crash or a concurrent writer never leaves a half-written entry (the first
    complete one wins)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name[:8]}-", dir=final.parent))
    try:
        with open(staging / name, "wb") as fh:
            np.savez(fh, **arrays)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / name).is_file():
                raise
    finally:
        with contextlib.suppress(OSError):
            for leftover in staging.glob("*"):
                leftover.unlink()
            staging.rmdir()
