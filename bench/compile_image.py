"""What a container compile host costs (issue 16): the compile image built from nothing, then cached, and
one compile through the Docker runner (podman, over a real sshd) against the same compile in-process.

    .venv/bin/python bench/compile_image.py [--storage vfs|overlay] [--repeats 3] [--keep]

It builds into a fresh FARM_CONTAINERS_DIR of its own (the machine's cached image is left alone), so the
first figure is what `make test` pays on a new machine; ``--keep`` keeps that folder. Prints its figures;
docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import support  # noqa: F401  (puts the checkout first on sys.path)

from farm.config import load_settings
from farm.containers.image import ensure_image
from farm.containers.podman import engine_problem, local_engine, run
from farm.lab.loopback import SshdFactory, ssh_host
from farm.lab.sshd import ClientKey
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.runners import DockerRunner, LocalRunner
from farm.zoo.tiny import tiny_model


def _timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--storage", choices=["vfs", "overlay"], default="vfs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    problem = engine_problem()
    if problem:
        print(f"no container engine here: {problem}")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="farm-bench-image-"))
    os.environ["FARM_CONTAINERS_DIR"] = str(tmp / "containers")
    os.environ["FARM_CONTAINERS_STORAGE"] = args.storage
    settings = load_settings()
    factory = None
    try:
        fresh = ensure_image(settings, say=lambda line: print(f"  {line}", flush=True))
        print(f"image from nothing ({args.storage}): {fresh.seconds:.1f} s ({', '.join(fresh.built)})")
        cached = ensure_image(settings)
        print(f"image already current: {cached.seconds:.2f} s (built: {cached.built or 'nothing'})")
        rebuilt = ensure_image(settings, rebuild=True)
        print(
            f"farm-code layer rebuilt: {rebuilt.seconds:.1f} s; same image id: {rebuilt.image_id == fresh.image_id}"
        )
        store = tmp / "containers" / args.storage
        size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"image store on disk: {size / 2**20:.0f} MiB")

        key = tmp / "ssh" / "id"
        key.parent.mkdir()
        factory = SshdFactory(tmp / "sshd", ClientKey.create(key, "bench"))
        (server,) = factory.start(1)
        model = tmp / "tiny.onnx"
        model.write_bytes(tiny_model(batch=1).SerializeToString())
        transport = ssh_host(server, name="bench", role="compile host")
        quant = QuantConfig(calibration_samples=16)
        with DockerRunner(transport, host_name="bench", docker=local_engine(settings)) as docker:
            docker.toolchain_info("onnxruntime_cpu")  # connect and ship the guard once, as a worker does
            out = tmp / "out"
            for precision in ("fp32", "int8"):

                def in_container(p: str = precision) -> None:
                    docker.compile("onnxruntime_cpu", model, p, quant, out)

                def in_process(p: str = precision) -> None:
                    # a fresh INT8 cache each time: the container has none either (like for like)
                    os.environ["FARM_QUANT_CACHE"] = tempfile.mkdtemp(dir=tmp, prefix="quant-")
                    LocalRunner().compile("onnxruntime_cpu", model, p, quant, out)

                inside = [_timed(in_container) for _ in range(args.repeats)]
                local = [_timed(in_process) for _ in range(args.repeats)]
                a, b = statistics.median(inside), statistics.median(local)
                print(
                    f"tiny model {precision}: container {a:.2f} s, in-process {b:.2f} s median of "
                    f"{args.repeats}: +{a - b:.2f} s per compile"
                )
    finally:
        if factory is not None:
            factory.stop_all()
        if not args.keep:
            run(local_engine(settings), "rmi", "--all", "--force", timeout_s=600)
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
