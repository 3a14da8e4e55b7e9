"""`farm lab calibrate` and `farm lab predict`: output, JSON and exit codes."""

from __future__ import annotations

import json

import onnx
import pytest
from click.testing import CliRunner

from farm.cli.main import cli
from tests.conftest import tiny_model, unknown_op_model
from tests.farm.perfmodel.conftest import huge_activation_model


def run(*args):
    return CliRunner().invoke(cli, ["lab", *args], catch_exceptions=False)


def test_calibrate_json_has_every_row_and_the_medians():
    r = run("calibrate", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert len(doc["rows"]) == 12
    row = doc["rows"][0]
    assert set(row["fps_st"]) == {"measured", "predicted", "error_pct"}
    assert doc["median_abs_error_pct"]["fps_st"] < 15 and doc["median_abs_error_pct"]["fps_mt"] < 20
    assert set(doc["median_abs_error_pct_per_board"]) == {"zcu104", "vck190", "u50", "ultra96-v2"}


def test_calibrate_table():
    r = run("calibrate")
    assert r.exit_code == 0
    assert "median absolute error" in r.output and r.output.count("resnet50") == 4


def test_predict_json_for_a_zoo_model():
    r = run("predict", "--board", "zcu104", "--model", "resnet50", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["device"] == "DPUCZDX8G-B4096" and doc["cores"] == 2 and doc["clock_mhz"] == 300
    assert doc["target"] == "DPUCZDX8G-B4096x2@300MHz"
    assert doc["subgraphs"] == 1 and doc["cpu_ops"] == []
    assert doc["fps_mt"] > doc["fps_st"] > 0 and doc["latency_ms"] > 0


def test_predict_overrides_and_input_size():
    base = json.loads(run("predict", "--board", "kv260", "--model", "resnet18", "--format", "json").output)
    other = run(
        "predict",
        "--board",
        "kv260",
        "--model",
        "resnet18",
        "--dpu",
        "DPUCZDX8G-B1024",
        "--cores",
        "2",
        "--clock-mhz",
        "250",
        "--input",
        "112x112",
        "--format",
        "json",
    )
    assert other.exit_code == 0, other.output
    doc = json.loads(other.output)
    assert doc["target"] == "DPUCZDX8G-B1024x2@250MHz"
    assert doc["latency_ms"] != base["latency_ms"]


def test_predict_an_onnx_file_with_cpu_fallbacks(tmp_path):
    path = tmp_path / "weird.onnx"
    onnx.save(unknown_op_model(), path)
    r = run("predict", "--board", "zcu104", "--model", str(path), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["subgraphs"] == 0 and doc["cpu_ops"] == ["Frobnicate frobnicate_0"]
    assert any("host CPU" in w for w in doc["warnings"])
    tiny = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), tiny)
    assert run("predict", "--board", "pynq-z2", "--model", str(tiny)).exit_code == 0


def test_predict_gpu_board():
    r = run(
        "predict",
        "--board",
        "jetson-agx-xavier",
        "--model",
        "mobilenet_v2",
        "--precision",
        "fp32",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["kind"] == "gpu" and doc["precision"] == "fp32" and doc["model_version"] == "farm-gpu-perf/1"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--board", "nope", "--model", "resnet50"], "unknown board type"),
        (["--board", "zcu104", "--model", "nope"], "unknown zoo model"),
        (["--board", "zcu104", "--model", "resnet50", "--dpu", "DPUCZDX8G-B999"], "B512"),
        (["--board", "zcu104", "--model", "resnet50", "--dpu", "garbage"], "IP-CONFIG"),
        (["--board", "zcu104", "--model", "resnet50", "--input", "big"], "HxW"),
        (["--board", "zcu104", "--model", "resnet50", "--cores", "0"], "cores"),
        (["--board", "cpu", "--model", "resnet50"], "no modelled accelerator"),
        (["--board", "zcu104", "--model", "/nonexistent/model.onnx"], "no such ONNX file"),
    ],
)
def test_bad_input_is_a_usage_error(args, needle):
    r = CliRunner().invoke(cli, ["lab", "predict", *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output


def test_a_model_that_does_not_fit_fails_with_the_reason(tmp_path):
    path = tmp_path / "huge.onnx"
    onnx.save(huge_activation_model(), path)
    r = CliRunner().invoke(cli, ["lab", "predict", "--board", "zcu104", "--model", str(path)])
    assert r.exit_code == 1
    assert "does not fit" in r.output


def test_predict_states_the_held_out_error_of_its_board():
    from farm.perfmodel.params import HELD_OUT_PER_BOARD

    res = run("predict", "--board", "zcu104", "--model", "resnet18")
    st, mt = HELD_OUT_PER_BOARD["zcu104"]
    assert f"expected error  fps_st ±{st:.1f} %, fps_mt ±{mt:.1f} % (held-out, zcu104)" in res.output
    doc = json.loads(run("predict", "--board", "zcu104", "--model", "resnet18", "--format", "json").output)
    assert doc["expected_error_pct"] == {"fps_st": st, "fps_mt": mt, "basis": "zcu104"}


def test_predict_on_a_board_the_table_lacks_states_the_overall_held_out_error():
    from farm.perfmodel.params import HELD_OUT_OVERALL

    doc = json.loads(run("predict", "--board", "pynq-z2", "--model", "resnet18", "--format", "json").output)
    assert doc["expected_error_pct"] == {
        "fps_st": HELD_OUT_OVERALL[0],
        "fps_mt": HELD_OUT_OVERALL[1],
        "basis": "overall",
    }


def test_calibrate_prints_the_held_out_table():
    res = run("calibrate")
    assert "held-out median absolute error" in res.output
    assert (
        "architecture vgg" in res.output
        and "board vck190" in res.output
        and "overall (architectures)" in res.output
    )
    doc = json.loads(run("calibrate", "--format", "json").output)
    assert set(doc["held_out"]) == {"per_board", "per_family", "overall"}


def test_predict_a_boards_own_cpu_with_its_expected_error() -> None:
    args = ("--model", "mobilenet_v2", "--precision", "fp32", "--format", "json")
    one = json.loads(run("predict", "--board", "pynq-z2:cpu:1", *args).output)
    both = json.loads(run("predict", "--board", "pynq-z2:cpu", *args).output)
    assert one["kind"] == "cpu" and one["threads"] == 1 and both["threads"] == 2
    assert both["latency_ms"] < one["latency_ms"] and "calibration points" in one["expected_error"]
    bad = run("predict", "--board", "pynq-z2:cpu", "--model", "mobilenet_v2", "--dpu", "DPUCZDX8G-B512")
    assert bad.exit_code != 0 and "do not apply" in bad.output
