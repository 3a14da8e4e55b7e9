"""A readable block on stderr, or appended to a log file: the channel that needs no server, so a lab
without Slack or SMTP still sees its alerts (and the default when no alerts.yaml exists)."""

from __future__ import annotations

import errno
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from farm.notify.base import Channel, DeliveryError, Notification, Route
from farm.notify.render import render_plain

#: Failures a later try may not meet (a full disk gets space back; a missing folder or a denial does not).
_TRANSIENT = {errno.ENOSPC, errno.EAGAIN, errno.EINTR, errno.EDQUOT}


class TerminalChannel(Channel):
    kind = "terminal"

    def __init__(
        self,
        name: str,
        *,
        path: Path | None = None,
        stream: TextIO | None = None,
        routes: tuple[Route, ...] = (),
    ) -> None:
        super().__init__(name, routes)
        self.path = path
        self._stream = stream  # tests; None: sys.stderr as it is at send time (pytest swaps it)

    def _shown(self) -> str:
        return f"path={str(self.path)!r}" if self.path else "stderr"

    def block(self, n: Notification) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        rule = "-" * 72
        return f"{rule}\n{stamp}  {n.severity.upper()}  {n.key}\n{render_plain(n)}\n{rule}\n"

    def send(self, n: Notification) -> str:
        text = self.block(n)
        if self.path is None:
            stream = self._stream or sys.stderr
            stream.write(text)
            stream.flush()
            return "stderr"
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise DeliveryError(
                f"{self.name}: cannot write {self.path}: {exc.strerror or exc}", exc.errno in _TRANSIENT
            ) from None
        return f"appended to {self.path}"
