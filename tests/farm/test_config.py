"""Settings: one typed object read from FARM_* variables, the same defaults as ever, and every bad value
reported at once with the variable, the value and what is expected."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from farm.config import DEFAULT_VISIBILITY_TIMEOUT_S, builtin_inventory_dir, load_settings, redact_url
from farm.errors import SettingsError


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("FARM_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_are_the_embedded_farm(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    data = Path(platformdirs.user_data_dir("farm"))
    assert settings.data_dir == data
    assert settings.db_url == f"sqlite:///{data / 'farm.db'}"
    assert settings.artifact_dir == data / "artifacts"
    assert settings.inventory_dir == builtin_inventory_dir()
    assert settings.broker_url is None and settings.embedded
    assert (settings.health_interval_s, settings.bad_cooldown_s, settings.agent_timeout_margin_s) == (
        300,
        600,
        120,
    )
    assert settings.visibility_timeout_s == DEFAULT_VISIBILITY_TIMEOUT_S
    assert settings.max_jobs == 10000
    assert settings.board is None and settings.lab is None and settings.lab_sshd is None


def test_variables_override_and_empty_means_default(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("FARM_DATA_DIR", str(tmp_path))
    clean_env.setenv("FARM_INVENTORY", str(tmp_path / "inv"))
    clean_env.setenv("FARM_BROKER_URL", "")
    clean_env.setenv("FARM_HEALTH_INTERVAL_S", "1.5")
    clean_env.setenv("FARM_MAX_JOBS", "200")
    clean_env.setenv("FARM_BOARD", "zcu104-1")
    settings = load_settings()
    assert settings.db_url == f"sqlite:///{tmp_path / 'farm.db'}"  # follows the data dir
    assert settings.artifact_dir == tmp_path / "artifacts"
    assert settings.inventory_dir == tmp_path / "inv"
    assert settings.embedded
    assert (settings.health_interval_s, settings.max_jobs, settings.board) == (1.5, 200, "zcu104-1")
    clean_env.setenv("FARM_MAX_JOBS", "300")  # a changed environment is seen at once (the cache is per env)
    assert load_settings().max_jobs == 300
    assert load_settings("sqlite:///other.db").db_url == "sqlite:///other.db"  # --db wins


def test_data_dir_expands_home(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("HOME", str(tmp_path))
    clean_env.setenv("FARM_DATA_DIR", "~/farm")
    assert load_settings().data_dir == tmp_path / "farm"


def test_a_bad_value_names_the_variable_the_value_and_what_is_expected(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FARM_HEALTH_INTERVAL_S", "abc")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value) == "FARM_HEALTH_INTERVAL_S=abc: expected a number of seconds > 0"


def test_every_bad_variable_is_reported_at_once(clean_env: pytest.MonkeyPatch) -> None:
    bad = {
        "FARM_HEALTH_INTERVAL_S": ("0", "a number of seconds > 0"),
        "FARM_BAD_COOLDOWN_S": ("-1", "a number of seconds >= 0"),
        "FARM_AGENT_TIMEOUT_MARGIN_S": ("inf", "a number of seconds >= 0"),
        "FARM_VISIBILITY_TIMEOUT_S": ("nan", "a number of seconds > 0"),
        "FARM_MAX_JOBS": ("1e4", "a whole number >= 1"),
        "FARM_BROKER_URL": ("localhost:6379", "a broker URL such as redis://HOST:6379/0"),
        "FARM_DB_URL": ("not a url", "a SQLAlchemy URL"),
    }
    for name, (value, _) in bad.items():
        clean_env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    for name, (value, expected) in bad.items():
        assert (
            f"{name}={value!r}: expected {expected}" in message
            or f"{name}={value}: expected {expected}" in message
        )
    assert "\n" not in message


def test_a_password_in_a_bad_url_is_hidden(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FARM_BROKER_URL", "redis//:s3cret@broker:6379")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "s3cret" not in str(info.value)
    assert "FARM_BROKER_URL=redis//:***@broker:6379" in str(info.value)


def test_redact_url_hides_only_the_password() -> None:
    assert (
        redact_url("postgresql+psycopg://farm:pw@db:5432/farm")
        == "postgresql+psycopg://farm:***@db:5432/farm"
    )
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_visibility_timeout_outlasts_the_hard_limits_and_reaches_celery(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from farm.celery_app import COMPILE_HARD_LIMIT_S, RUN_HARD_LIMIT_S, app, configure

    assert max(COMPILE_HARD_LIMIT_S, RUN_HARD_LIMIT_S) < DEFAULT_VISIBILITY_TIMEOUT_S
    clean_env.setenv("FARM_VISIBILITY_TIMEOUT_S", "9000")
    try:
        configure(app)
        assert app.conf.broker_transport_options["visibility_timeout"] == 9000
    finally:
        clean_env.delenv("FARM_VISIBILITY_TIMEOUT_S")
        configure(app)


def test_lab_sshd_comes_from_the_settings(clean_env: pytest.MonkeyPatch) -> None:
    from farm.lab.processes import default_sshd
    from farm.lab.sshd import SSHD

    assert default_sshd() == SSHD
    clean_env.setenv("FARM_LAB_SSHD", "/opt/openssh/sbin/sshd")
    assert default_sshd() == "/opt/openssh/sbin/sshd"


def test_bound_boards_come_from_farm_boards_or_farm_board(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().bound_boards == ()  # an unbound worker (embedded mode, or `farm worker`)
    clean_env.setenv("FARM_BOARD", "zcu104-1")
    assert load_settings().bound_boards == ("zcu104-1",)
    clean_env.setenv("FARM_BOARDS", "kv260-1, kv260-2,kv260-3")  # a worker host: FARM_BOARDS wins
    settings = load_settings()
    assert settings.boards == ["kv260-1", "kv260-2", "kv260-3"]
    assert settings.bound_boards == ("kv260-1", "kv260-2", "kv260-3")
    assert settings.boards_per_worker == 1
    clean_env.setenv("FARM_BOARDS_PER_WORKER", "8")
    assert load_settings().boards_per_worker == 8


def test_bad_board_lists_are_reported(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FARM_BOARDS", "kv260-1,,kv260-2")
    clean_env.setenv("FARM_BOARDS_PER_WORKER", "0")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "FARM_BOARDS=kv260-1,,kv260-2: expected board names separated by commas" in str(info.value)
    assert "FARM_BOARDS_PER_WORKER=0: expected a whole number >= 1" in str(info.value)
    clean_env.setenv("FARM_BOARDS", "a,a")
    clean_env.delenv("FARM_BOARDS_PER_WORKER")
    with pytest.raises(SettingsError, match="FARM_BOARDS=a,a: expected board names"):
        load_settings()


def test_redact_url_hides_a_password_with_an_at_or_a_slash_and_a_password_parameter() -> None:
    assert (
        redact_url("postgresql+psycopg://farm:p@ss/w:rd@db:5432/farm")
        == "postgresql+psycopg://farm:***@db:5432/farm"
    )
    assert redact_url("postgresql://u:pa/ss@h/db") == "postgresql://u:***@h/db"
    assert (
        redact_url("postgresql://u@h/db?sslmode=require&password=x")
        == "postgresql://u@h/db?sslmode=require&password=***"
    )
    assert redact_url("sqlite:////var/lib/farm/farm.db") == "sqlite:////var/lib/farm/farm.db"
