"""Bad sweeps get one located message (file, line, field), exit code 2, and nothing written or enqueued."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from farm.cli.main import cli
from farm.config import load_settings
from farm.db.models import JobRow, SweepRow
from farm.db.session import session_scope
from farm.errors import SweepError
from farm.inventory import load_inventory
from farm.sweep.load import load_sweep
from tests.conftest import write_sweep

GOOD = """\
name: ok
models: [resnet18]
precisions: [fp32]
targets: [cpu]
batch_sizes: [1]
scenarios: [SingleStream]
"""


def _load(tmp_path: Path, body: str):
    return load_sweep(write_sweep(tmp_path, body), load_inventory(load_settings().inventory_dir))


def _error(tmp_path: Path, body: str) -> SweepError:
    with pytest.raises(SweepError) as info:
        _load(tmp_path, body)
    return info.value


def test_good_sweep_loads_and_defaults(tmp_path: Path) -> None:
    loaded = _load(tmp_path, GOOD)
    assert loaded.spec.models[0].zoo == "resnet18"
    assert loaded.spec.repeats == 1 and loaded.spec.quantization.calibration_samples == 200
    assert loaded.warnings == []


def test_batch_size_zero_is_located(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("batch_sizes: [1]", "batch_sizes:\n  - 4\n  - 0"))
    assert err.line == 7 and err.field == "batch_sizes[1]"
    assert "greater than 0" in str(err) and str(err).startswith(str(tmp_path / "sweep.yaml") + ":7:")


def test_negative_batch_size(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("batch_sizes: [1]", "batch_sizes: [-2]"))
    assert err.field == "batch_sizes[0]" and err.line == 5


def test_unknown_precision_names_allowed_values(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("precisions: [fp32]", "precisions: [fp32, int4]"))
    assert err.field == "precisions[1]" and err.line == 3
    assert "'int4'" in str(err) and "fp32" in str(err) and "int8" in str(err)


def test_unknown_target_lists_valid_targets(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("targets: [cpu]", "targets: [cpu, zcu105]"))
    assert err.field == "targets[1]" and "valid targets: cpu" in str(err)


def test_duplicate_model_names(tmp_path: Path, tiny_onnx: Path) -> None:
    body = GOOD.replace(
        "models: [resnet18]", f"models:\n  - resnet18\n  - name: resnet18\n    onnx: {tiny_onnx}"
    )
    err = _error(tmp_path, body)
    assert err.field == "models[1]" and err.line == 4 and "duplicate model name 'resnet18'" in str(err)


def test_unknown_zoo_model_lists_zoo(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("[resnet18]", "[resnet19]"))
    assert err.field == "models[0]" and "resnet18" in str(err) and "mobilenet_v2" in str(err)


def test_empty_sweep(tmp_path: Path) -> None:
    err = _error(tmp_path, "# nothing here\n")
    assert "empty" in str(err)


def test_yaml_not_a_mapping(tmp_path: Path) -> None:
    err = _error(tmp_path, "- resnet18\n- fp32\n")
    assert "mapping" in str(err) and err.line == 1


def test_invalid_yaml_has_line(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD + "scenarios: [SingleStream\n")
    assert "not valid YAML" in str(err) and err.line is not None


def test_missing_field_and_unknown_field(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("targets: [cpu]\n", ""))
    assert err.field == "targets" and "required" in str(err).lower()
    err = _error(tmp_path, GOOD + "bogus: 1\n")
    assert err.field == "bogus" and err.line == 7


def test_empty_lists_rejected(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("models: [resnet18]", "models: []"))
    assert err.field == "models" and err.line == 2


def test_missing_model_file(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("models: [resnet18]", "models:\n  - name: mine\n    onnx: nope.onnx"))
    assert err.field == "models[0].onnx" and err.line == 4 and "not found" in str(err)


def test_corrupt_model_file(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 100)
    err = _error(tmp_path, GOOD.replace("models: [resnet18]", "models:\n  - name: mine\n    onnx: bad.onnx"))
    assert err.field == "models[0].onnx" and "bad.onnx" in str(err)


def test_dynamic_dimensions_rejected(tmp_path: Path) -> None:
    import onnx

    from tests.conftest import tiny_model

    model = tiny_model(batch="N")
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    onnx.save(model, tmp_path / "dyn.onnx")
    err = _error(tmp_path, GOOD.replace("models: [resnet18]", "models:\n  - name: dyn\n    onnx: dyn.onnx"))
    assert err.field == "models[0].onnx" and "dynamic" in str(err)


def test_fixed_batch_mismatch(tmp_path: Path) -> None:
    import onnx

    from tests.conftest import tiny_model

    onnx.save(tiny_model(batch=1), tmp_path / "b1.onnx")
    body = GOOD.replace("models: [resnet18]", "models:\n  - name: b1\n    onnx: b1.onnx").replace(
        "[1]\nscen", "[1, 4]\nscen"
    )
    err = _error(tmp_path, body)
    assert "fixed batch size of 1" in str(err) and "[4]" in str(err)


def test_torch_model_without_torch_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as if the extra were not installed
    body = GOOD.replace(
        "models: [resnet18]",
        "models:\n  - name: net\n    torch: mypkg.nets:Net\n    input_shape: [3, 32, 32]",
    )
    err = _error(tmp_path, body)
    assert "torch extra" in str(err) and err.field == "models[0].torch"


def test_two_sources_for_one_model(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        GOOD.replace("models: [resnet18]", "models:\n  - name: x\n    zoo: resnet18\n    onnx: a.onnx"),
    )
    assert "exactly one of zoo, onnx, torch" in str(err) and err.field == "models[0]"


def test_scenario_names_case_insensitive(tmp_path: Path) -> None:
    loaded = _load(tmp_path, GOOD.replace("[SingleStream]", "[singlestream, OFFLINE]"))
    assert loaded.spec.scenarios == ["SingleStream", "Offline"]


def test_low_calibration_warns(tmp_path: Path) -> None:
    loaded = _load(tmp_path, GOOD.replace("[fp32]", "[int8]") + "quantization:\n  calibration_samples: 50\n")
    assert any("50 (< 100)" in w for w in loaded.warnings)


@pytest.mark.parametrize(
    "body",
    [
        GOOD.replace("batch_sizes: [1]", "batch_sizes: [0]"),
        GOOD.replace("[fp32]", "[fp16]"),
        "",
        "just a string\n",
        GOOD.replace("models: [resnet18]", "models: [resnet18, resnet18]"),
    ],
    ids=["batch0", "precision", "empty", "scalar", "dupe"],
)
def test_cli_exit_2_and_nothing_written(tmp_path: Path, farm_env, body: str) -> None:
    path = write_sweep(tmp_path, body)
    result = CliRunner().invoke(cli, ["submit", str(path)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert str(path) in result.output
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(SweepRow)) == 0
        assert s.scalar(select(func.count()).select_from(JobRow)) == 0
    assert not farm_env.artifact_dir.exists()


def _emulated_lab(tmp_path: Path) -> Path:
    """The repository's catalog with one emulated zcu104 beside the local CPU."""
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "board-types.yaml").write_text((load_settings().inventory_dir / "board-types.yaml").read_text())
    (inv / "lab.yaml").write_text(
        "boards:\n"
        "  - {name: local-cpu, type: cpu}\n"
        f"  - {{name: zcu-1, type: zcu104, emulation: {{root: {tmp_path / 'root'}}}}}\n"
    )
    return inv


def test_precisions_a_target_cannot_run_are_skipped_with_a_warning(tmp_path: Path) -> None:
    from farm.sweep.expand import expand

    inventory = load_inventory(_emulated_lab(tmp_path), "lab.yaml")
    body = GOOD.replace("precisions: [fp32]", "precisions: [fp32, int8]").replace("[cpu]", "[cpu, zcu104]")
    loaded = load_sweep(write_sweep(tmp_path, body), inventory)
    assert "fp32 skipped on zcu104 (it runs int8 only)" in loaded.warnings
    jobs = expand(loaded.spec, {t: bt.precisions for t, bt in inventory.board_types.items()})
    combos = {(j.precision, j.target) for j in jobs if j.kind == "compile"}
    assert combos == {("fp32", "cpu"), ("int8", "cpu"), ("int8", "zcu104")}
    assert inventory.board_types["zcu104"].source == "emulated"  # the lab's board is emulated


def test_a_target_that_runs_none_of_the_precisions_is_located(tmp_path: Path) -> None:
    inventory = load_inventory(_emulated_lab(tmp_path), "lab.yaml")
    body = GOOD.replace("targets: [cpu]", "targets:\n  - cpu\n  - zcu104")
    with pytest.raises(SweepError) as info:
        load_sweep(write_sweep(tmp_path, body), inventory)
    assert info.value.field == "targets[1]" and info.value.line == 6
    assert "runs int8 only" in str(info.value)


def test_a_boards_own_cpu_needs_that_board_and_a_thread_count_it_has(tmp_path: Path) -> None:
    """`zcu104:cpu` with no zcu104 in the lab: the board is what is missing, and how to get one."""
    err = _error(tmp_path, GOOD.replace("targets: [cpu]", "targets: [cpu, 'zcu104:cpu']"))
    assert err.field == "targets[1]" and "no zcu104 board in this lab" in str(err)


def test_every_mistake_at_once_with_did_you_mean_and_no_pydantic_words(tmp_path: Path) -> None:
    """A new user's three typos in one file: each on its own located line, the schema's names suggested,
    never "Extra inputs are not permitted" nor a regular expression."""
    body = (
        GOOD.replace("precisions: [fp32]", "precison: [fp32]")
        .replace("scenarios: [SingleStream]", "scenarios: [SingleStreem]")
        .replace("name: ", "name: 'my sweep!' #", 1)
    )
    err = _error(tmp_path, body)
    text = str(err)
    lines = text.splitlines()
    assert len(lines) >= 3 and all(line.startswith(str(tmp_path / "sweep.yaml") + ":") for line in lines)
    assert "unknown key 'precison' (did you mean 'precisions'?)" in text
    assert "'SingleStreem' is not allowed (did you mean 'SingleStream'?)" in text
    assert "'my sweep!' is not a valid value here: use letters, digits" in text
    assert "Extra inputs" not in text and "^[" not in text and "pattern" not in text
    assert len(err.errors) == len(lines)


def test_a_misspelt_target_or_zoo_model_gets_the_right_name(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("targets: [cpu]", "targets: [cpuu]"))
    assert "unknown target 'cpuu' (did you mean 'cpu'?)" in str(err)
    err = _error(tmp_path, GOOD.replace("models: [resnet18]", "models: [resnet19]"))
    assert "unknown zoo model 'resnet19' (did you mean 'resnet18'?)" in str(err)


def test_a_known_board_type_without_a_board_says_how_to_get_one(tmp_path: Path) -> None:
    err = _error(tmp_path, GOOD.replace("targets: [cpu]", "targets: [zcu104]").replace("[fp32]", "[int8]"))
    assert err.field == "targets[0]" and "no zcu104 board in this lab" in str(err)
    assert "farm lab up --boards zcu104" in str(err) and "FARM_LAB" in str(err)


def test_a_board_cpu_with_more_threads_than_cores_is_the_target_not_a_missing_board(tmp_path: Path) -> None:
    """With a pynq-z2 in the lab, `pynq-z2:cpu:3` (a dual-core A9) is an unknown target, listing the valid ones."""
    (tmp_path / "lab.yaml").write_text("boards:\n  - {name: pynq-1, type: pynq-z2}\n")
    inventory = load_inventory(load_settings().inventory_dir, str(tmp_path / "lab.yaml"))
    body = GOOD.replace("targets: [cpu]", "targets: ['pynq-z2:cpu:3']").replace("[fp32]", "[int8]")
    with pytest.raises(SweepError) as err:
        load_sweep(write_sweep(tmp_path, body), inventory)
    assert "unknown target 'pynq-z2:cpu:3'" in str(err.value) and "no pynq-z2 board" not in str(err.value)
    assert "pynq-z2:cpu" in str(err.value)
