"""The webhook channel against a real HTTP server on 127.0.0.1 (http.server in a thread): what it posts,
and how each failure is classed for the outbox (retryable or not)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from farm.notify import DeliveryError, Notification
from farm.notify.webhook import WebhookChannel
from tests.farm.notify.http_server import Server

ALERT = {
    "id": 7,
    "state": "confirmed",
    "metric": "latency_ms_p99",
    "model": "resnet50",
    "precision": "int8",
    "batch_size": 1,
    "scenario": "SingleStream",
    "target": "zcu104",
    "board": "zcu104-0",
    "before": 10.4,
    "after": 12.6,
    "change_pct": 21.2,
    "confirmed": True,
    "run_ids": [1, 2, 3, 4, 5, 6],
}
NOTE = Notification(key="sweep-3/latency", title="1 regression confirmed", text="", alerts=[ALERT])


def test_200_posts_the_json_payload(server: Server) -> None:
    channel = WebhookChannel("lab-slack", url=server.url)
    assert channel.send(NOTE) == "HTTP 200"
    path, headers, body = server.received[0]
    assert path == "/services/T0/B0/SECRETPATH" and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["title"] == NOTE.title and doc["key"] == NOTE.key and doc["severity"] == "warning"
    assert doc["alerts"] == [ALERT]  # passed through whole
    assert doc["text"].splitlines() == [
        "*[farm] 1 regression confirmed*",
        "• resnet50 int8 b1 SingleStream on zcu104 (zcu104-0): p99 latency 10.4 → 12.6 ms (+21.2 %), "
        "confirmed by 6 runs",
    ]


def test_500_is_retryable(server: Server) -> None:
    server.status = 503
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel("hook", url=server.url).send(NOTE)
    assert caught.value.retryable is True
    assert "HTTP 503" in str(caught.value) and "SECRETPATH" not in str(caught.value)


def test_400_is_not_retryable_and_says_what_the_server_said(server: Server) -> None:
    server.status = 400
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel("hook", url=server.url).send(NOTE)
    assert caught.value.retryable is False
    assert "HTTP 400: invalid_payload" in str(caught.value)


def test_429_is_retryable_with_the_servers_hint(server: Server) -> None:
    server.status, server.headers = 429, {"Retry-After": "30"}
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel("hook", url=server.url).send(NOTE)
    assert caught.value.retryable is True and caught.value.retry_after_s == 30.0


def test_a_redirect_is_not_followed(server: Server) -> None:
    server.status, server.headers = 302, {"Location": "http://127.0.0.1:1/elsewhere"}
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel("hook", url=server.url).send(NOTE)
    assert caught.value.retryable is False and "redirects are not followed" in str(caught.value)
    assert len(server.received) == 1


def test_timeout_is_retryable(server: Server) -> None:
    server.delay_s = 2.0
    start = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel("hook", url=server.url, timeout_s=0.3).send(NOTE)
    assert caught.value.retryable is True and "did not answer within 0.3 s" in str(caught.value)
    assert time.monotonic() - start < 1.5


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(DeliveryError) as caught:
            WebhookChannel("hook", url=f"http://127.0.0.1:{port}/x").send(NOTE)
    assert caught.value.retryable is True and "cannot reach http://127.0.0.1" in str(caught.value)


def test_url_and_headers_come_from_the_environment_at_send_time(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = WebhookChannel(
        "hook",
        url_env="TEST_HOOK_URL",
        headers={"X-Team": "perf"},
        headers_env={"Authorization": "TEST_HOOK_TOKEN"},
    )
    monkeypatch.setenv("TEST_HOOK_URL", server.url)
    monkeypatch.setenv("TEST_HOOK_TOKEN", "Bearer s3cr3t-token")
    assert channel.send(NOTE) == "HTTP 200"
    _, headers, _ = server.received[0]
    assert headers["Authorization"] == "Bearer s3cr3t-token" and headers["X-Team"] == "perf"
    for shown in (repr(channel), str(channel)):
        assert "s3cr3t" not in shown and "SECRETPATH" not in shown and "$TEST_HOOK_URL" in shown

    monkeypatch.delenv("TEST_HOOK_TOKEN")
    with pytest.raises(DeliveryError) as caught:
        channel.send(NOTE)
    assert caught.value.retryable is False and "TEST_HOOK_TOKEN" in str(caught.value)


def test_an_invalid_url_from_the_environment_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_HOOK_URL", "http://127.0.0.1:1/s3cret path\n")
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel("hook", url_env="TEST_HOOK_URL").send(NOTE)
    assert caught.value.retryable is False and "s3cret" not in str(caught.value)
