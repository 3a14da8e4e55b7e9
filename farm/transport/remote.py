"""Building remote shell commands safely: every value is validated, then quoted as ONE literal argument.

The remote side always runs a command line through the login user's shell (that is how SSH ``exec``
works), so a value that reaches it unquoted is code. Rules for this package:

* a command line is only ever made by :func:`quote_argv` (or from constants and quoted parts);
* a remote path is checked by :func:`validate_remote_path` (absolute, normalized, no ``..``, no
  control characters) and a name that becomes part of a path by :func:`validate_name`.

Values that fail a check are rejected with :class:`UnsafeRemoteValue` (a :class:`FarmError`: it is
a configuration problem, never retried) naming what was wrong.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence

from farm.errors import FarmError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class UnsafeRemoteValue(FarmError, ValueError):
    """A value that must not be put into a remote command or path."""


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def quote_arg(arg: str) -> str:
    """One argument, quoted for a POSIX shell; NUL cannot be passed through a command line at all."""
    if not isinstance(arg, str):
        raise UnsafeRemoteValue(f"remote command argument must be a string, got {type(arg).__name__}")
    if "\x00" in arg:
        raise UnsafeRemoteValue(f"remote command argument contains a NUL byte: {_describe(arg)}")
    return shlex.quote(arg)


def quote_argv(argv: Sequence[str]) -> str:
    """A command line whose words reach the remote program exactly as given (one literal argument each)."""
    if isinstance(argv, str) or not argv:
        raise UnsafeRemoteValue("a remote command is a non-empty list of arguments, not a string")
    return " ".join(quote_arg(arg) for arg in argv)


def validate_remote_path(path: str) -> str:
    """Return ``path`` if it is absolute, normalized, has no ``..`` and no NUL/newline; raise otherwise."""
    if not isinstance(path, str) or not path:
        raise UnsafeRemoteValue(f"remote path must be a non-empty string, got {_describe(path)}")
    if any(c in path for c in "\x00\n\r"):
        raise UnsafeRemoteValue(f"remote path contains a NUL or newline: {_describe(path)}")
    if not path.startswith("/"):
        raise UnsafeRemoteValue(f"remote path must be absolute: {_describe(path)}")
    if ".." in path.split("/"):
        raise UnsafeRemoteValue(f"remote path must not contain '..': {_describe(path)}")
    if path != "/" and (posixpath.normpath(path) != path or path.startswith("//")):
        raise UnsafeRemoteValue(
            f"remote path is not normalized (use {posixpath.normpath(path)!r}): {_describe(path)}"
        )
    return path


def validate_name(name: str) -> str:
    """A name that becomes one path component: letters, digits, ``_.-``; starts alphanumeric; <= 64 chars."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UnsafeRemoteValue(
            f"invalid name {_describe(name)}: use 1-64 letters, digits, '_', '.', '-' (starting with a letter or digit)"
        )
    return name


def validate_sha256(value: str) -> str:
    """A content hash / artifact key: exactly 64 lowercase hex characters."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise UnsafeRemoteValue(f"not a sha256 hex digest: {_describe(value)}")
    return value


def remote_join(base: str, *names: str) -> str:
    """``base/name/...`` where ``base`` is a valid remote path and each name a valid :func:`validate_name`."""
    validate_remote_path(base)
    return posixpath.join(base, *(validate_name(n) for n in names))
