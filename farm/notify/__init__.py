"""Notification channels for alerts: what sends one notification through one channel, and ``alerts.yaml``,
which says what channels exist (docs/notify.md).

Registered like the result sinks: kind -> "module:Class" (module relative to this package), imported on
first use, so loading the config never imports smtplib for a lab that only posts to Slack. Adding a
channel kind is one module here, one line in :data:`CHANNELS` and its spec in ``config.py``.

The alerts side (farm/alerts/) owns when to send and how often to retry: a channel's ``send`` makes one
attempt and says, through :class:`DeliveryError`'s ``retryable``, whether another one can help.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from farm.notify.base import Channel, DeliveryError, Notification, Route
from farm.notify.config import AlertsConfigError, EmailSpec, WebhookSpec, read_config
from farm.notify.render import render_text

#: kind -> "module:Class".
CHANNELS: dict[str, str] = {
    "webhook": "webhook:WebhookChannel",
    "email": "email:EmailChannel",
    "terminal": "terminal:TerminalChannel",
}

__all__ = [
    "CHANNELS",
    "AlertsConfigError",
    "Channel",
    "DeliveryError",
    "Notification",
    "Route",
    "channel_class",
    "load_channels",
    "render_text",
]


def channel_class(kind: str) -> type[Channel]:
    """The Channel class of a kind, imported now; KeyError names the kinds there are."""
    try:
        ref = CHANNELS[kind]
    except KeyError:
        raise KeyError(f"unknown channel kind {kind!r} (kinds: {', '.join(CHANNELS)})") from None
    module_name, _, class_name = ref.partition(":")
    return getattr(importlib.import_module(f".{module_name}", __name__), class_name)


def load_channels(path: Path | None = None) -> list[Channel]:
    """The configured channels, each with its routes. ``path`` None: FARM_ALERTS, else alerts.yaml beside
    the inventory, else the default: one terminal channel on stderr (alerts are never dropped silently on
    a fresh install). Raises :class:`AlertsConfigError` (file:line: field) for a bad file."""
    config = read_config(path)
    if config is None:
        return [channel_class("terminal")("terminal")]
    return [build(spec, config.routes.get(spec.name, ()), config.base_dir) for spec in config.channels]


def build(spec: Any, routes: tuple[Route, ...] = (), base_dir: Path = Path()) -> Channel:
    """One channel from its validated spec (farm.notify.config)."""
    cls: Any = channel_class(spec.kind)
    if isinstance(spec, WebhookSpec):
        return cls(
            spec.name,
            url=spec.url,
            url_env=spec.url_env,
            headers=spec.headers,
            headers_env=spec.headers_env,
            timeout_s=spec.timeout_s,
            routes=routes,
        )
    if isinstance(spec, EmailSpec):
        return cls(
            spec.name,
            host=spec.host,
            port=spec.port,
            starttls=spec.starttls,
            ssl_=spec.ssl,
            username=spec.username,
            password_env=spec.password_env,
            sender=spec.sender,
            to=spec.to,
            timeout_s=spec.timeout_s,
            routes=routes,
        )
    path = None if spec.path is None else base_dir / Path(spec.path).expanduser()
    return cls(spec.name, path=path, routes=routes)
