"""The farm's compile image, built on this machine without pulling anything (``farm lab image build``).

Two steps, each cached:

1. **The base** (``farm/compile-base:<recipe hash>``): a Debian root filesystem from Debian's own packages
   (mmdebstrap, ``minbase`` + ``python3``) with the Python packages the toolchain code imports installed
   into it from PyPI wheels, pinned to the versions this machine's farm runs with (so a compile in the
   image and one in a worker agree). The recipe (suite, mirror, packages, pins, epoch, this builder's
   version) is hashed; the root filesystem tarball is kept under ``FARM_CONTAINERS_DIR`` by that hash and
   imported with ``podman import``. A different recipe builds a new base; the same one never rebuilds.
2. **The image** (``farm/compile:<onnxruntime version>``, :func:`farm.containers.names.compile_image`): the
   base plus the farm package (``/opt/farm/farm``, links resolved), built with ``podman build`` at a fixed
   timestamp and labelled with the code's hash. Only a change to farm's code rebuilds it (seconds).

Reproducible as far as the archives allow: ``SOURCE_DATE_EPOCH`` is fixed (mmdebstrap's tarball and the
build's timestamps), every wheel is pinned; what Debian's bookworm suite serves moves with its point
releases, so the image records ``dpkg -l`` (``/opt/farm/packages.txt``). The image's id and digest, as the
compile host reports them, are every artifact's provenance (farm/workers/toolchains/runners/docker.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from farm.config import Settings
from farm.containers.engine import ContainerEngine, image_id
from farm.containers.names import compile_image
from farm.containers.podman import engine_problem, local_engine, run, storage_driver
from farm.errors import FarmError

__all__ = ["BuiltImage", "ImageError", "ensure_image", "image_status", "recipe", "recipe_hash"]

BUILDER_VERSION = 1  # bump when this module changes what it builds
BASE_REPOSITORY = "farm/compile-base"
SUITE = "bookworm"  # its python3 is 3.11: the wheels below are for cp311
MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = ("python3",)
SOURCE_DATE_EPOCH = 1767225600  # 2026-01-01T00:00:00Z
PYTHON = "3.11"
#: What the toolchain code imports (found with ``python -X importtime`` on each toolchain's CLI); their
#: own requirements are added and everything pinned to this machine's versions (:func:`python_pins`).
PYTHON_ROOTS = (
    "onnxruntime",
    "onnx",
    "numpy",
    "sympy",
    "PyYAML",
    "pydantic",
    "pydantic-settings",
    "SQLAlchemy",
    "platformdirs",
    "python-dotenv",
)
FARM_PREFIX = "/opt/farm"
BUILD_TIMEOUT_S = 1800.0


class ImageError(FarmError):
    """The compile image cannot be built or used here (the message says what to do)."""


@dataclass(frozen=True)
class BuiltImage:
    ref: str  # farm/compile:<ort version>
    image_id: str
    digest: str | None
    recipe_hash: str
    code_hash: str
    built: list[str]  # what this call built: "base", "image" (empty: both were there)
    seconds: float


# ---------------------------------------------------------------------------------------------- the recipe


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    from packaging.requirements import Requirement

    names = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(req.name)
    return names


def python_pins(roots: tuple[str, ...] = PYTHON_ROOTS) -> dict[str, str]:
    """``{distribution: version}`` for ``roots`` and everything they require, as installed here."""
    pins: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in pins:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ImageError(
                f"the compile image pins what this machine runs, but {name} is not installed here"
            ) from None
        pins[key] = dist.version
        todo += _requirement_names(dist)
    return dict(sorted(pins.items()))


def recipe() -> dict:
    """Everything that decides the base image's content: its hash names the base."""
    return {
        "builder": BUILDER_VERSION,
        "suite": SUITE,
        "mirror": MIRROR,
        "variant": "minbase",
        "debian_packages": list(DEBIAN_PACKAGES),
        "source_date_epoch": SOURCE_DATE_EPOCH,
        "arch": platform.machine(),
        "python": PYTHON,
        "pins": python_pins(),
    }


def recipe_hash(spec: dict | None = None) -> str:
    text = json.dumps(spec or recipe(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def farm_package_dir() -> Path:
    import farm

    return Path(farm.__file__).resolve().parent


def _code_files(root: Path) -> Iterator[tuple[str, Path]]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):  # through farm/workers etc. (links)
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [Path(folder) / name for name in files if not name.endswith((".pyc", ".pyo"))]
    for path in sorted(found):
        rel = path.relative_to(root)
        if rel.parts[0] == "workers" and "docker" in rel.parts:  # Dockerfiles: not part of the code
            continue
        yield rel.as_posix(), path


def code_hash(root: Path | None = None) -> str:
    """The farm code the image carries: every file of the package (paths and bytes)."""
    h = hashlib.sha256()
    for rel, path in _code_files(root or farm_package_dir()):
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- building


@contextlib.contextmanager
def _build_lock(base: Path) -> Iterator[None]:
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two builds at once would do the work twice
        yield


def _check(done: subprocess.CompletedProcess[bytes], what: str) -> str:
    if done.returncode != 0:
        err = (done.stderr or b"").decode(errors="replace").strip()[-2000:]
        raise ImageError(f"{what} failed (exit {done.returncode}): {err}")
    return (done.stdout or b"").decode(errors="replace")


@dataclass(frozen=True)
class _Inspected:
    image_id: str
    digest: str | None
    labels: dict[str, str]


def _inspect(engine: ContainerEngine, ref: str) -> _Inspected | None:
    """The image's id, digest and labels in one engine call; None when the store does not have it."""
    done = run(
        engine, "image", "inspect", "--format", "{{.Id}} {{.Digest}} {{json .Labels}}", ref, timeout_s=60
    )
    if done.returncode != 0:
        return None
    raw_id, digest, labels = (done.stdout.decode().strip().split(" ", 2) + ["", ""])[:3]
    try:
        parsed = json.loads(labels or "null") or {}
    except ValueError:
        parsed = {}
    return _Inspected(image_id(raw_id) or "", digest or None, parsed)


def _rootfs(settings: Settings, spec: dict, digest: str, say: Callable[[str], None]) -> Path:
    """The base's root filesystem tarball, built by mmdebstrap unless the cache holds it."""
    cache = Path(settings.containers_dir) / "rootfs"
    tar = cache / f"{BASE_REPOSITORY.replace('/', '-')}-{digest}.tar"
    if tar.exists():
        return tar
    if shutil.which("mmdebstrap") is None:
        raise ImageError("mmdebstrap is not installed (apt-get install mmdebstrap; `make test` does it)")
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("*.tar"):  # one base per machine: an older recipe's tarball goes
        old.unlink()
    pins = [f"{name}=={version}" for name, version in spec["pins"].items()]
    site = f"$1/usr/local/lib/python{PYTHON}/dist-packages"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    pip += ["--no-deps", "--only-binary=:all:", "--target", site, *pins]
    pip_hook = " ".join(shlex.quote(w) for w in pip).replace(shlex.quote(site), f'"{site}"')
    trim = 'rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/* "$1"/var/cache/apt/*'
    record = f'mkdir -p "$1{FARM_PREFIX}" && chroot "$1" dpkg -l > "$1{FARM_PREFIX}/packages.txt"'
    argv = [
        "mmdebstrap",
        "--quiet",
        "--format=tar",
        f"--variant={spec['variant']}",
        f"--include={','.join(spec['debian_packages'])}",
        "--aptopt=Acquire::Check-Valid-Until false",
        f"--customize-hook={pip_hook}",
        f"--customize-hook={record}",
        f"--customize-hook={trim}",
        SUITE,
        str(tar) + ".part",
        MIRROR,
    ]
    say(f"building the compile image's root filesystem (mmdebstrap {SUITE} + {len(pins)} pinned wheels)")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
    done = subprocess.run(argv, capture_output=True, timeout=BUILD_TIMEOUT_S, env=env, check=False)
    _check(done, "mmdebstrap")
    Path(str(tar) + ".part").replace(tar)
    return tar


def _base(settings: Settings, engine: ContainerEngine, say: Callable[[str], None]) -> tuple[str, str, bool]:
    """(the base's ref, the recipe hash, built now?)."""
    spec = recipe()
    digest = recipe_hash(spec)
    ref = f"{BASE_REPOSITORY}:{digest}"
    if _inspect(engine, ref) is not None:
        return ref, digest, False
    tar = _rootfs(settings, spec, digest, say)
    say(f"importing {tar.name} as {ref}")
    changes = [
        f"ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH={FARM_PREFIX}",
        "WORKDIR /work",
        f"LABEL farm.recipe={digest}",
    ]
    argv = ["import"]
    for change in changes:
        argv += ["--change", change]
    _check(run(engine, *argv, str(tar), ref, timeout_s=BUILD_TIMEOUT_S), f"podman import of {tar}")
    (Path(settings.containers_dir) / "recipe.json").write_text(json.dumps(spec, indent=2) + "\n")
    return ref, digest, True


CONTAINERFILE = """\
FROM {base}
COPY farm {prefix}/farm
ENV PYTHONPATH={prefix} PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/work
WORKDIR /work
LABEL farm.recipe={recipe} farm.code={code} \\
      org.opencontainers.image.title="farm compile image" \\
      org.opencontainers.image.description="python3 -m farm.workers.toolchains.cli compile --toolchain ..."
"""


def _image(
    engine: ContainerEngine, base_ref: str, digest: str, code: str, say: Callable[[str], None]
) -> tuple[_Inspected, bool]:
    """The image (inspected) and whether it was built now."""
    ref = compile_image()
    found = _inspect(engine, ref)
    if (
        found is not None
        and found.labels.get("farm.code") == code
        and found.labels.get("farm.recipe") == digest
    ):
        return found, False
    say(f"building {ref} (farm code {code})")
    with tempfile.TemporaryDirectory(prefix="farm-image-") as tmp:
        context = Path(tmp)
        for rel, path in _code_files(farm_package_dir()):
            dest = context / "farm" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        (context / "Containerfile").write_text(
            CONTAINERFILE.format(base=f"localhost/{base_ref}", prefix=FARM_PREFIX, recipe=digest, code=code)
        )
        argv = ["build", "--pull=never", "--network=none", "--timestamp", str(SOURCE_DATE_EPOCH)]
        argv += ["--tag", ref, "--file", str(context / "Containerfile"), str(context)]
        _check(run(engine, *argv, timeout_s=BUILD_TIMEOUT_S), f"podman build of {ref}")
    run(engine, "image", "prune", "--force", timeout_s=300)  # the previous build of the tag, untagged
    _verify(engine, ref)
    built = _inspect(engine, ref)
    if built is None:
        raise ImageError(f"{ref} is not in the store after its build")
    return built, True


def _verify(engine: ContainerEngine, ref: str) -> None:
    """The image runs the toolchain CLI, and its ONNX Runtime is this machine's."""
    done = run(
        engine,
        "run",
        "--rm",
        "--network",
        "none",
        ref,
        "python3",
        "-m",
        "farm.workers.toolchains.cli",
        "version",
        "--toolchain",
        "onnxruntime_cpu",
        timeout_s=300,
    )
    out = _check(done, f"running the toolchain CLI in {ref}")
    try:
        version = json.loads(out.strip().splitlines()[-1])["version"]
    except (IndexError, ValueError, KeyError):
        raise ImageError(f"{ref}: the toolchain CLI printed no version: {out[-500:]}") from None
    expected = f"onnxruntime-{metadata.version('onnxruntime')}"
    if version != expected:
        raise ImageError(f"{ref} reports {version}, this machine runs {expected}")


def ensure_image(
    settings: Settings, *, rebuild: bool = False, say: Callable[[str], None] = lambda _: None
) -> BuiltImage:
    """The compile image in this machine's podman store, built (or rebuilt) only where its recipe or the
    farm's code changed; ``rebuild`` forces step 2 (and step 1 when its tarball is removed too)."""
    problem = engine_problem()
    if problem:
        raise ImageError(f"no container engine here: {problem}")
    started = time.perf_counter()
    engine = local_engine(settings)
    code = code_hash()
    with _build_lock(Path(settings.containers_dir)):
        if rebuild:
            run(engine, "rmi", "--force", compile_image(), timeout_s=300)
        base_ref, digest, base_built = _base(settings, engine, say)
        image, image_built = _image(engine, base_ref, digest, code, say)
    built = [name for name, did in (("base", base_built), ("image", image_built)) if did]
    return BuiltImage(
        compile_image(), image.image_id, image.digest, digest, code, built, time.perf_counter() - started
    )


def image_status(settings: Settings) -> dict:
    """What ``farm lab image show`` prints: the engine, the image if present, and whether it is current."""
    problem = engine_problem()
    doc: dict = {"image": compile_image(), "engine_problem": problem, "present": False}
    if problem:
        return doc
    engine = local_engine(settings)
    found = _inspect(engine, compile_image())
    doc["engine"] = engine.argv()
    doc["store"] = str(Path(settings.containers_dir) / storage_driver(settings))
    if found is None:
        return doc
    doc.update(
        present=True,
        image_id=found.image_id,
        digest=found.digest,
        recipe=found.labels.get("farm.recipe"),
        code=found.labels.get("farm.code"),
        current_recipe=recipe_hash(),
        current_code=code_hash(),
    )
    doc["current"] = doc["recipe"] == doc["current_recipe"] and doc["code"] == doc["current_code"]
    return doc
