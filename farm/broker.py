"""Whether the broker answers, asked before anything is written, and why not as one line.

`farm submit` asks before it writes the sweep (a sweep written while Redis is down would sit pending with
nobody to publish it), `farm worker` and `farm fleet up` before they start, `farm status` to warn.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from kombu import Connection
from kombu.exceptions import OperationalError

from farm.config import redact_url
from farm.errors import ConnectionFailure

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
