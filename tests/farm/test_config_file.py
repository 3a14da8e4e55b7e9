"""farm.toml: the FARM_* settings in a file (./farm.toml or $FARM_CONFIG, and <data dir>/farm.toml), below the
environment and above the defaults; every mistake located (file, line, key) with what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from farm.config import (
    DESCRIPTIONS,
    EXPECTED,
    FILE_KEYS,
    PATH_FIELDS,
    Settings,
    effective_settings,
    file_key,
    load_settings,
    locate_config,
)
from farm.errors import SettingsError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of() -> str:
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_no_file_is_the_defaults(place: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == place / "xdg" / "farm"
    assert settings.max_jobs == 10000 and settings.broker_url is None
    lookup = locate_config()
    assert [(c.role, c.path, c.found) for c in lookup.candidates] == [
        ("./farm.toml", place / "work" / "farm.toml", False),
        ("data dir", place / "xdg" / "farm" / "farm.toml", False),
    ]
    assert lookup.files == () and lookup.errors == []


def test_precedence_env_then_current_folder_then_data_dir_then_default(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_file = write(place / "xdg" / "farm" / "farm.toml", "max_jobs = 10\nlab = 'data.yaml'\nlease_s = 5\n")
    here = write(place / "work" / "farm.toml", "max_jobs = 20\nlab = 'here.yaml'\n")
    monkeypatch.setenv("FARM_MAX_JOBS", "30")
    settings = load_settings()
    assert (settings.max_jobs, settings.lab, settings.lease_s, settings.reconcile_s) == (
        30,
        "here.yaml",
        5,
        30,
    )
    rows = {row.key: row for row in effective_settings()[0]}
    assert rows["max_jobs"].source == "env FARM_MAX_JOBS"
    assert rows["lab"].source == "./farm.toml"
    assert rows["lease_s"].source == str(data_file)
    assert rows["reconcile_s"].source == "default"

    monkeypatch.setenv("FARM_MAX_JOBS", "")  # empty: not given, so the file's value
    assert load_settings().max_jobs == 20
    here.unlink()
    assert (load_settings().max_jobs, load_settings().lab) == (10, "data.yaml")
    data_file.write_text("max_jobs = 12345\n")  # a changed file is read again (the cache is per version)
    assert load_settings().max_jobs == 12345


def test_an_empty_string_in_a_file_is_not_given(place: Path) -> None:
    write(place / "xdg" / "farm" / "farm.toml", "lab = 'data.yaml'\n")
    write(place / "work" / "farm.toml", 'lab = ""\nbroker_url = ""\n')
    settings = load_settings()
    assert settings.lab == "data.yaml" and settings.broker_url is None


def test_the_data_dir_file_follows_farm_data_dir_and_the_current_folders_data_dir(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(place / "work" / "farm.toml", 'data_dir = "../shared"\n')
    write(place / "shared" / "farm.toml", "max_jobs = 7\n")
    write(place / "elsewhere" / "farm.toml", "max_jobs = 8\n")
    settings = load_settings()
    assert settings.data_dir == place / "shared" and settings.max_jobs == 7
    assert settings.db_url == f"sqlite:///{place / 'shared' / 'farm.db'}"  # the default follows the data dir
    assert locate_config().candidates[-1].note == "data dir from ./farm.toml"
    monkeypatch.setenv("FARM_DATA_DIR", str(place / "elsewhere"))
    assert load_settings().max_jobs == 8


def test_farm_config_names_the_file_instead_of_the_current_folders(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(place / "work" / "farm.toml", "max_jobs = 20\n")
    chosen = write(place / "etc" / "farm.toml", "max_jobs = 40\n")
    monkeypatch.setenv("FARM_CONFIG", str(chosen))
    assert load_settings().max_jobs == 40
    assert [c.role for c in locate_config().candidates] == ["FARM_CONFIG", "data dir"]
    assert {row.key: row.source for row in effective_settings()[0]}["max_jobs"] == str(chosen)


def test_farm_config_naming_no_file_is_an_error(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_CONFIG", str(place / "missing.toml"))
    assert error_of() == f"FARM_CONFIG={place / 'missing.toml'}: no such file"
    monkeypatch.setenv("FARM_CONFIG", str(place))
    assert error_of() == f"FARM_CONFIG={place}: not a file"


def test_relative_paths_in_a_file_are_relative_to_its_folder(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write(
        place / "conf" / "farm.toml",
        "\n".join(
            [
                'data_dir = "data"',
                'inventory = "../inv"',
                'alerts = "./alerts.yaml"',
                'lab_sshd = "/opt/sbin/sshd"',
                'artifact_dir = "~/artifacts"',
                'db_url = "sqlite:///db/farm.db?timeout=5"',
                'lab = "virtual.yaml"',
                "",
            ]
        ),
    )
    monkeypatch.setenv("FARM_CONFIG", str(conf))
    settings = load_settings()
    assert settings.data_dir == place / "conf" / "data"
    assert settings.inventory_dir == place / "inv"
    assert settings.alerts == place / "conf" / "alerts.yaml"
    assert settings.lab_sshd == Path("/opt/sbin/sshd")  # absolute: as written
    assert settings.artifact_dir == place / "home" / "artifacts"  # ~: the home folder
    assert settings.db_url == f"sqlite:///{place / 'conf' / 'db' / 'farm.db'}?timeout=5"
    assert settings.lab == "virtual.yaml"  # a lab name is looked up in the inventory, from a file too

    monkeypatch.delenv("FARM_CONFIG")
    monkeypatch.setenv("FARM_DATA_DIR", "rel")  # a variable's relative path is left as it is, as ever
    assert load_settings().data_dir == Path("rel")


def test_other_sqlite_urls_are_left_as_written(place: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:////abs/farm.db", "postgresql://u@h/db"):
        write(place / "work" / "farm.toml", f'db_url = "{url}"\n')
        assert load_settings().db_url == url


def test_a_bad_value_is_located_with_what_is_expected(place: Path) -> None:
    write(place / "work" / "farm.toml", '# farm\n\ndb_url = "not a url"\nmax_jobs = 1.5\nlease_s = true\n')
    assert error_of() == (
        './farm.toml:3: db_url = "not a url": expected a SQLAlchemy URL such as sqlite:////var/lib/farm/farm.db '
        "or postgresql+psycopg://USER@HOST/DB; "
        "./farm.toml:4: max_jobs = 1.5: expected a whole number >= 1; "
        "./farm.toml:5: lease_s = true: expected a number of seconds >= 1"
    )


def test_files_and_variables_are_reported_together_files_first(
    place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_file = write(place / "xdg" / "farm" / "farm.toml", "health_interval_s = 0\n")
    write(place / "work" / "farm.toml", "boards_per_worker = 0\nboards = ['a', 'a']\n")
    monkeypatch.setenv("FARM_LEASE_S", "abc")
    assert error_of() == (
        "./farm.toml:1: boards_per_worker = 0: expected a whole number >= 1; "
        './farm.toml:2: boards = ["a", "a"]: expected board names separated by commas; '
        f"{data_file}:1: health_interval_s = 0: expected a number of seconds > 0; "
        "FARM_LEASE_S=abc: expected a number of seconds >= 1"
    )


def test_a_value_a_variable_overrides_is_not_used(place: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(place / "work" / "farm.toml", "max_jobs = 0\n")
    monkeypatch.setenv("FARM_MAX_JOBS", "5")
    assert load_settings().max_jobs == 5


def test_wrong_types_are_errors_not_crashes(place: Path) -> None:
    write(
        place / "work" / "farm.toml",
        "data_dir = 5\ninventory = ['a']\nlab = 3\nbroker_url = {a = 1}\nreconcile_s = 1979-05-27\n",
    )
    message = error_of()
    assert "./farm.toml:1: data_dir = 5: expected a folder path" in message
    assert './farm.toml:2: inventory = ["a"]: expected a folder path' in message
    assert "./farm.toml:3: lab = 3: expected a lab file name or path" in message
    assert "./farm.toml:4: broker_url = a table: expected a broker URL" in message
    assert "./farm.toml:5: reconcile_s = 1979-05-27: expected a number of seconds > 0" in message


def test_boards_take_an_array_or_a_comma_separated_string(place: Path) -> None:
    write(place / "work" / "farm.toml", 'boards = ["kv260-1", "kv260-2"]\n')
    assert load_settings().bound_boards == ("kv260-1", "kv260-2")
    write(place / "work" / "farm.toml", 'boards = "kv260-1, kv260-2, kv260-3"\n')
    assert load_settings().bound_boards == ("kv260-1", "kv260-2", "kv260-3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('db_ulr = "x"\n', "./farm.toml:1: db_ulr: unknown key (did you mean 'db_url'?)"),
        ("\nmax_job = 3\n", "./farm.toml:2: max_job: unknown key (did you mean 'max_jobs'?)"),
        ('inventory_dir = "x"\n', "./farm.toml:1: inventory_dir: unknown key (did you mean 'inventory'?)"),
        (
            'FARM_DB_URL = "x"\n',
            "./farm.toml:1: FARM_DB_URL: unknown key (did you mean 'db_url'? keys are the variables' names "
            "without FARM_, in lower case)",
        ),
        (
            'DB_URL = "x"\n',
            "./farm.toml:1: DB_URL: unknown key (did you mean 'db_url'? keys are in lower case)",
        ),
        ("colour = 3\n", "./farm.toml:1: colour: unknown key (`farm config show` lists the keys)"),
        (
            '# the farm\n[farm]\ndb_url = "x"\n',
            "./farm.toml:2: farm: unknown key: write the settings at the top level of the file, "
            "without a [farm] table",
        ),
        (
            'config = "x"\n',
            "./farm.toml:1: config: unknown key: FARM_CONFIG names the file to read; a file cannot set it",
        ),
    ],
)
def test_an_unknown_key_is_located_with_did_you_mean(place: Path, text: str, expected: str) -> None:
    write(place / "work" / "farm.toml", text)
    assert error_of() == expected


def test_a_toml_syntax_error_is_located(place: Path) -> None:
    write(place / "work" / "farm.toml", 'max_jobs = 3\n\nlab = "unterminated\n')
    message = error_of()
    assert message.startswith("./farm.toml:3: not valid TOML: ")
    assert "(at line" not in message


def test_a_file_that_is_not_text_is_an_error(place: Path) -> None:
    (place / "work" / "farm.toml").write_bytes(b"lab = '\xff'\n")
    assert error_of() == "./farm.toml: not UTF-8 text"


def test_a_password_is_hidden_in_a_files_error(place: Path) -> None:
    write(place / "work" / "farm.toml", 'broker_url = "redis//:s3cret@broker:6379"\n')
    message = error_of()
    assert "s3cret" not in message
    assert (
        message
        == './farm.toml:1: broker_url = "redis//:***@broker:6379": expected a broker URL such as redis://HOST:6379/0'
    )


def test_every_setting_has_a_key_a_description_and_what_it_expects() -> None:
    fields = set(Settings.model_fields)
    assert set(FILE_KEYS.values()) == fields == set(EXPECTED) == set(DESCRIPTIONS)
    assert file_key("inventory_dir") == "inventory" and file_key("db_url") == "db_url"
    paths = {name for name, info in Settings.model_fields.items() if "Path" in str(info.annotation)}
    assert paths == set(PATH_FIELDS)
    assert "config" not in FILE_KEYS  # FARM_CONFIG is not a setting
    assert issubclass(Settings, BaseSettings)


def test_a_linked_files_paths_are_relative_to_its_targets_folder(place: Path) -> None:
    target = write(place / "etc" / "farm.toml", 'data_dir = "data"\n')
    (place / "work" / "farm.toml").symlink_to(target)
    assert load_settings().data_dir == place / "etc" / "data"


def test_a_hyphen_for_an_underscore_is_suggested(place: Path) -> None:
    write(place / "work" / "farm.toml", 'db-url = "x"\n')
    assert error_of() == "./farm.toml:1: db-url: unknown key (did you mean 'db_url'?)"
