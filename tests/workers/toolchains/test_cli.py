"""The toolchain CLI (``python -m farm.workers.toolchains.cli``): what out-of-process compile runners run."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from farm.workers.toolchains import cli
from farm.workers.toolchains.base import QuantConfig
from farm.workers.toolchains.cli import EXIT_MODEL, EXIT_OK, EXIT_OTHER, RESULT_FILE
from farm.workers.toolchains.registry import get_toolchain
from farm.zoo import synthetic_inputs
from tests.conftest import tiny_model, unknown_op_model


@pytest.fixture
def tiny_path(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "tiny.onnx"
    path.parent.mkdir()
    onnx.save(tiny_model(batch=1), path)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "farm.workers.toolchains.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def compile_args(model: Path, precision: str, out: Path, quant: dict | None = None) -> list[str]:
    return [
        "compile",
        "--toolchain",
        "onnxruntime_cpu",
        "--model",
        str(model),
        "--precision",
        precision,
        "--quant-json",
        json.dumps(quant or {}),
        "--out-dir",
        str(out),
    ]


def logits(path_or_bytes, x: np.ndarray) -> np.ndarray:
    src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_compile_fp32_writes_the_model_and_result_json(tiny_path, tmp_path):
    out = tmp_path / "out dir"  # a space on purpose
    proc = run_cli(*compile_args(tiny_path, "fp32", out))

    assert proc.returncode == EXIT_OK, proc.stderr
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["ok"] is True and result["schema"] == 1
    assert result["toolchain"] == "onnxruntime_cpu" and result["name"] == "onnxruntime"
    assert result["version"] == f"onnxruntime-{ort.__version__}"
    assert result["target_arch"] == get_toolchain("onnxruntime_cpu").target_arch
    assert result["precision"] == "fp32" and result["fidelity"] is None and result["warnings"] == []
    assert result["artifact"] == "model.onnx"
    artifact = out / "model.onnx"
    assert result["artifact_sha256"] == cli.sha256_file(artifact)
    assert result["size_bytes"] == artifact.stat().st_size
    assert result["details"]["nodes_after"] < result["details"]["nodes_before"]  # Conv+Relu fused
    x = synthetic_inputs((3, 16, 16), 1, seed=3)
    np.testing.assert_allclose(logits(artifact, x), logits(tiny_path.read_bytes(), x), rtol=1e-4, atol=1e-5)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["artifact"] == str(artifact)


def test_compile_int8_records_fidelity_and_warnings(tiny_path, tmp_path):
    out = tmp_path / "out"
    proc = run_cli(*compile_args(tiny_path, "int8", out, {"calibration_samples": 8, "seed": 1}))

    assert proc.returncode == EXIT_OK, proc.stderr
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["precision"] == "int8"
    assert result["quant"] == {"calibration_samples": 8, "method": "minmax", "per_channel": True, "seed": 1}
    fidelity = result["fidelity"]
    assert set(fidelity) == {"top1_agreement", "sqnr_db", "samples"}
    assert 0.0 <= fidelity["top1_agreement"] <= 1.0 and fidelity["samples"] == 32
    assert fidelity["sqnr_db"] > 0
    assert any("8 calibration samples" in w for w in result["warnings"])
    assert "8 calibration samples" in proc.stderr  # warnings are shown too
    assert result["details"]["calibration_samples"] == 8
    assert result["details"]["op_counts"]["QuantizeLinear"] > 0
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_model_error_exits_2_with_the_reason(tmp_path):
    model = tmp_path / "weird.onnx"
    onnx.save(unknown_op_model(), model)
    out = tmp_path / "out"

    proc = run_cli(*compile_args(model, "fp32", out))

    assert proc.returncode == EXIT_MODEL
    result = json.loads((out / RESULT_FILE).read_text())
    assert result == {"schema": 1, "ok": False, "error_kind": "model", "error": result["error"]}
    assert result["error"].startswith("onnxruntime could not optimise the model")
    assert "Frobnicate" in result["error"] or "com.example.nowhere" in result["error"]
    assert f"model error: {result['error']}" in proc.stderr
    assert not (out / "model.onnx").exists()


def test_other_model_errors_exit_2_in_process(tiny_path, tmp_path, capsys):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07 this is not protobuf \xff\xff\xff")
    assert cli.main(compile_args(garbage, "fp32", tmp_path / "a")) == EXIT_MODEL
    assert "not a readable ONNX model" in json.loads((tmp_path / "a" / RESULT_FILE).read_text())["error"]

    # Unknown precision and unusable quantisation settings are the model request's fault too.
    assert cli.main(compile_args(tiny_path, "fp16", tmp_path / "b")) == EXIT_MODEL
    assert "unknown precision 'fp16'" in capsys.readouterr().err
    assert cli.main(compile_args(tiny_path, "int8", tmp_path / "c", {"calibration_samples": 0})) == EXIT_MODEL
    assert "calibration_samples must be a positive integer" in capsys.readouterr().err


def test_usage_and_internal_errors_exit_1_not_2(tiny_path, tmp_path, capsys):
    # exit 2 would read as "the model is at fault", so argparse's usual 2 is remapped.
    with pytest.raises(SystemExit) as usage:
        cli.main(["compile", "--toolchain", "onnxruntime_cpu"])
    assert usage.value.code == EXIT_OTHER
    assert "required" in capsys.readouterr().err

    out = tmp_path / "unknown"
    args = compile_args(tiny_path, "fp32", out)
    args[args.index("onnxruntime_cpu")] = "nope"
    assert cli.main(args) == EXIT_OTHER
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["error_kind"] == "internal" and "unknown toolchain 'nope'" in result["error"]

    assert cli.main(compile_args(tiny_path, "int8", tmp_path / "q", {"bins": 3})) == EXIT_OTHER
    assert "unknown quantisation settings: bins" in capsys.readouterr().err
    assert cli.main(compile_args(tmp_path / "missing.onnx", "fp32", tmp_path / "m")) == EXIT_OTHER


def test_version_subcommand_prints_the_toolchain_identity():
    proc = run_cli("version", "--toolchain", "onnxruntime_cpu")
    assert proc.returncode == 0, proc.stderr
    tc = get_toolchain("onnxruntime_cpu")
    assert json.loads(proc.stdout) == {
        "name": tc.name,
        "version": tc.version(),
        "target_arch": tc.target_arch,
    }

    bad = run_cli("version", "--toolchain", "nope")
    assert bad.returncode == EXIT_OTHER and "unknown toolchain" in bad.stderr


def test_default_container_command_is_this_cli():
    tc = get_toolchain("onnxruntime_cpu")
    quant = QuantConfig(calibration_samples=50, method="entropy", per_channel=False, seed=4)

    argv = tc.container_command("/work/in/model.onnx", "/work/out", "int8", quant)

    assert tc.catalog_name() == "onnxruntime_cpu"
    assert tc.container_image == f"farm/compile:{ort.__version__}"
    assert argv == [
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
        '{"calibration_samples":50,"method":"entropy","per_channel":false,"seed":4}',
        "--out-dir",
        "/work/out",
    ]
    # The CLI reads back exactly what was asked.
    args = cli._parser().parse_args(argv[3:])
    assert cli.quant_from_json(args.quant_json) == quant
    assert tc.container_version_command() == shlex.split(
        "python3 -m farm.workers.toolchains.cli version --toolchain onnxruntime_cpu"
    )
