"""The Docker runner against a real container engine: this machine's podman (farm/containers/podman.py)
with the farm's compile image (farm/containers/image.py), on a compile host reached over a real sshd.

Nothing is faked: every compile here starts a container. Where no engine can run (no podman or runc, not
root) the tests skip and say why; ``make test`` installs the engine and builds the image once per machine.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from farm.config import load_settings
from farm.containers.engine import ComputeLimits, ContainerEngine
from farm.containers.image import ensure_image
from farm.containers.names import compile_image
from farm.containers.podman import engine_problem, local_engine, run
from farm.errors import InfraError, ModelError
from farm.lab.loopback import ssh_host
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.runners import DockerRunner, artifact_columns
from farm.workers.toolchains.runners.docker import docker_run_argv
from tests.small_fs import fill, small_tmpfs
from tests.sshd import SshdServer


@pytest.fixture(scope="module")
def engine() -> ContainerEngine:
    problem = engine_problem()
    if problem:
        pytest.skip(f"no container engine on this machine: {problem}")
    settings = load_settings()
    ensure_image(settings)  # seconds when `make test` built it already
    return local_engine(settings)


@pytest.fixture
def make_runner(engine: ContainerEngine, close_after) -> Callable[..., DockerRunner]:
    def make(server: SshdServer, work_dir: Path | None = None, **kwargs: object) -> DockerRunner:
        kwargs.setdefault("docker", engine)
        transport = ssh_host(server, name="podman-1", work_dir=work_dir, role="compile host")
        return close_after(DockerRunner(transport, host_name="podman-1", **kwargs))  # type: ignore[arg-type]

    return make


def _containers(engine: ContainerEngine) -> list[str]:
    listed = run(engine, "ps", "-a", "--filter", "name=farm-compile-", "--format", "{{.Names}}", timeout_s=60)
    return listed.stdout.decode().split()


def test_a_compile_runs_in_the_image_and_records_its_digest(
    make_runner, sshd_host, tiny_path, tmp_path, engine
):
    runner = make_runner(sshd_host, limits=ComputeLimits(memory_mb=2048, cpus=1))

    info = runner.toolchain_info("onnxruntime_cpu")
    result = runner.compile(
        "onnxruntime_cpu", tiny_path, "int8", QuantConfig(calibration_samples=16), tmp_path / "o"
    )

    assert info.version == f"onnxruntime-{ort.__version__}" == result.toolchain_version
    described = result.runner
    assert described["runner"] == "docker" and described["image"] == compile_image()
    assert described["image_digest"].startswith("sha256:") and described["image_id"].startswith("sha256:")
    assert artifact_columns(described)["toolchain_image"] == f"{compile_image()}@{described['image_digest']}"
    # The INT8 artifact the container wrote runs here and has the QDQ nodes a quantised model has.
    model = onnx.load(result.path)
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = np.zeros(session.get_inputs()[0].shape, dtype=np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape[0] == 1
    assert not (sshd_host.work_dir / "compile").exists() or not any(
        (sshd_host.work_dir / "compile").iterdir()
    )
    assert _containers(engine) == []  # --rm


def test_an_emulator_toolchain_compiles_in_the_same_image(make_runner, sshd_host, tiny_path, tmp_path):
    runner = make_runner(sshd_host)

    result = runner.compile(
        "dpu_emulator@zcu104", tiny_path, "int8", QuantConfig(calibration_samples=16), tmp_path
    )

    meta = {p.key: p.value for p in onnx.load(result.path).metadata_props}
    assert "farm.emulation" in meta and json.loads(meta["farm.emulation"])  # the timing profile it predicted
    assert result.toolchain == "dpu_emulator" and result.runner["image"] == compile_image()


def test_a_model_the_toolchain_rejects_is_a_model_error(make_runner, sshd_host, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an ONNX model")
    runner = make_runner(sshd_host)

    with pytest.raises(ModelError):
        runner.compile("onnxruntime_cpu", bad, "fp32", QuantConfig(), tmp_path / "o")


class _SlowRunner(DockerRunner):
    """The real runner and engine, with a container that outlives any time limit."""

    def compile_command(self, toolchain_name, job_id, job_dir, precision, quant):  # noqa: ANN001
        argv = super().compile_command(toolchain_name, job_id, job_dir, precision, quant)
        image_at = argv.index(compile_image())
        return [*argv[: image_at + 1], "sleep", "300"]


def test_a_container_past_its_time_limit_is_killed_and_removed(engine, sshd_host, tiny_path, tmp_path):
    transport = ssh_host(sshd_host, name="podman-1", role="compile host")
    runner = _SlowRunner(transport, host_name="podman-1", timeout_s=4, docker=engine)
    try:
        runner.toolchain_info("onnxruntime_cpu")  # the version query is not the slow part
        with pytest.raises(InfraError, match=r"did not finish within 4 s: killed") as err:
            runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")
    finally:
        runner.close()
    assert str(err.value).startswith("compile host podman-1 (")  # named as what it is, not as a board
    assert _containers(engine) == []  # removed by name after the client was killed


def test_a_container_over_its_memory_limit_is_reported_as_such(make_runner, sshd_host, tiny_path, tmp_path):
    runner = make_runner(sshd_host, limits=ComputeLimits(memory_mb=24))  # onnxruntime alone needs more

    with pytest.raises(
        InfraError, match=r"killed \(exit 137\), most likely at its container memory limit of 24 MB"
    ):
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")


def test_an_image_the_host_lacks_is_named_and_nothing_is_sent(
    make_runner, sshd_host, tiny_path, tmp_path, monkeypatch
):
    runner = make_runner(sshd_host)
    monkeypatch.setattr(DockerRunner, "image_for", staticmethod(lambda name: "farm/not-built-here:0"))

    with pytest.raises(
        InfraError, match=r"image farm/not-built-here:0 is not on the host \(the runner never pulls\)"
    ):
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")
    assert runner.transport.bytes_uploaded == 0


def test_a_host_without_the_engine_is_named(make_runner, sshd_host, tiny_path, tmp_path, engine):
    missing = engine.model_copy(update={"command": "/nonexistent/bin/podman"})
    runner = make_runner(sshd_host, docker=missing)

    with pytest.raises(InfraError, match=r"no container engine: `/nonexistent/bin/podman` is not installed"):
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")


class _FillingRunner(DockerRunner):
    """The disk fills up after the inputs are uploaded, before the container writes the artifact."""

    small: Path

    def compile_command(self, toolchain_name, job_id, job_dir, precision, quant):  # noqa: ANN001
        fill(self.small)
        return super().compile_command(toolchain_name, job_id, job_dir, precision, quant)


def test_a_full_disk_on_the_compile_host_is_named(engine, sshd_host, tiny_path, tmp_path):
    with small_tmpfs(tmp_path / "small", size_kib=4096) as small:
        (small / "work").mkdir()
        transport = ssh_host(sshd_host, name="podman-1", work_dir=small / "work", role="compile host")
        runner = _FillingRunner(transport, host_name="podman-1", docker=engine)
        runner.small = small
        try:
            runner.toolchain_info("onnxruntime_cpu")  # the command guard is on the host before the disk fills
            with pytest.raises(InfraError) as err:
                runner.compile(
                    "onnxruntime_cpu", tiny_path, "int8", QuantConfig(calibration_samples=16), tmp_path / "o"
                )
        finally:
            runner.close()
    assert "compile host podman-1: no space left on device during the compile" in str(err.value)
    assert "(the job folder)" in str(err.value)


def test_a_full_disk_before_the_upload_is_named(make_runner, sshd_host, tiny_path, tmp_path):
    with small_tmpfs(tmp_path / "small", size_kib=256) as small:
        (small / "work").mkdir()
        fill(small)
        runner = make_runner(sshd_host, work_dir=small / "work")

        with pytest.raises(InfraError, match=r"no space left on podman-1:\S+ \(0 MB free"):
            runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")


def test_the_run_argv_carries_the_engine_and_limits():
    engine = ContainerEngine(
        command="podman", options=["--runtime", "runc"], env={"CONTAINERS_CONF": "/etc/c.conf"}
    )
    argv = docker_run_argv(
        "farm/compile:1",
        ["true"],
        name="farm-compile-x",
        docker=engine,
        limits=ComputeLimits(memory_mb=512, cpus=1.5),
    )
    assert argv[:5] == ["env", "CONTAINERS_CONF=/etc/c.conf", "podman", "--runtime", "runc"]
    assert argv[5:7] == ["run", "--rm"]
    assert argv[argv.index("--memory") : argv.index("--memory") + 6] == [
        "--memory",
        "512m",
        "--memory-swap",
        "512m",
        "--cpus",
        "1.5",
    ]
    with pytest.raises(ValueError):
        ContainerEngine(options=["--storage-driver vfs; rm -rf /"])
    with pytest.raises(ValueError):
        ContainerEngine(env={"CONTAINERS_CONF": "$(reboot)"})


def test_the_image_is_reproducible_and_cached(engine):
    settings = load_settings()
    first = ensure_image(settings)
    again = ensure_image(settings)
    assert again.built == [] and again.image_id == first.image_id  # cached: nothing rebuilt
    inspect = subprocess.run(
        [*engine.argv(), "image", "inspect", "--format", "{{json .Labels}}", compile_image()],
        capture_output=True,
        text=True,
        check=True,
    )
    labels = json.loads(inspect.stdout)
    assert labels["farm.recipe"] == first.recipe_hash and labels["farm.code"] == first.code_hash


PODMAN_DOCKER = Path("/usr/bin/docker")  # podman-docker's `docker`: a shell script that execs podman


def test_podman_dockers_docker_command_runs_the_same_compile(
    make_runner, sshd_host, tiny_path, tmp_path, engine
):
    if not PODMAN_DOCKER.is_file() or b"podman" not in PODMAN_DOCKER.read_bytes()[:400]:
        pytest.skip("podman-docker is not installed (/usr/bin/docker is not its script)")
    as_docker = engine.model_copy(update={"command": str(PODMAN_DOCKER)})
    runner = make_runner(sshd_host, docker=as_docker)

    result = runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")

    assert result.runner["image_digest"].startswith("sha256:") and onnx.load(result.path).graph.node
