"""The text of a notification: one header line and one line per alert, from whatever fields an alert has.

Slack's mrkdwn is the common denominator (Mattermost, Rocket.Chat and Teams' Slack-compatible hooks read
it too): ``*bold*`` for the header, ``&``, ``<``, ``>`` escaped as Slack requires, and ``->`` as ``→``. Email and the
terminal take the same lines as plain text (:func:`render_plain`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from farm import metrics
from farm.notify.base import Notification

#: Alert states that need no tag in front of the line (the usual case: it is firing).
_QUIET_STATES = {None, "", "open", "firing", "confirmed", "new"}


def render_text(n: Notification) -> str:
    """Slack-compatible text: ``*[farm] <title>*``, the notification's text, one line per alert, the link."""
    lines = [f"*[farm] {_slack(n.title)}*"]
    if n.text.strip():
        lines.append(_slack(n.text.strip()))
    lines += [f"• {_slack(line)}" for line in alert_lines(n.alerts)]
    if n.url:
        lines.append(f"<{n.url}|details>")
    return "\n".join(lines)


def render_plain(n: Notification) -> str:
    """The same as plain text (email bodies, the terminal): no markup, no escaping."""
    lines = [f"[farm] {n.title}"]
    if n.text.strip():
        lines.append(n.text.strip())
    lines += [f"- {line}" for line in alert_lines(n.alerts)]
    if n.url:
        lines.append(f"details: {n.url}")
    return "\n".join(lines)


def alert_lines(alerts: Iterable[dict[str, Any]]) -> list[str]:
    return [alert_line(a) for a in alerts]


def alert_line(alert: dict[str, Any]) -> str:
    """e.g. ``resnet50 int8 b1 SingleStream on zcu104 (zcu104-0): p99 latency 10.4 -> 12.6 ms (+21.2 %),
    confirmed by 6 runs; cause: clock 300 -> 240 MHz``. Fields that are missing are left out; an alert
    with none of them still gets a line (its id, or its kind)."""
    what = " ".join(
        str(part)
        for part in (
            alert.get("model"),
            alert.get("precision"),
            f"b{alert['batch_size']}" if alert.get("batch_size") is not None else None,
            alert.get("scenario"),
        )
        if part not in (None, "")
    )
    if alert.get("target"):
        what = f"{what} on {alert['target']}".strip()
    if alert.get("board") and alert.get("board") != alert.get("target"):
        what = f"{what} ({alert['board']})".strip()
    if alert.get("source") == "emulated":  # emulated figures say so everywhere
        what = f"{what} (emulated)".strip()
    state = alert.get("state")
    if state not in _QUIET_STATES:
        what = f"[{state}] {what}".strip()
    if not what:
        what = f"alert {alert['id']}" if alert.get("id") is not None else str(alert.get("kind") or "alert")
    details = [d for d in (_change(alert), _confirmed(alert)) if d]
    line = f"{what}: {', '.join(details)}" if details else what
    cause = _cause(alert.get("cause"))
    return f"{line}; cause: {cause}" if cause else line


def _change(alert: dict[str, Any]) -> str:
    name = alert.get("metric")
    label = metrics.label(name) if isinstance(name, str) else (alert.get("kind") or "")
    unit = alert.get("unit")
    if unit is None and isinstance(name, str):
        found = metrics.find(name)
        unit = (found.unit_text or found.unit) if found else ""
    before, after = alert.get("before"), alert.get("after")
    text = str(label)
    if _number(before) and _number(after):
        text += f" {_num(before)} -> {_num(after)}{' ' + unit if unit else ''}"
    elif _number(after):
        text += f" {_num(after)}{' ' + unit if unit else ''}"
    change = alert.get("change_pct")
    if _number(change):
        text += f" ({change:+.1f} %)"
    return text.strip()


def _confirmed(alert: dict[str, Any]) -> str:
    confirmed = alert.get("confirmed")
    runs = alert.get("run_ids")
    count = len(runs) if isinstance(runs, (list, tuple)) else None
    if isinstance(confirmed, int) and not isinstance(confirmed, bool):
        count, confirmed = confirmed, True
    if confirmed is True:
        return f"confirmed by {count} run{'s' if count != 1 else ''}" if count else "confirmed"
    if confirmed is False:
        return "not confirmed yet"
    return ""


def _cause(cause: Any) -> str:
    if cause is None or cause == "":
        return ""
    if isinstance(cause, dict):
        for key in ("summary", "text", "description"):
            if isinstance(cause.get(key), str):
                return cause[key]
        return ", ".join(f"{k} {v}" for k, v in cause.items())
    if isinstance(cause, (list, tuple)):
        return "; ".join(_cause(c) for c in cause if _cause(c))
    return str(cause)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _num(value: float) -> str:
    """Three significant figures at most, never scientific for the magnitudes metrics have."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    digits = 0 if magnitude >= 100 else 1 if magnitude >= 1 else 2 if magnitude >= 0.1 else 3
    return f"{value:.{digits}f}"


def _slack(text: str) -> str:
    """Escaped as Slack requires; the arrow as one character, so no reader sees ``-&gt;``."""
    text = text.replace(" -> ", " → ")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
