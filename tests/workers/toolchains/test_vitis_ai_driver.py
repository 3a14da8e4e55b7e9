"""The Vitis AI driver's own logic, run here (no image, no vai_q_pytorch / vai_c_xir): its arguments, the
result.json contract, calibration batches; and how it reaches the container (uploaded beside the model)."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farm.errors import InfraError
from farm.workers.toolchains import vitis_ai_driver as driver
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.registry import get_toolchain
from farm.workers.toolchains.runners import DockerRunner, HostRunner
from farm.workers.toolchains.vitis_ai import DRIVER_NAME, DRIVER_PATH

ARGV = ["/work/in/model.onnx", "/work/out", "/arch.json", '{"seed": 3}', "vitis_ai@zcu104", "v", "t", ""]


def _job(out, calibration="", **quant):
    return {"out": str(out), "quant": quant, "calibration": calibration}


def _exit(fn, *args):
    with pytest.raises(SystemExit) as info:
        fn(*args)
    return info.value.code


def test_the_driver_is_python_3_8_with_only_the_standard_library_at_import():
    tree = ast.parse(DRIVER_PATH.read_text(), feature_version=(3, 8))
    top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert top <= set(sys.stdlib_module_names), sorted(top - set(sys.stdlib_module_names))


def test_arguments_by_position_with_the_quant_settings_parsed():
    job = driver.parse_args(ARGV)
    assert (job["model"], job["out"], job["arch"], job["toolchain"], job["calibration"]) == (
        "/work/in/model.onnx",
        "/work/out",
        "/arch.json",
        "vitis_ai@zcu104",
        "",
    )
    assert job["quant"] == {"seed": 3}


def test_a_wrong_argument_count_is_an_infra_failure_with_the_usage(capsys):
    assert _exit(driver.parse_args, ARGV[:-1]) == 1  # never 2: that would blame the model
    assert "usage: vitis_ai_driver.py model out arch" in capsys.readouterr().err


def test_the_whole_driver_refuses_bad_arguments_without_vitis_ai():
    proc = subprocess.run([sys.executable, str(DRIVER_PATH), "only-one"], capture_output=True, text=True)
    assert proc.returncode == 1 and "usage:" in proc.stderr


def test_result_and_fail_write_the_cli_contract(tmp_path, capsys):
    out = tmp_path / "out"
    assert _exit(driver.fail, str(out), "model", "bad op") == 2
    assert json.loads((out / "result.json").read_text()) == {
        "schema": 1,
        "ok": False,
        "error_kind": "model",
        "error": "bad op",
    }
    assert capsys.readouterr().err == "model error: bad op\n"
    assert _exit(driver.fail, str(out), "internal", "no tool") == 1
    assert capsys.readouterr().err == "error: no tool\n"
    assert _exit(driver.result, str(out), {"ok": True}, 0) == 0
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]  # no temp file left


def test_synthetic_calibration_is_seeded_and_sized_by_the_batch(tmp_path):
    job = _job(tmp_path, calibration_samples=10)
    a = driver.calibration_batches(np, job, [2, 3, 4, 4], np.random.default_rng(0))
    b = driver.calibration_batches(np, job, [2, 3, 4, 4], np.random.default_rng(0))
    assert len(a) == 5 and all(x.shape == (2, 3, 4, 4) and x.dtype == np.float32 for x in a)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def _pack(tmp_path, inputs):
    path = tmp_path / "calibration.npz"
    buf = io.BytesIO()
    np.savez(buf, inputs=inputs)
    path.write_bytes(buf.getvalue())
    return str(path), hashlib.sha256(buf.getvalue()).hexdigest()


def test_calibration_pack_is_checked_shuffled_and_capped(tmp_path):
    inputs = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    path, sha = _pack(tmp_path, inputs)
    job = _job(tmp_path, path, calibration_samples=100, calibration_sha256=sha, seed=1)
    batches = driver.calibration_batches(np, job, [2, 3], np.random.default_rng(0))
    assert len(batches) == 2 and all(b.shape == (2, 3) for b in batches)  # 5 samples: 2 whole batches
    order = np.random.default_rng(1).permutation(5)
    assert (np.concatenate(batches) == inputs[order][:4]).all()


def test_calibration_pack_with_a_wrong_hash_or_shape_is_a_model_error(tmp_path, capsys):
    path, sha = _pack(tmp_path, np.zeros((4, 3), np.float32))
    wrong_hash = _job(tmp_path / "a", path, calibration_sha256="0" * 64)
    assert _exit(driver.calibration_batches, np, wrong_hash, [1, 3], np.random.default_rng(0)) == 2
    assert "does not match its calibration_sha256" in capsys.readouterr().err
    wrong_shape = _job(tmp_path / "b", path, calibration_sha256=sha)
    assert _exit(driver.calibration_batches, np, wrong_shape, [1, 5], np.random.default_rng(0)) == 2
    result = json.loads((tmp_path / "b" / "result.json").read_text())
    assert result["error"] == "calibration inputs are [3] per sample; the model takes [5]"


# ---------------------------------------------------------------- how the driver reaches the container


def test_only_the_vitis_ai_toolchain_brings_a_driver():
    assert get_toolchain("vitis_ai@zcu104").container_inputs() == {DRIVER_NAME: DRIVER_PATH}
    assert get_toolchain("onnxruntime_cpu").container_inputs() == {}


class _RecordingHost:
    """Stands in for an SshHost: records uploads; the docker command itself fails."""

    python, user, name, work_dir = "python3", "farm", "vai-box", "/srv/farm"

    def __init__(self):
        self.uploads: dict[str, bytes] = {}
        self.commands: list[list[str]] = []

    def exec(self, argv, timeout_s=60):
        return 0, "sha256:abc []\n", ""

    def upload(self, local, remote):
        self.uploads[remote] = Path(local).read_bytes()
        return ""

    def run_guarded(self, argv, timeout_s, stdin="", what="command"):
        self.commands.append(argv)
        return 125, "", "docker: no engine here"

    def remove_tree(self, path):
        pass

    def close(self):
        pass


@pytest.mark.parametrize("runner_type", [DockerRunner, HostRunner])
def test_the_docker_runner_uploads_the_driver_beside_the_model(runner_type, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    host = _RecordingHost()
    kwargs = {"user": "1000:1000"} if runner_type is DockerRunner else {}
    runner = runner_type(host, host_name="vai-box", **kwargs)

    with pytest.raises(InfraError):
        runner.compile("vitis_ai@zcu104", model, "int8", QuantConfig(), tmp_path / "out")

    (job_dir,) = {path.rsplit("/in/", 1)[0] for path in host.uploads}
    if runner_type is HostRunner:  # the toolchain CLI runs on the host: no driver to send
        assert list(host.uploads) == [f"{job_dir}/in/model.onnx"]
        return
    assert host.uploads[f"{job_dir}/in/{DRIVER_NAME}"] == DRIVER_PATH.read_bytes()
    (argv,) = host.commands
    assert argv[argv.index("-c") + 2] == f"/work/in/{DRIVER_NAME}"  # bash -c SHELL <driver> ...
