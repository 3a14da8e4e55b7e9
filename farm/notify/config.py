"""``alerts.yaml``: which notification channels exist and which alerts each one gets (docs/notify.md).

Found at ``FARM_ALERTS``, else ``alerts.yaml`` in the inventory folder (``FARM_INVENTORY``); with neither,
one terminal channel (stderr), so alerts are never silently dropped on a fresh install. An empty
``channels: []`` turns notifications off.

Read with the sweep's bounded YAML reader, checked with pydantic; every mistake is one
``file:line: field: message`` (exit 2), like a sweep's. Secrets never sit in the file: ``url_env``,
``headers_env`` and ``password_env`` name environment variables, which must be set when the file is
loaded (the error names the variable, never a value) and are read again at each send.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from farm.errors import SweepError
from farm.notify.base import Route
from farm.sweep.yaml_lines import Path_, dotted, line_for, load_with_lines, read_yaml_text, short

ALERTS_FILE = "alerts.yaml"
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
CHANNEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


class AlertsConfigError(SweepError):
    """alerts.yaml is malformed: located like a sweep error (file, line, field); bad input, exit 2."""


def _http_url(value: str) -> str:
    if not re.match(r"https?://[^/\s?#]+", value, re.IGNORECASE):
        raise ValueError("must be an http:// or https:// URL")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


EnvName = Annotated[str, Field(pattern=f"^{ENV_NAME}$")]


class WebhookSpec(_Strict):
    name: str = Field(pattern=f"^{CHANNEL_NAME}$")
    kind: Literal["webhook"]
    url: str | None = None
    url_env: EnvName | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, EnvName] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=300, allow_inf_nan=False)

    _url = field_validator("url")(lambda cls, v: v if v is None else _http_url(v))


class EmailSpec(_Strict):
    name: str = Field(pattern=f"^{CHANNEL_NAME}$")
    kind: Literal["email"]
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: EnvName | None = None
    sender: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    timeout_s: float = Field(default=30.0, gt=0, le=300, allow_inf_nan=False)


class TerminalSpec(_Strict):
    name: str = Field(pattern=f"^{CHANNEL_NAME}$")
    kind: Literal["terminal"]
    path: str | None = None  # a log file to append to (relative: to the alerts file's folder)


ChannelSpec = Annotated[WebhookSpec | EmailSpec | TerminalSpec, Field(discriminator="kind")]
Names = list[Annotated[str, Field(min_length=1)]]


class RouteSpec(_Strict):
    channel: str
    models: Names | None = None
    targets: Names | None = None
    boards: Names | None = None
    metrics: Names | None = None
    min_change_pct: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class AlertsFile(_Strict):
    channels: list[ChannelSpec]
    routes: list[RouteSpec] = Field(default_factory=list)


def alerts_path() -> tuple[Path, bool]:
    """Where the alerts file is, and whether it was named (FARM_ALERTS) rather than defaulted."""
    from farm.config import load_settings

    settings = load_settings()
    if settings.alerts is not None:
        return settings.alerts, True
    return settings.inventory_dir / ALERTS_FILE, False


@dataclass(frozen=True)
class AlertsConfig:
    """A validated alerts file: its channel specs, each channel's routes, and the folder relative paths
    are resolved against. Channels are built from it by :func:`farm.notify.load_channels`."""

    channels: list[ChannelSpec]
    routes: dict[str, tuple[Route, ...]]
    base_dir: Path


def read_config(path: Path | None = None) -> AlertsConfig | None:
    """The alerts file, validated; None when none is named and alerts.yaml beside the inventory is absent
    (the caller then uses the default). A named file (argument or FARM_ALERTS) must exist."""
    what = "alerts file"
    if path is None:
        path, from_env = alerts_path()
        if not from_env and not path.exists():
            return None
        what = "alerts file (FARM_ALERTS)" if from_env else what
    text = read_yaml_text(path, what=what, error=AlertsConfigError)
    return parse_config(text, str(path), path.parent)


def parse_config(text: str, source: str, base_dir: Path) -> AlertsConfig:
    """Validate an alerts file's text: schema first, then what needs the whole file or the environment."""
    data, lines = load_with_lines(text, source, error=AlertsConfigError)

    def fail(message: str, loc: Path_) -> AlertsConfigError:
        return AlertsConfigError(message, path=source, line=line_for(lines, loc), field=dotted(loc) or None)

    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise AlertsConfigError(
            f"the alerts file is {what}: it must be a mapping with channels: (and optionally routes:)",
            path=source,
            line=1,
        )
    try:
        spec = AlertsFile.model_validate(data)
    except ValidationError as exc:
        message, loc = _first_error(exc)
        raise fail(message, loc) from None
    names: dict[str, int] = {}
    for i, channel in enumerate(spec.channels):
        if channel.name in names:
            raise fail(
                f"channel {channel.name!r} is already defined (channels[{names[channel.name]}])",
                ("channels", i, "name"),
            )
        names[channel.name] = i
        _check_channel(channel, ("channels", i), fail)
    routes: dict[str, list[Route]] = {}
    for i, route in enumerate(spec.routes):
        if route.channel not in names:
            known = ", ".join(names) or "none"
            raise fail(f"no channel named {route.channel!r} (channels: {known})", ("routes", i, "channel"))
        routes.setdefault(route.channel, []).append(
            Route(
                channel=route.channel,
                models=_tuple(route.models),
                targets=_tuple(route.targets),
                boards=_tuple(route.boards),
                metrics=_tuple(route.metrics),
                min_change_pct=route.min_change_pct,
            )
        )
    return AlertsConfig(
        channels=list(spec.channels),
        routes={name: tuple(found) for name, found in routes.items()},
        base_dir=base_dir,
    )


def _first_error(exc: ValidationError) -> tuple[str, Path_]:
    """The first pydantic error as (message, location in the file's terms)."""
    err = exc.errors()[0]
    loc: list[Any] = list(err["loc"])
    if len(loc) >= 3 and loc[0] == "channels" and loc[2] in ("webhook", "email", "terminal"):
        del loc[2]  # the union member's tag is not a key of the file
    msg = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("kind")
        got = (err.get("ctx") or {}).get("tag")
        msg = (
            f"unknown channel kind {short(got)} (kinds: webhook, email, terminal)"
            if kind == "union_tag_invalid"
            else "missing: each channel needs a kind (webhook, email or terminal)"
        )
    elif kind == "missing":
        msg = "required field missing"
    elif kind == "extra_forbidden":
        msg = "unknown field"
    elif kind == "string_pattern_mismatch":
        if loc[-1] in ("url_env", "password_env") or (len(loc) >= 2 and loc[-2] == "headers_env"):
            msg = "must be the NAME of an environment variable (letters, digits, _), not a value"
        elif loc[-1] in ("from", "to") or (len(loc) >= 2 and loc[-2] == "to"):
            msg = "must be an email address (name@domain)"
        elif loc[-1] == "name":
            msg = "a channel name is letters, digits, _ . - (starting with a letter or digit)"
    return msg, tuple(loc)


def _check_channel(channel: Any, at: Path_, fail) -> None:
    if isinstance(channel, WebhookSpec):
        if channel.url is None and channel.url_env is None:
            raise fail("a webhook needs url: or url_env: (the variable holding a secret URL)", (*at, "url"))
        if channel.url is not None and channel.url_env is not None:
            raise fail("give url: or url_env:, not both", (*at, "url_env"))
        if channel.url_env is not None:
            value = _env(channel.url_env, (*at, "url_env"), fail)
            try:
                _http_url(value)
            except ValueError:
                raise fail(
                    f"the URL in environment variable {channel.url_env} is not an http:// or https:// URL",
                    (*at, "url_env"),
                ) from None
        for header, variable in channel.headers_env.items():
            _env(variable, (*at, "headers_env", header), fail)
        for header in channel.headers_env:
            if header in channel.headers:
                raise fail(f"header {header!r} is also in headers:", (*at, "headers_env", header))
    elif isinstance(channel, EmailSpec):
        if channel.starttls and channel.ssl:
            raise fail("starttls: and ssl: exclude each other (ssl: implicit TLS, port 465)", (*at, "ssl"))
        if (channel.username is None) != (channel.password_env is None):
            missing = "password_env" if channel.password_env is None else "username"
            raise fail(f"username: and password_env: go together ({missing}: is missing)", (*at, missing))
        if channel.password_env is not None:
            _env(channel.password_env, (*at, "password_env"), fail)


def _env(variable: str, loc: Path_, fail) -> str:
    """The variable's value (only to check it exists and, for a URL, its scheme); never shown."""
    value = os.environ.get(variable)
    if not value:
        raise fail(f"environment variable {variable} is not set", loc)
    return value


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
