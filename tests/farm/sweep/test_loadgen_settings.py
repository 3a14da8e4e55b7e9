"""LoadGen settings in sweep.yaml: the four scenarios, defaults, and every setting LoadGen would reject
refused at submit time as file:line: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.config import load_settings
from farm.errors import SweepError
from farm.inventory import load_inventory
from farm.sweep.load import load_sweep
from tests.conftest import write_sweep

BASE = """\
name: lg
models: [resnet18]
precisions: [fp32]
targets: [cpu]
scenarios: [SingleStream, MultiStream, Server, Offline]
loadgen:
  min_query_count: 16
  {setting}
"""
SETTING_LINE = 8


def _load(tmp_path: Path, body: str):
    return load_sweep(write_sweep(tmp_path, body), load_inventory(load_settings().inventory_dir))


def test_four_scenarios_and_defaults(tmp_path: Path) -> None:
    loaded = _load(tmp_path, BASE.format(setting="min_duration_ms: 500"))
    spec = loaded.spec
    assert spec.scenarios == ["SingleStream", "MultiStream", "Server", "Offline"]
    lg = spec.loadgen
    assert lg.multi_stream_samples_per_query == 8 and lg.multi_stream_target_latency_percentile == 99.0
    assert lg.server_target_latency_ms == 100.0 and lg.server_target_latency_percentile == 99.0
    assert lg.server_target_qps is None and lg.server_search_probes == 6
    # the Server bound is LoadGen's default: said at submit time
    assert any("server_target_latency_ms" in w and "100 ms" in w for w in loaded.warnings)


def test_scenario_spelling_case(tmp_path: Path) -> None:
    body = BASE.replace("[SingleStream, MultiStream, Server, Offline]", "[multistream, SERVER]")
    assert _load(tmp_path, body.format(setting="min_duration_ms: 500")).spec.scenarios == [
        "MultiStream",
        "Server",
    ]


def test_settings_given_are_kept_and_no_warning(tmp_path: Path) -> None:
    setting = "server_target_latency_ms: 15\n  server_target_qps: 250.5\n  multi_stream_samples_per_query: 4"
    loaded = _load(tmp_path, BASE.format(setting=setting))
    lg = loaded.spec.loadgen
    assert (lg.server_target_latency_ms, lg.server_target_qps, lg.multi_stream_samples_per_query) == (
        15,
        250.5,
        4,
    )
    assert not any("server_target_latency_ms" in w for w in loaded.warnings)


@pytest.mark.parametrize(
    "setting, field, words",
    [
        ("min_duration_ms: 0", "loadgen.min_duration_ms", "greater than 0"),
        ("min_duration_ms: -1", "loadgen.min_duration_ms", "greater than 0"),
        ("max_query_count: 8", "loadgen.max_query_count", "below min_query_count"),
        ("server_target_qps: -10", "loadgen.server_target_qps", "greater than 0"),
        ("server_target_latency_ms: 0", "loadgen.server_target_latency_ms", "greater than 0"),
        ("server_target_latency_percentile: 100", "loadgen.server_target_latency_percentile", "less than 100"),
        ("server_target_latency_percentile: 0", "loadgen.server_target_latency_percentile", "greater than 0"),
        ("multi_stream_target_latency_percentile: 150", "loadgen.multi_stream_target_latency_percentile", "less than 100"),
        ("multi_stream_samples_per_query: 0", "loadgen.multi_stream_samples_per_query", "greater than 0"),
        ("server_search_probes: 0", "loadgen.server_search_probes", "greater than or equal to 1"),
        ("offline_expected_qps: -1", "loadgen.offline_expected_qps", "greater than 0"),
        ("early_stopping: true", "loadgen.early_stopping", "unknown key 'early_stopping'"),
    ],
)  # fmt: skip
def test_bad_setting_is_located(tmp_path: Path, setting: str, field: str, words: str) -> None:
    with pytest.raises(SweepError) as info:
        _load(tmp_path, BASE.format(setting=setting))
    err = info.value
    assert err.field == field and err.line == SETTING_LINE, str(err)
    assert words in str(err)
    assert str(err).startswith(f"{tmp_path / 'sweep.yaml'}:{SETTING_LINE}: {field}: ")


def test_unknown_scenario_names_the_four(tmp_path: Path) -> None:
    body = BASE.replace("[SingleStream, MultiStream, Server, Offline]", "[SingleStream, Bursty]")
    with pytest.raises(SweepError) as info:
        _load(tmp_path, body.format(setting="min_duration_ms: 500"))
    err = info.value
    assert err.field == "scenarios[1]" and err.line == 5
    assert all(name in str(err) for name in ("MultiStream", "Server", "Offline", "'Bursty'"))


def test_a_run_too_short_for_a_boards_power_sensor_is_warned_with_the_duration_that_works(
    tmp_path: Path,
) -> None:
    """The U50's xbutil is read at 4 Hz and a figure needs 5 samples: under 1.25 s its power and
    temperature would be left out of every run."""
    inv = tmp_path / "inventory"
    inv.mkdir()
    (inv / "board-types.yaml").write_text((load_settings().inventory_dir / "board-types.yaml").read_text())
    (inv / "lab.yaml").write_text(
        "boards:\n"
        f"  - {{name: u50-1, type: u50, emulation: {{root: {tmp_path / 'u50'}}}}}\n"
        f"  - {{name: zcu-1, type: zcu104, emulation: {{root: {tmp_path / 'zcu'}}}}}\n"
    )
    inventory = load_inventory(inv, "lab.yaml")
    body = BASE.replace("precisions: [fp32]", "precisions: [int8]").replace(
        "targets: [cpu]", "targets: [u50, zcu104]"
    )

    def _load(tmp_path: Path, text: str):
        return load_sweep(write_sweep(tmp_path, text), inventory)

    short = _load(tmp_path, body.format(setting="min_duration_ms: 1000")).warnings
    (warning,) = [w for w in short if "too short" in w]
    assert warning == (
        "loadgen.min_duration_ms 1000 is too short for u50's xbutil sensor (power/thermal): it needs 5 samples "
        "at 250 ms, so its figures would be left out; use min_duration_ms >= 1250"
    )
    assert not any(
        "too short" in w for w in _load(tmp_path, body.format(setting="min_duration_ms: 1250")).warnings
    )
    # zcu104's hwmon sensors sample every 20 ms: 100 ms is enough for them
    tiny = _load(tmp_path, body.format(setting="min_duration_ms: 80")).warnings
    assert sorted(w.split("'s ")[0].split()[-1] for w in tiny if "too short" in w) == [
        "u50",
        "zcu104",
        "zcu104",
    ]
