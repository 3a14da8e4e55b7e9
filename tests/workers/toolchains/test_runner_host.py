"""The host compile runner over a real sshd: the "compile host" is this machine, farm installed in the venv."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from farm.artifacts import sha256_file
from farm.errors import InfraError, ModelError
from farm.lab.loopback import ssh_host
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.runners import HostRunner, LocalRunner, RunnerResult, artifact_columns
from farm.zoo import synthetic_inputs
from tests.conftest import unknown_op_model
from tests.sshd import SshdServer, _processes_mentioning

# The compile host is this machine: the test interpreter has farm (editable) and onnxruntime.
HOST_PYTHON = sys.executable


@pytest.fixture
def make_runner(close_after) -> Callable[..., HostRunner]:
    def make(server: SshdServer, python: str = HOST_PYTHON, **kwargs: object) -> HostRunner:
        return close_after(HostRunner(ssh_host(server, name="builder-1", python=python), **kwargs))  # type: ignore[arg-type]

    return make


def unknown_op_model_path(directory: Path) -> Path:
    path = directory / "weird.onnx"
    onnx.save(unknown_op_model(), path)
    return path


def remote_jobs(server: SshdServer) -> list[Path]:
    jobs = server.work_dir / "compile"
    return sorted(jobs.iterdir()) if jobs.exists() else []


def logits(src: Path | bytes, x: np.ndarray) -> np.ndarray:
    source = src if isinstance(src, bytes) else str(src)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_fp32_compile_over_ssh_matches_a_local_compile(sshd_host, make_runner, tiny_path, tmp_path):
    runner = make_runner(sshd_host)

    result = runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "remote")

    assert isinstance(result, RunnerResult)
    assert result.path == tmp_path / "remote" / "model.onnx" and result.path.is_file()
    assert result.fidelity is None and result.warnings == []
    assert result.toolchain == "onnxruntime" and result.toolchain_version == f"onnxruntime-{ort.__version__}"
    assert result.runner == {
        "runner": "host",
        "host": "builder-1",
        "image": None,
        "image_id": None,
        "image_digest": None,
    }
    assert artifact_columns(result.runner) == {
        "compile_runner": "host",
        "compile_host": "builder-1",
        "toolchain_image": None,
    }
    assert result.toolchain_seconds is not None and 0 < result.toolchain_seconds < result.seconds
    # The artifact came back intact and runs: same logits as the source model ...
    x = synthetic_inputs((3, 16, 16), 1, seed=5)
    np.testing.assert_allclose(
        logits(result.path, x), logits(tiny_path.read_bytes(), x), rtol=1e-4, atol=1e-5
    )
    # ... and byte for byte what an in-process compile gives (content addressing relies on it).
    local = LocalRunner().compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "local")
    assert sha256_file(result.path) == sha256_file(local.path)
    assert (result.toolchain_version, result.target_arch) == (local.toolchain_version, local.target_arch)
    assert remote_jobs(sshd_host) == []  # the job folder is gone


def test_int8_compile_over_ssh_brings_fidelity_back(sshd_host, make_runner, tiny_path, tmp_path):
    runner = make_runner(sshd_host)
    quant = QuantConfig(calibration_samples=8, seed=2)

    result = runner.compile("onnxruntime_cpu", tiny_path, "int8", quant, tmp_path / "out")

    assert set(result.fidelity) == {"top1_agreement", "sqnr_db", "samples"}
    assert 0.0 <= result.fidelity["top1_agreement"] <= 1.0 and result.fidelity["samples"] == 32
    assert any("8 calibration samples" in w for w in result.warnings)
    assert result.details["precision"] == "int8" and result.details["calibration_samples"] == 8
    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert "QuantizeLinear" in ops
    out = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(
        None, {"input": synthetic_inputs((3, 16, 16), 1, seed=0)}
    )[0]
    assert out.shape == (1, 10)
    assert remote_jobs(sshd_host) == []
    # Upload and downloads went through the verified paths: model up, result.json + artifact down.
    assert runner.transport.bytes_uploaded == tiny_path.stat().st_size


def test_int8_calibration_data_travels_with_the_job(sshd_host, make_runner, tiny_path, tmp_path):
    """The sweep's calibration pack is uploaded beside the model and named on the host's command line;
    the same compile done here gives the same artifact."""
    pack = tmp_path / "dataset.npz"
    np.savez(pack, inputs=synthetic_inputs((3, 16, 16), 12, seed=4) * 3.0)
    sha = sha256_file(pack)
    quant = QuantConfig(calibration_samples=12, calibration_data=str(pack), calibration_sha256=sha)
    runner = make_runner(sshd_host)

    result = runner.compile("onnxruntime_cpu", tiny_path, "int8", quant, tmp_path / "out")

    assert result.details["calibration_data"] == "dataset" and result.details["calibration_sha256"] == sha
    assert runner.transport.bytes_uploaded == tiny_path.stat().st_size + pack.stat().st_size
    assert remote_jobs(sshd_host) == []
    local = LocalRunner().compile("onnxruntime_cpu", tiny_path, "int8", quant, tmp_path / "local")
    assert result.path.read_bytes() == local.path.read_bytes()


def test_toolchain_info_is_the_hosts(sshd_host, make_runner):
    runner = make_runner(sshd_host)
    info = runner.toolchain_info("onnxruntime_cpu")
    assert info == LocalRunner().toolchain_info("onnxruntime_cpu")
    assert runner.toolchain_info("onnxruntime_cpu") is info  # asked once per runner


def test_model_error_comes_back_as_model_error(sshd_host, make_runner, tmp_path):
    runner = make_runner(sshd_host)

    with pytest.raises(ModelError) as err:
        runner.compile(
            "onnxruntime_cpu", unknown_op_model_path(tmp_path), "fp32", QuantConfig(), tmp_path / "o"
        )

    assert str(err.value).startswith("onnxruntime could not optimise the model")
    assert "Frobnicate" in str(err.value) or "com.example.nowhere" in str(err.value)
    assert not isinstance(err.value, InfraError)
    assert remote_jobs(sshd_host) == []


def test_host_without_farm_is_an_infra_error(sshd_host, make_runner, tiny_path, tmp_path):
    system_python = "/usr/bin/python3"
    if not Path(system_python).exists():
        pytest.skip("no system python3 without farm on this machine")
    runner = make_runner(sshd_host, python=system_python)

    with pytest.raises(InfraError, match="farm is not installed for /usr/bin/python3"):
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")
    assert remote_jobs(sshd_host) == []


def test_killed_sshd_is_an_infra_error(sshd_host, make_runner, tiny_path, tmp_path):
    runner = make_runner(sshd_host)
    runner.toolchain_info("onnxruntime_cpu")  # connected
    sshd_host.stop()

    started = time.monotonic()
    with pytest.raises(
        InfraError, match="builder-1.*(cannot connect|cannot open SFTP|connection lost|refused)"
    ):
        runner.compile("onnxruntime_cpu", tiny_path, "fp32", QuantConfig(), tmp_path / "o")
    assert time.monotonic() - started < 10
    assert not (tmp_path / "o" / "model.onnx").exists()


def test_sshd_killed_during_a_compile_is_an_infra_error(sshd_host, make_runner, tiny_path, tmp_path):
    runner = make_runner(sshd_host)
    slow = QuantConfig(calibration_samples=200_000)  # minutes of calibration
    threading.Timer(2.0, sshd_host.stop).start()

    with pytest.raises(InfraError):
        runner.compile("onnxruntime_cpu", tiny_path, "int8", slow, tmp_path / "o")


def test_timeout_kills_the_remote_compile(sshd_host, make_runner, tiny_path, tmp_path):
    runner = make_runner(sshd_host, timeout_s=2.0)
    slow = QuantConfig(calibration_samples=200_000)

    started = time.monotonic()
    with pytest.raises(InfraError, match=r"did not finish within 2 s: killed its process group"):
        runner.compile("onnxruntime_cpu", tiny_path, "int8", slow, tmp_path / "o")
    assert time.monotonic() - started < 15

    jobs_dir = str(sshd_host.work_dir / "compile")
    deadline = time.monotonic() + 5
    while _processes_mentioning(jobs_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(jobs_dir) == []  # the toolchain process is dead, not orphaned
    assert remote_jobs(sshd_host) == []
