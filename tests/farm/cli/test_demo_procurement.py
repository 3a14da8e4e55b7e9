"""The demo's last step: the seeds' own procurement question, answered from the runs the demo stored and
labelled emulated (the whole `farm demo` runs in `make demo` and the README's quick start)."""

from __future__ import annotations

from farm.cli.demo import procurement_step
from tests.farm.procure.store import add_run


def test_the_demo_asks_a_procurement_question_of_its_own_runs(farm_env) -> None:
    db = farm_env.db_url
    for board, ips, watts in (("zcu104", 600.0, 12.0), ("vck190", 2700.0, 40.0), ("pynq-z2", 68.0, 2.5)):
        add_run(db, target=board, scenario="Offline", source="emulated",
                metrics={"throughput_ips": ips, "power_w": watts})  # fmt: skip
    add_run(db, target="cpu", scenario="Offline", metrics={"throughput_ips": 300.0})
    text = procurement_step(db)
    assert "mobilenet_v2 INT8 at 400 images/s" in text and "emulated = the virtual lab's models" in text
    assert "zcu104 int8 (emulated)" in text and "verdict:" in text
    # cpu has a placeholder price now; its run has no power_w (no RAPL) and the type no TDP: ruled out, with why
    assert "cpu int8 (measured): no power figure" in text
    # zcu104: 1 board (600 x 0.7 = 420 >= 400), vck190: 1, pynq-z2: ceil(400 / 47.6) = 9
    row = next(line for line in text.splitlines() if "pynq-z2 int8 (emulated)" in line and "[" in line)
    assert " 9 [" in row


def test_the_demo_refuses_a_broker_named_in_a_farm_toml(tmp_path, monkeypatch) -> None:
    """The demo runs in this process; a farm.toml that names a broker would send its jobs away: it says so."""
    from click.testing import CliRunner

    from farm.cli.main import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FARM_BROKER_URL", raising=False)
    (tmp_path / "farm.toml").write_text('broker_url = "redis://127.0.0.1:1/0"\n')
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 2 and "sets broker_url" in result.output and "farm.toml" in result.output


def test_the_demos_warnings_are_one_summary() -> None:
    from farm.cli.demo import warnings_summary

    text = warnings_summary(
        [
            "resnet18 int8: only 100 calibration samples",
            "mobilenet_v2 int8: only 100 calibration samples",
            "fp32 skipped on zcu104 (it runs int8 only)",
        ]  # fmt: skip
    )
    assert (
        text.splitlines()[0].startswith("3 warnings, 2 kinds") and "2 x only 100 calibration samples" in text
    )
