"""What every notification channel shares: the notification, the channel's interface, its failure, and the
route filters that decide which alerts a channel is shown."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any

from farm.errors import FarmError


@dataclass(frozen=True)
class Notification:
    """One message about a group of alerts (one sweep's regressions, or one provenance change).

    ``key`` is the group's dedup key: the outbox sends one notification per key, and channels that can
    (email's Message-ID) make a resend of the same key recognisable as a duplicate. ``text`` is a line or
    paragraph of context; the channels render one line per alert from ``alerts`` themselves (JSON-ready
    dicts, passed through whole: id, state, kind, metric, model, ..., whatever the alerts side has)."""

    key: str
    title: str
    text: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    severity: str = "warning"
    url: str | None = None


class DeliveryError(FarmError):
    """A channel could not deliver. ``retryable`` tells the outbox whether a later try can succeed (a
    server error, a timeout, a refused connection) or never will until someone fixes the config (a 4xx,
    a bad password); ``retry_after_s`` is the server's own hint (HTTP 429 Retry-After), when it gave one."""

    def __init__(self, message: str, retryable: bool, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Route:
    """Which alerts one channel gets. Every given filter must match; an alert lacking a filtered field
    does not match (a mail to on-call about ``resnet50`` must not fire on an alert that names no model)."""

    channel: str
    models: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    boards: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    min_change_pct: float | None = None

    def matches(self, alert: dict[str, Any]) -> bool:
        for key, allowed in (
            ("model", self.models),
            ("target", self.targets),
            ("board", self.boards),
            ("metric", self.metrics),
        ):
            if allowed is not None and alert.get(key) not in allowed:
                return False
        if self.min_change_pct is not None:
            change = alert.get("change_pct")
            if not isinstance(change, (int, float)) or isinstance(change, bool):
                return False
            if abs(change) < self.min_change_pct:  # a drop in throughput is a regression too
                return False
        return True


class Channel(ABC):
    """Sends one notification through one configured channel. Secrets are held as the NAME of an
    environment variable and read at send time, so a channel object can be logged, pickled or shown in a
    traceback without leaking one; ``__repr__`` shows only what is safe."""

    kind: str = ""

    def __init__(self, name: str, routes: tuple[Route, ...] = ()) -> None:
        self.name = name
        self.routes = routes

    @abstractmethod
    def send(self, n: Notification) -> str:
        """Deliver ``n``; returns a short receipt ("HTTP 200"). Raises :class:`DeliveryError`."""

    def matches(self, alert_or_notification: dict[str, Any] | Notification) -> bool:
        """Whether this channel wants an alert (or any alert of a notification): with no route, all."""
        if isinstance(alert_or_notification, Notification):
            if not self.routes or not alert_or_notification.alerts:
                return True
            return any(self.matches(a) for a in alert_or_notification.alerts)
        return not self.routes or any(r.matches(alert_or_notification) for r in self.routes)

    def select(self, n: Notification) -> Notification | None:
        """``n`` with only the alerts this channel wants, or None when it wants none of them."""
        if not self.routes or not n.alerts:
            return n
        wanted = [a for a in n.alerts if self.matches(a)]
        if not wanted:
            return None
        return n if len(wanted) == len(n.alerts) else replace(n, alerts=wanted)

    def _shown(self) -> str:
        """What __repr__ shows besides name and kind; never a secret value."""
        return ""

    def __repr__(self) -> str:
        extra = self._shown()
        return f"{type(self).__name__}(name={self.name!r}{', ' + extra if extra else ''})"

    __str__ = __repr__


def redacted_url(url: str) -> str:
    """A URL safe to log: scheme and host only (a webhook's path or query is often its secret, as in
    Slack's hooks.slack.com/services/T../B../XXXX)."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)(?:[^@/?#]*@)?([^/?#]*)", url)
    if not match:
        return "<url>"
    rest = url[match.end() :]
    return f"{match.group(1)}{match.group(2)}{'/***' if rest.strip('/') else ''}"
