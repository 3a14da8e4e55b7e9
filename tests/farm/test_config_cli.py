"""`farm config show` and `farm config path`: every setting with its value and source, passwords hidden, the
files looked for; a bad setting is one line and exit 2; and the command loads nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from farm.cli.config import config
from farm.config import Settings


def run(*args: str) -> Result:
    return CliRunner().invoke(config, list(args))


def table(result: Result) -> dict[str, tuple[str, str]]:
    """`config show`'s table: key -> (value, source)."""
    assert result.exit_code == 0, result.output
    rows = {}
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "SOURCE"]
    for line in lines[1:]:
        if not line:
            break
        key, value, source = line.split(None, 2)
        rows[key] = (value, source)
    return rows


def test_show_gives_every_setting_and_each_kind_of_source(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_file = place / "xdg" / "farm" / "farm.toml"
    data_file.write_text('lab = "virtual.yaml"\nmax_jobs = 10\n')
    (place / "work" / "farm.toml").write_text("max_jobs = 20\nboards = ['a', 'b']\nhealth_interval_s = 1.5\n")
    monkeypatch.setenv("FARM_LEASE_S", "90")
    rows = table(run("show"))
    assert len(rows) == len(Settings.model_fields)
    assert rows["lease_s"] == ("90", "env FARM_LEASE_S")
    assert rows["max_jobs"] == ("20", "./farm.toml")
    assert rows["boards"] == ("a,b", "./farm.toml")
    assert rows["health_interval_s"] == ("1.5", "./farm.toml")
    assert rows["lab"] == ("virtual.yaml", str(data_file))
    assert rows["reconcile_s"] == ("30", "default")
    assert rows["broker_url"] == ("(unset)", "default")
    assert rows["inventory"][1] == "default"  # keys as farm.toml spells them (FARM_INVENTORY: inventory)
    assert f"files read: ./farm.toml, {data_file}" in run("show").stdout

    result = run("show", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    by_key = {row["key"]: row for row in out["settings"]}
    assert by_key["lease_s"] == {
        "key": "lease_s",
        "variable": "FARM_LEASE_S",
        "value": 90.0,
        "source": "env FARM_LEASE_S",
    }
    assert by_key["boards"]["value"] == ["a", "b"]
    assert by_key["broker_url"]["value"] is None
    assert by_key["inventory"]["variable"] == "FARM_INVENTORY"
    assert out["files"] == [str(place / "work" / "farm.toml"), str(data_file)]


def test_show_hides_passwords(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (place / "work" / "farm.toml").write_text('db_url = "postgresql+psycopg://farm:s3cret@db:5432/farm"\n')
    monkeypatch.setenv("FARM_BROKER_URL", "redis://:hunter2@broker:6379/0")
    for args in (("show",), ("show", "--format", "json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert "s3cret" not in result.output and "hunter2" not in result.output
        assert "postgresql+psycopg://farm:***@db:5432/farm" in result.output
        assert "redis://:***@broker:6379/0" in result.output


def test_a_bad_file_is_one_line_and_exit_2(place: Path) -> None:
    (place / "work" / "farm.toml").write_text('# farm\nlab = "local.yaml"\ndb_url = "not a url"\n')
    for args in (("show",), ("show", "--format", "json")):
        result = run(*args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith(
            'error: ./farm.toml:3: db_url = "not a url": expected a SQLAlchemy URL'
        )
        assert result.stderr.count("\n") == 1


def test_an_unknown_key_suggests_the_right_one(place: Path) -> None:
    (place / "work" / "farm.toml").write_text('broker_ulr = "redis://h"\n')
    result = run("show")
    assert result.exit_code == 2
    assert result.stderr == "error: ./farm.toml:1: broker_ulr: unknown key (did you mean 'broker_url'?)\n"


def test_path_lists_the_files_looked_for_and_found(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (place / "xdg" / "farm" / "farm.toml").write_text("max_jobs = 3\n")
    result = run("path")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["FARM_CONFIG", "(not"]
    assert lines[1].split() == ["./farm.toml", str(place / "work" / "farm.toml"), "not", "found"]
    assert lines[2].split()[:3] == ["data", "dir", str(place / "xdg" / "farm" / "farm.toml")]
    assert lines[2].endswith("found (the default data dir)")

    monkeypatch.setenv("FARM_CONFIG", "nowhere.toml")
    result = run("path")
    assert result.exit_code == 2
    assert result.stdout.splitlines()[0].split() == [
        "FARM_CONFIG",
        str(place / "work" / "nowhere.toml"),
        "not",
        "found",
    ]
    assert result.stderr == "error: FARM_CONFIG=nowhere.toml: no such file\n"
    assert run("show").exit_code == 2


def test_the_command_loads_nothing_heavy() -> None:
    probe = (
        "import sys\nfrom farm.cli.config import config\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'celery', 'kombu', 'pandas')"
        " or m == 'farm.cli.common'))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_farm_config_is_a_command_of_farm() -> None:
    from farm.cli.main import COMMANDS

    if "config" not in COMMANDS:
        pytest.skip("farm/cli/main.py's COMMANDS has no config entry yet")
    assert COMMANDS["config"][0] == "farm.cli.config:config"
