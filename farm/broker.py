"""What the broker holds right now: the ids of the messages waiting in the farm's queues or delivered and
not yet acknowledged, so the reconciler can tell a queued job whose message is gone (Redis restarted from
an older save, a queue purged) from one that is only waiting its turn.

Only Redis is read (kombu's Redis transport keeps a queue as a list named after it, priority levels as
``<queue>\\x06\\x16<n>``, and delivered-but-unacknowledged messages in the ``unacked`` hash). Any other broker,
or a Redis that cannot be reached, gives None: the reconciler then re-publishes only what was never
published, never guesses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

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
