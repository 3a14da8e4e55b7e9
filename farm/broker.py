"""The broker, as the farm needs to know it: whether it answers (asked before anything is written, and why
not as one line), and which messages it holds right now.

`farm submit` asks before it writes the sweep, `farm worker` and `farm fleet up` before they start, `farm
status` to warn. The reconciler reads the ids of the messages waiting in the farm's queues or delivered and
not yet acknowledged, so it can tell a queued job whose message is gone (Redis restarted from an older save,
a queue purged) from one that is only waiting its turn. Only Redis is read for that (kombu's Redis transport
keeps a queue as a list named after it, priority levels as ``<queue>\\x06\\x16<n>``, and delivered but
unacknowledged messages in the ``unacked`` hash); any other broker, or a Redis that cannot be reached,
gives None: the reconciler then re-publishes only what was never published, never guesses.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kombu import Connection
from kombu.exceptions import OperationalError

from farm.config import redact_url
from farm.errors import ConnectionFailure

if TYPE_CHECKING:
    from farm.config import Settings

log = logging.getLogger(__name__)

PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED = "unacked"


def live_message_ids(broker_url: str | None, queues: Iterable[str]) -> set[str] | None:
    if not broker_url or not broker_url.startswith(("redis://", "rediss://")):
        return None
    import redis

    try:
        client = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
        raw: list[bytes] = []
        for queue in queues:
            for step in PRIORITY_STEPS:
                key = queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}"
                raw += client.lrange(key, 0, -1)
        ids = {i for i in (_message_id(m) for m in raw) if i}
        for value in client.hvals(UNACKED):
            try:
                message = json.loads(value)[0]
            except (ValueError, IndexError, TypeError):
                continue
            found = _message_id(json.dumps(message).encode()) if isinstance(message, dict) else None
            if found:
                ids.add(found)
        client.close()
        return ids
    except redis.RedisError as exc:
        log.warning("cannot read the broker's queues (%s): only never-published jobs are re-published", exc)
        return None


def _message_id(raw: bytes | str) -> str | None:
    try:
        message = json.loads(raw)
    except (ValueError, TypeError):
        return None
    headers = message.get("headers") if isinstance(message, dict) else None
    found = headers.get("id") if isinstance(headers, dict) else None
    return found if isinstance(found, str) else None


def farm_messages(settings: Settings) -> set[str] | None:
    """The live message ids in every queue the farm declares (None in embedded mode: an embedded sweep's
    runner may be alive in another process, and its jobs say so themselves)."""
    if settings.embedded:
        return None
    from farm.inventory import load_inventory
    from farm.queues import declared_queues

    inventory = load_inventory(settings.inventory_dir)
    queues = declared_queues(list(inventory.board_types), [b.name for b in inventory.boards])
    return live_message_ids(settings.broker_url, [q.name for q in queues])


#: How long a check waits for a broker that does not answer (a refused connection fails at once).
CHECK_TIMEOUT_S = 5.0

#: What a broker check can raise: kombu's OperationalError (the usual), OSError from the socket, KeyError
#: (no such transport), ValueError (a malformed URL), ImportError (a transport's library not installed).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    OSError,
    KeyError,
    ValueError,
    ImportError,
)


def check_broker(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Connect once; raise ConnectionFailure with what to check when the broker cannot be reached."""
    try:
        with Connection(url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0)
    except BROKER_ERRORS as exc:
        raise ConnectionFailure(explain(exc, url)) from exc


def explain(exc: BaseException, url: str) -> str:
    """One line for a broker error: where (password hidden), what happened, what to check."""
    where = redact_url(url)
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    try:
        parts = urlsplit(url)
        host = f"{parts.hostname or 'localhost'}:{parts.port or 6379}" if parts.hostname else "its host"
    except ValueError:
        host = "its host"
    checks = [
        (r"no such transport", "unknown broker kind: use redis://HOST:6379/0 (FARM_BROKER_URL)"),
        (r"connection refused", f"connection refused at {host}: is Redis running there? (FARM_BROKER_URL)"),
        (
            r"name or service not known|nodename nor servname|temporary failure in name resolution",
            "unknown host: check the host name in FARM_BROKER_URL",
        ),
        (
            r"invalid password|wrongpass|noauth|authentication",
            "authentication failed: check the password in FARM_BROKER_URL",
        ),
        (r"timed out|timeout", f"no answer from {host} in time: check the host, the port and any firewall"),
    ]
    if isinstance(exc, ImportError):
        return f"cannot reach the broker {where}: its library {exc.name or '?'} is not installed"
    for pattern, reason in checks:
        if re.search(pattern, message, re.IGNORECASE):
            return f"cannot reach the broker {where}: {reason}"
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return f"cannot reach the broker {where}: {first} (FARM_BROKER_URL)"
