"""The Docker compile runner: the command line as built, and a host without a usable Docker engine.

There is no Docker engine on the test machine (the ``docker`` CLI, where installed, is only a client),
and none is faked: here ``docker run`` is tested as the argv list the runner would send; the same runner
against a real engine (podman) is test_runner_podman.py.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import onnxruntime as ort
import pytest

from farm.errors import InfraError
from farm.inventory import DockerHost, Inventory, SshEndpoint
from farm.lab.loopback import ssh_host
from farm.transport.remote import UnsafeRemoteValue, quote_argv
from farm.transport.ssh_host import SshHost
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.runners import (
    DockerRunner,
    HostRunner,
    LocalRunner,
    artifact_columns,
    docker_run_argv,
    runner_for,
    select_host,
)
from farm.workers.toolchains.runners.docker import _repo_digest
from tests.sshd import SshdServer

IMAGE = f"farm/compile:{ort.__version__}"
JOB = "0123456789abcdef0123456789abcdef"


def offline_transport(work_dir: str) -> SshHost:
    """A transport that is never used to connect (SshHost connects lazily)."""
    return SshHost("192.0.2.1", 22, "farm", "/nonexistent/key", "/nonexistent/known_hosts", work_dir)


def test_docker_run_argv_exactly():
    argv = docker_run_argv(
        "xilinx/vitis-ai-pytorch-cpu:3.5.0",
        ["vai_c_xir", "-x", "/work/in/model.xmodel"],
        name="farm-compile-abc",
        job_dir="/srv/farm/compile/abc",
        user="1001:1002",
    )
    assert argv == [
        "docker",
        "run",
        "--rm",
        "--name",
        "farm-compile-abc",
        "--network",
        "none",
        "--pull",
        "never",
        "-v",
        "/srv/farm/compile/abc:/work",
        "-w",
        "/work",
        "--user",
        "1001:1002",
        "--env",
        "HOME=/work",
        "xilinx/vitis-ai-pytorch-cpu:3.5.0",
        "vai_c_xir",
        "-x",
        "/work/in/model.xmodel",
    ]
    # Without a job folder or user (the version query): no mount, no --user.
    assert docker_run_argv("img:1", ["true"], name="n1", docker="/usr/bin/docker") == [
        "/usr/bin/docker",
        *["run", "--rm", "--name", "n1", "--network", "none", "--pull", "never"],
        "img:1",
        "true",
    ]


def test_compile_command_for_the_onnxruntime_image_with_spaces_in_paths():
    runner = DockerRunner(offline_transport("/srv/farm work"), host_name="gpu-box", user="1000:1000")
    job_dir = f"/srv/farm work/compile/{JOB}"
    quant = QuantConfig(calibration_samples=64, seed=3)

    argv = runner.compile_command("onnxruntime_cpu", JOB, job_dir, "int8", quant)

    assert argv == [
        "docker",
        "run",
        "--rm",
        "--name",
        f"farm-compile-{JOB}",
        "--network",
        "none",
        "--pull",
        "never",
        "-v",
        f"/srv/farm work/compile/{JOB}:/work",
        "-w",
        "/work",
        "--user",
        "1000:1000",
        "--env",
        "HOME=/work",
        IMAGE,
        "python3",
        "-m",
        "farm.workers.toolchains.cli",
        "compile",
        "--toolchain",
        "onnxruntime_cpu",
        "--model",
        "/work/in/model.onnx",
        "--precision",
        "int8",
        "--quant-json",
        '{"calibration_samples":64,"method":"minmax","per_channel":true,"seed":3}',
        "--out-dir",
        "/work/out",
    ]
    line = quote_argv(argv)
    assert f"-v '/srv/farm work/compile/{JOB}:/work'" in line  # one word for the remote shell
    assert shlex.split(line) == argv  # every word arrives as built
    # What actually goes over SSH: the guard in front, the same words after it.
    assert shlex.split(quote_argv(["python3", "-c", "GUARD", "pidfile", "3315", *argv]))[5:] == argv


def test_compile_command_names_the_calibration_data_inside_the_container():
    """HostRunner.compile uploads the pack to <job>/in/calibration.npz and rewrites the path to what the
    toolchain sees: inside the container, under the /work mount."""
    runner = DockerRunner(offline_transport("/srv/farm"), host_name="gpu-box", user="1000:1000")
    path = runner.input_path(f"/srv/farm/compile/{JOB}", "calibration.npz")
    quant = QuantConfig(calibration_samples=64, calibration_data=path, calibration_sha256="ab" * 32)

    argv = runner.compile_command("onnxruntime_cpu", JOB, f"/srv/farm/compile/{JOB}", "int8", quant)

    assert path == "/work/in/calibration.npz"
    assert argv[-2:] == ["--calibration-data", "/work/in/calibration.npz"]
    assert json.loads(argv[argv.index("--quant-json") + 1])["calibration_sha256"] == "ab" * 32


def test_unsafe_values_are_refused_before_anything_runs():
    with pytest.raises(UnsafeRemoteValue, match="cannot contain ':'"):
        docker_run_argv(IMAGE, ["true"], name="n", job_dir="/srv/a:b")
    with pytest.raises(UnsafeRemoteValue, match="invalid Docker image"):
        docker_run_argv("--privileged", ["true"], name="n")
    with pytest.raises(UnsafeRemoteValue, match="invalid Docker image"):
        docker_run_argv("img;reboot", ["true"], name="n")
    with pytest.raises(UnsafeRemoteValue, match="uid:gid"):
        docker_run_argv(IMAGE, ["true"], name="n", user="root")
    with pytest.raises(UnsafeRemoteValue, match="must be absolute"):
        docker_run_argv(IMAGE, ["true"], name="n", job_dir="relative/dir")
    with pytest.raises(UnsafeRemoteValue, match="invalid name"):
        docker_run_argv(IMAGE, ["true"], name="--rm")


def test_image_provenance_columns():
    digests = '["farm/toolchain-onnxruntime@sha256:' + "a" * 64 + '"]'
    assert _repo_digest(IMAGE, digests) == "sha256:" + "a" * 64
    assert _repo_digest("registry.local:5000/x/y:2", '["registry.local:5000/x/y@sha256:bb"]') == "sha256:bb"
    assert _repo_digest(IMAGE, "[]") is None  # built locally, never pushed
    described = {
        "runner": "docker",
        "host": "gpu-box",
        "image": IMAGE,
        "image_id": "sha256:" + "c" * 64,
        "image_digest": "sha256:" + "a" * 64,
    }
    assert artifact_columns(described) == {
        "compile_runner": "docker",
        "compile_host": "gpu-box",
        "toolchain_image": f"{IMAGE}@sha256:{'a' * 64}",
    }
    assert artifact_columns({**described, "image_digest": None})["toolchain_image"] == (
        f"{IMAGE} (sha256:{'c' * 64})"
    )
    assert artifact_columns(LocalRunner().describe()) == {
        "compile_runner": "local",
        "compile_host": None,
        "toolchain_image": None,
    }


def _inventory(*hosts: DockerHost) -> Inventory:
    return Inventory(board_types={}, boards=[], docker_hosts=list(hosts), pools={}, base_dir=Path("/inv"))


def _host(name: str, runner: str, images: list[str]) -> DockerHost:
    ssh = SshEndpoint(host="10.0.0.5", user="farm", key_file="keys/id", known_hosts="keys/known_hosts")
    return DockerHost(name=name, ssh=ssh, runner=runner, images=images)  # type: ignore[arg-type]


def test_runner_for_picks_the_first_host_that_fits():
    no_image = _host("old-docker", "docker", ["ubuntu:22.04"])
    docker = _host("docker-1", "docker", ["ubuntu:22.04", IMAGE])
    bare = _host("bare-1", "host", [])

    assert isinstance(runner_for(_inventory(), "onnxruntime_cpu"), LocalRunner)
    assert select_host(_inventory(no_image, docker, bare), "onnxruntime_cpu") is docker
    assert select_host(_inventory(no_image, bare, docker), "onnxruntime_cpu") is bare
    assert select_host(_inventory(no_image), "onnxruntime_cpu") is None  # nothing fits: in-process

    chosen = runner_for(_inventory(no_image, docker), "onnxruntime_cpu", timeout_s=60)
    assert isinstance(chosen, DockerRunner) and chosen.host_name == "docker-1" and chosen.timeout_s == 60
    transport = chosen.transport
    assert (transport.host, transport.user, transport.work_dir) == ("10.0.0.5", "farm", "/tmp/farm")
    assert (transport.key_file, transport.known_hosts) == ("/inv/keys/id", "/inv/keys/known_hosts")
    assert transport.paramiko_transport is None  # nothing connected yet
    host_runner = runner_for(_inventory(bare), "onnxruntime_cpu")
    assert type(host_runner) is HostRunner and host_runner.describe()["host"] == "bare-1"


# ---------------------------------------------------------------------- over a real sshd, no engine


@pytest.fixture
def make_docker_runner(close_after) -> Callable[..., DockerRunner]:
    def make(server: SshdServer, **kwargs: object) -> DockerRunner:
        return close_after(DockerRunner(ssh_host(server, name="docker-1"), **kwargs))  # type: ignore[arg-type]

    return make


def _engine_reachable() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_docker_cli_without_an_engine_is_a_clear_infra_error(
    sshd_host, make_docker_runner, tiny_path, tmp_path
):
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine (the no-CLI case is tested below)")
    if _engine_reachable():
        pytest.skip("this machine has a running Docker engine")
    runner = make_docker_runner(sshd_host)

    with pytest.raises(InfraError) as err:
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "out")

    message = str(err.value)
    assert "compile host docker-1: the Docker engine is unreachable" in message
    assert "Cannot connect to the Docker daemon" in message  # docker's own words, for the operator
    assert "runner: host" in message
    assert not (sshd_host.work_dir / "compile").exists()  # checked before anything was sent
    assert runner.transport.bytes_uploaded == 0
    with pytest.raises(InfraError, match="Docker engine is unreachable"):
        runner.toolchain_info("onnxruntime_cpu")


def test_host_without_docker_cli_is_a_clear_infra_error(sshd_host, make_docker_runner, tiny_path, tmp_path):
    runner = make_docker_runner(sshd_host, docker="/nonexistent/bin/docker")

    with pytest.raises(
        InfraError,
        match=r"compile host docker-1: no container engine: `/nonexistent/bin/docker` is not installed",
    ):
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "out")
    assert not (sshd_host.work_dir / "compile").exists()
