"""alerts.yaml (farm/notify/config.py): a good file builds its channels and routes; every mistake is one
file:line: field: message; secrets come from the environment and never show in repr, str, errors or logs;
where the file is found (FARM_ALERTS, beside the inventory, else the terminal default)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm.config import builtin_inventory_dir
from farm.notify import AlertsConfigError, Notification, load_channels
from farm.notify.email import EmailChannel
from farm.notify.terminal import TerminalChannel
from farm.notify.webhook import WebhookChannel

GOOD = """\
channels:
  - name: lab-slack
    kind: webhook
    url_env: TEST_SLACK_URL
    headers_env: {Authorization: TEST_WEBHOOK_TOKEN}
    timeout_s: 5
  - name: oncall-mail
    kind: email
    host: smtp.example.com
    port: 587
    starttls: true
    username: farm
    password_env: TEST_SMTP_PASSWORD
    from: farm@example.com
    to: [perf-oncall@example.com]
  - name: console
    kind: terminal
    path: alerts.log
routes:
  - channel: oncall-mail
    models: [resnet50]
    targets: [zcu104]
    min_change_pct: 10
"""
SECRETS = {
    "TEST_SLACK_URL": "https://hooks.slack.com/services/T000/B000/sl4ck-s3cret",
    "TEST_WEBHOOK_TOKEN": "Bearer t0ken-s3cret",
    "TEST_SMTP_PASSWORD": "pa55-s3cret",
}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return path


def test_a_good_file_builds_each_channel_with_its_routes(tmp_path: Path, secrets: None) -> None:
    hook, mail, console = load_channels(_write(tmp_path, GOOD))
    assert isinstance(hook, WebhookChannel) and hook.name == "lab-slack" and hook.kind == "webhook"
    assert hook.url_env == "TEST_SLACK_URL" and hook.timeout_s == 5.0 and hook.routes == ()
    assert (
        isinstance(mail, EmailChannel)
        and mail.port == 587
        and mail.starttls
        and mail.to == ["perf-oncall@example.com"]
    )
    assert isinstance(console, TerminalChannel) and console.path == tmp_path / "alerts.log"

    hit = {"model": "resnet50", "target": "zcu104", "change_pct": 21.2}
    small = {**hit, "change_pct": -4.0}
    other = {**hit, "model": "mobilenet"}
    assert mail.matches(hit) and not mail.matches(small) and not mail.matches(other)
    assert mail.matches({**hit, "change_pct": -12.0})  # a throughput drop is as large a regression
    assert hook.matches(other)  # no route: everything
    n = Notification(key="k", title="t", text="", alerts=[hit, other])
    chosen = mail.select(n)
    assert chosen is not None and chosen.alerts == [hit]
    assert mail.select(Notification(key="k", title="t", text="", alerts=[other])) is None


def test_secrets_never_show_in_repr_str_or_logs(tmp_path: Path, secrets: None, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    channels = load_channels(_write(tmp_path, GOOD))
    logging.getLogger("farm.notify.test").info("channels: %s %r", channels, channels)
    shown = " ".join([repr(channels), str(channels), *map(str, channels), caplog.text])
    assert "lab-slack" in shown and "$TEST_SLACK_URL" in shown and "$TEST_SMTP_PASSWORD" in shown
    for value in SECRETS.values():
        assert value not in shown
        assert "s3cret" not in shown


def test_a_literal_webhook_url_is_shown_without_its_path(tmp_path: Path) -> None:
    text = "channels:\n  - {name: hook, kind: webhook, url: 'https://hooks.slack.com/services/T0/B0/XyZ'}\n"
    (hook,) = load_channels(_write(tmp_path, text))
    assert "hooks.slack.com/***" in repr(hook) and "XyZ" not in repr(hook)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "channels:\n  - name: a\n    kind: pager\n",
            "alerts.yaml:3: channels[0].kind: unknown channel kind 'pager' (kinds: webhook, email, terminal)",
        ),
        (
            "channels:\n  - name: a\n    kind: terminal\n  - name: b\n    kind: webhook\n",
            "alerts.yaml:4: channels[1].url: a webhook needs url: or url_env:",
        ),
        (
            "channels:\n  - name: a\n    kind: webhook\n    url: ftp://example.com/x\n",
            "alerts.yaml:4: channels[0].url: must be an http:// or https:// URL",
        ),
        (
            "channels:\n  - name: a\n    kind: webhook\n    url_env: TEST_UNSET_VARIABLE\n",
            "alerts.yaml:4: channels[0].url_env: environment variable TEST_UNSET_VARIABLE is not set",
        ),
        (
            "channels:\n  - name: a\n    kind: webhook\n    url: http://x\n    headers_env:\n"
            "      Authorization: TEST_UNSET_TOKEN\n",
            "alerts.yaml:6: channels[0].headers_env.Authorization: environment variable TEST_UNSET_TOKEN is not set",
        ),
        (
            "channels:\n  - name: a\n    kind: email\n    host: h\n    from: f@x.org\n    to: [t@x.org]\n"
            "    username: farm\n    password_env: TEST_UNSET_PW\n",
            "alerts.yaml:8: channels[0].password_env: environment variable TEST_UNSET_PW is not set",
        ),
        (
            "channels:\n  - name: a\n    kind: email\n    host: h\n    to: [t@x.org]\n",
            "alerts.yaml:2: channels[0].from: required field missing",
        ),
        (
            "channels:\n  - name: a\n    kind: email\n    host: h\n    from: f@x.org\n    to: [nobody]\n",
            "alerts.yaml:6: channels[0].to[0]: must be an email address (name@domain)",
        ),
        (
            "channels:\n  - {name: a, kind: webhook, url: 'http://x', timeout_s: 0}\n",
            "alerts.yaml:2: channels[0].timeout_s: Input should be greater than 0",
        ),
        (
            "channels:\n  - {name: a, kind: terminal, colour: red}\n",
            "alerts.yaml:2: channels[0].colour: unknown field",
        ),
        (
            "channels:\n  - {name: a, kind: terminal}\n  - {name: a, kind: terminal}\n",
            "alerts.yaml:3: channels[1].name: channel 'a' is already defined (channels[0])",
        ),
        (
            "channels:\n  - {name: a, kind: terminal}\nroutes:\n  - channel: b\n",
            "alerts.yaml:4: routes[0].channel: no channel named 'b' (channels: a)",
        ),
        (
            "channels:\n  - {name: a, kind: terminal}\nroutes:\n  - {channel: a, min_change_pct: -1}\n",
            "alerts.yaml:4: routes[0].min_change_pct: Input should be greater than or equal to 0",
        ),
        ("", "alerts.yaml:1: the alerts file is empty"),
        ("channels: [\n", "alerts.yaml:2: not valid YAML"),
    ],
)
def test_each_mistake_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative path, so the message starts with "alerts.yaml:"
    _write(tmp_path, text)
    with pytest.raises(AlertsConfigError) as caught:
        load_channels(Path("alerts.yaml"))
    assert str(caught.value).startswith(expected), str(caught.value)


def test_a_secret_put_where_a_variable_name_goes_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = "channels:\n  - name: a\n    kind: webhook\n    url_env: https://hooks.slack.com/services/T/B/s3cret\n"
    with pytest.raises(AlertsConfigError) as caught:
        load_channels(_write(tmp_path, text))
    assert "must be the NAME of an environment variable" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_an_env_url_that_is_not_http_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLACK_URL", "file:///etc/s3cret")
    with pytest.raises(AlertsConfigError) as caught:
        load_channels(_write(tmp_path, "channels:\n  - {name: a, kind: webhook, url_env: TEST_SLACK_URL}\n"))
    assert "TEST_SLACK_URL is not an http:// or https:// URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_where_the_file_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: None) -> None:
    monkeypatch.delenv("FARM_ALERTS", raising=False)
    inventory = tmp_path / "inventory"
    shutil.copytree(builtin_inventory_dir(), inventory)
    monkeypatch.setenv("FARM_INVENTORY", str(inventory))
    # no file anywhere: one terminal channel, on stderr
    (default,) = load_channels()
    assert isinstance(default, TerminalChannel) and default.path is None

    # beside the inventory
    (inventory / "alerts.yaml").write_text("channels:\n  - {name: beside, kind: terminal}\n")
    assert [c.name for c in load_channels()] == ["beside"]

    # FARM_ALERTS wins; a path it names must exist
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(GOOD)
    monkeypatch.setenv("FARM_ALERTS", str(elsewhere))
    assert [c.name for c in load_channels()] == ["lab-slack", "oncall-mail", "console"]
    monkeypatch.setenv("FARM_ALERTS", str(tmp_path / "missing.yaml"))
    with pytest.raises(AlertsConfigError, match=r"missing.yaml: alerts file \(FARM_ALERTS\) not found"):
        load_channels()

    # channels: [] turns notifications off
    elsewhere.write_text("channels: []\n")
    monkeypatch.setenv("FARM_ALERTS", str(elsewhere))
    assert load_channels() == []


def test_a_bad_alerts_file_exits_2_through_the_cli_error_path(tmp_path: Path) -> None:
    """Whatever command loads it, handle_errors turns it into one line and exit 2 (bad input)."""
    import click

    from farm.cli.common import handle_errors

    path = _write(tmp_path, "channels:\n  - name: a\n    kind: pager\n")

    @click.command()
    @handle_errors
    def load() -> None:
        load_channels(path)

    result = CliRunner().invoke(load, [])
    assert result.exit_code == 2
    assert f"error: {path}:3: channels[0].kind: unknown channel kind 'pager'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
