"""A JSON POST to a webhook (Slack's incoming webhooks and anything that reads their ``text``).

The body is ``{"text", "title", "key", "severity", "url", "alerts"}``: Slack shows ``text`` and ignores the
rest; a receiver of our own reads the alerts whole. urllib from the standard library does it (no client
library to keep up); redirects are not followed (a POST that is redirected is a config to fix).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

from farm import __version__ as farm_version
from farm.notify.base import Channel, DeliveryError, Notification, Route, redacted_url
from farm.notify.render import render_text

#: Keep error messages short: a server's error page is not a log line.
_BODY_SHOWN = 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


class WebhookChannel(Channel):
    kind = "webhook"

    def __init__(
        self,
        name: str,
        *,
        url: str | None = None,
        url_env: str | None = None,
        headers: dict[str, str] | None = None,
        headers_env: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        routes: tuple[Route, ...] = (),
    ) -> None:
        super().__init__(name, routes)
        if (url is None) == (url_env is None):
            raise ValueError("a webhook needs exactly one of url and url_env")
        self.url, self.url_env = url, url_env
        self.headers = dict(headers or {})
        self.headers_env = dict(headers_env or {})
        self.timeout_s = timeout_s

    def _shown(self) -> str:
        where = f"url=<${self.url_env}>" if self.url_env else f"url={redacted_url(self.url or '')!r}"
        names = sorted({*self.headers, *self.headers_env})
        return f"{where}, headers={names}" if names else where

    def _target(self) -> str:
        if self.url_env is None:
            assert self.url is not None
            return self.url
        value = os.environ.get(self.url_env, "")
        if not value:
            raise DeliveryError(
                f"{self.name}: environment variable {self.url_env} is not set", retryable=False
            )
        return value

    def _headers(self) -> dict[str, str]:
        out = {"Content-Type": "application/json", "User-Agent": f"farm/{farm_version}", **self.headers}
        for header, variable in self.headers_env.items():
            value = os.environ.get(variable)
            if value is None:
                raise DeliveryError(
                    f"{self.name}: environment variable {variable} (header {header}) is not set",
                    retryable=False,
                )
            out[header] = value
        return out

    def payload(self, n: Notification) -> dict[str, Any]:
        return {
            "text": render_text(n),
            "title": n.title,
            "key": n.key,
            "severity": n.severity,
            "url": n.url,
            "alerts": n.alerts,
        }

    def send(self, n: Notification) -> str:
        url = self._target()
        shown = redacted_url(url)
        body = json.dumps(self.payload(n), default=str).encode()
        try:
            request = urllib.request.Request(url, data=body, headers=self._headers(), method="POST")
        except ValueError:  # never echo it: the URL may be the secret
            raise DeliveryError(f"{self.name}: the webhook URL is not a valid URL", retryable=False) from None
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                response.read(_BODY_SHOWN)
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            raise _http_error(self.name, shown, exc) from None
        except TimeoutError:
            raise DeliveryError(
                f"{self.name}: {shown} did not answer within {self.timeout_s:g} s", retryable=True
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            # a certificate that does not verify stays so until someone acts; refused, reset, DNS: transient
            retryable = not isinstance(reason, ssl.SSLCertVerificationError)
            if isinstance(reason, TimeoutError):
                raise DeliveryError(
                    f"{self.name}: {shown} did not answer within {self.timeout_s:g} s", retryable=True
                ) from None
            raise DeliveryError(f"{self.name}: cannot reach {shown}: {_reason(reason)}", retryable) from None
        except (http.client.InvalidURL, ValueError):  # a control character in it: never echo the URL
            raise DeliveryError(f"{self.name}: the webhook URL is not a valid URL", retryable=False) from None
        except (OSError, http.client.HTTPException) as exc:  # a reset or a broken answer mid-response
            raise DeliveryError(f"{self.name}: {shown}: {_reason(exc)}", retryable=True) from None


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _http_error(name: str, shown: str, exc: urllib.error.HTTPError) -> DeliveryError:
    """5xx and 429: try again later; any other 4xx (and a redirect): the request itself is wrong."""
    code = exc.code
    try:
        text = exc.read(_BODY_SHOWN).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    detail = f": {' '.join(text.split())[:_BODY_SHOWN]}" if text else ""
    message = f"{name}: {shown} answered HTTP {code}{detail}"
    if 300 <= code < 400:
        message += " (redirects are not followed: configure the final URL)"
    retry_after = _retry_after(exc.headers) if code == 429 else None
    return DeliveryError(message, retryable=code >= 500 or code == 429, retry_after_s=retry_after)


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the outbox's own backoff will do
