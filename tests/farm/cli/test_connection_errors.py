"""Nothing an operator types crashes the CLI: a bad setting, a database or a broker that cannot be reached
are one line on stderr (passwords hidden) with what to check, exit 2 for a setting and 1 for a connection,
and nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from farm.cli.main import cli
from farm.config import REPO_ROOT
from farm.db.errors import explain
from farm.db.models import JobRow, SweepRow
from farm.db.session import session_scope
from tests.conftest import free_port, write_sweep

SWEEP = """\
name: ok
models: [resnet18]
precisions: [fp32]
targets: [cpu]
batch_sizes: [1]
scenarios: [SingleStream]
"""


def _one_line(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in result.output, result.output
    return line


def test_a_bad_setting_is_one_line_before_any_command_loads(tmp_path: Path) -> None:
    """The Celery app configures itself when `farm status` loads, so this is met while importing."""
    env = {
        **os.environ,
        "FARM_DATA_DIR": str(tmp_path),
        "FARM_HEALTH_INTERVAL_S": "abc",
        "FARM_MAX_JOBS": "0",
    }
    env.pop("FARM_DB_URL", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "farm.cli.main", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "error: FARM_HEALTH_INTERVAL_S=abc: expected a number of seconds > 0; "
        "FARM_MAX_JOBS=0: expected a whole number >= 1\n"
    )
    assert not (tmp_path / "farm.db").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://farm:s3cret@127.0.0.1:{port}/farm", "connection refused at 127.0.0.1:{port}"),
        ("postgresql+psycopg://farm:s3cret@no-such-host.invalid/farm", "unknown host no-such-host.invalid"),
        ("foo://farm:s3cret@db/farm", "unknown database kind 'foo'"),
        ("mysql://farm:s3cret@db/farm", "its driver MySQLdb is not installed: pip install 'mysqlclient'"),
    ],
)
def test_a_database_that_cannot_be_reached_is_one_line(
    url: str, expected: str, farm_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    line = _one_line(CliRunner().invoke(cli, ["status", "--db", url.format(port=port)]), 1)
    assert expected.format(port=port) in line
    assert "s3cret" not in line and "***" in line


def test_a_missing_postgres_driver_says_what_to_install(farm_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed
    url = f"postgresql+psycopg://farm@127.0.0.1:{free_port()}/farm"
    line = _one_line(CliRunner().invoke(cli, ["results", "--db", url]), 1)
    assert "its driver psycopg is not installed: pip install 'psycopg[binary]'" in line


def test_a_sqlite_folder_that_cannot_be_created_is_one_line(tmp_path: Path, farm_env) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = _one_line(CliRunner().invoke(cli, ["status", "--db", f"sqlite:///{blocker}/sub/farm.db"]), 1)
    assert f"cannot create the folder {blocker}/sub (a file is in the way)" in line


@pytest.mark.postgres
def test_a_missing_postgres_database_or_user_is_one_line(pg_url: str, farm_env) -> None:
    from sqlalchemy.engine import make_url

    missing_db = make_url(pg_url).set(database="farm_no_such_database").render_as_string(hide_password=False)
    line = _one_line(CliRunner().invoke(cli, ["status", "--db", missing_db]), 1)
    assert "database farm_no_such_database does not exist on" in line and "createdb" in line
    missing_user = make_url(pg_url).set(username="farm_no_such_user").render_as_string(hide_password=False)
    line = _one_line(CliRunner().invoke(cli, ["status", "--db", missing_user]), 1)
    assert "user farm_no_such_user does not exist on" in line


def test_authentication_failure_says_to_check_the_password() -> None:
    """The shared server trusts every local user, so the driver's message is replayed here."""
    driver = Exception(
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
        'FATAL:  password authentication failed for user "farm"'
    )
    exc = OperationalError("SELECT 1", {}, driver)
    line = explain(exc, "postgresql+psycopg://farm:s3cret@10.0.0.5/farm")
    assert line == (
        "cannot reach the database postgresql+psycopg://farm:***@10.0.0.5/farm: authentication failed for user "
        "farm: check the user and password in FARM_DB_URL or --db (and the server's pg_hba.conf)"
    )


@pytest.fixture
def broker_down(farm_env, monkeypatch: pytest.MonkeyPatch) -> int:
    """A broker URL (with a password) on a loopback port where nothing listens; returns the port."""
    port = free_port()
    monkeypatch.setenv("FARM_BROKER_URL", f"redis://:s3cret@127.0.0.1:{port}/0")
    return port


def test_submit_with_the_broker_down_writes_nothing(tmp_path: Path, broker_down: int, farm_env) -> None:
    result = CliRunner().invoke(cli, ["submit", "--no-wait", str(write_sweep(tmp_path, SWEEP))])
    assert _one_line(result, 1) == (
        f"error: cannot reach the broker redis://:***@127.0.0.1:{broker_down}/0: connection refused at "
        f"127.0.0.1:{broker_down}: is Redis running there? (FARM_BROKER_URL)"
    )
    with session_scope(farm_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(SweepRow)) == 0
        assert s.scalar(select(func.count()).select_from(JobRow)) == 0


def test_worker_with_the_broker_down_is_one_line(broker_down: int) -> None:
    line = _one_line(CliRunner().invoke(cli, ["worker"]), 1)
    assert f"cannot reach the broker redis://:***@127.0.0.1:{broker_down}/0: connection refused" in line


def test_status_with_the_broker_down_still_reads_the_database(broker_down: int) -> None:
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "no sweeps yet" in result.stdout
    assert result.stderr.startswith(
        f"warning: cannot reach the broker redis://:***@127.0.0.1:{broker_down}/0"
    )
    assert "s3cret" not in result.output
