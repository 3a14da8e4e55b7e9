"""The email channel against a real SMTP server (aiosmtpd's Controller on 127.0.0.1): the message as
received, login, and how SMTP's answers are classed (4xx: try later; 5xx and a refused login: final)."""

from __future__ import annotations

import email
import socket
from collections.abc import Callable, Iterator
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from farm.notify import DeliveryError, Notification
from farm.notify.email import EmailChannel, message_id
from tests.conftest import free_port

NOTE = Notification(
    key="sweep-3/latency",
    title="1 regression confirmed",
    text="Sweep nightly-42 on the lab.",
    alerts=[
        {
            "model": "resnet50",
            "precision": "int8",
            "batch_size": 1,
            "scenario": "SingleStream",
            "target": "zcu104",
            "metric": "latency_ms_p99",
            "before": 10.4,
            "after": 12.6,
            "change_pct": 21.2,
            "cause": "clock 300 -> 240 MHz on zcu104-0 only",
        }
    ],
    url="http://farm.example/alerts/7",
)


class Inbox:
    """aiosmtpd handler: keeps what it was sent; ``answer`` replaces the 250 (e.g. "451 try later")."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.answer: str | None = None

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.answer:
            return self.answer
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism: str, auth_data: object) -> AuthResult:
    """farm / pw-123 only; handled=False: aiosmtpd sends the 535 itself."""
    ok = isinstance(auth_data, LoginPassword) and (_s(auth_data.login), _s(auth_data.password)) == (
        "farm",
        "pw-123",
    )
    return AuthResult(success=ok, handled=False)


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def smtp() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    controllers: list[Controller] = []

    def start(**kwargs: object) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


def _channel(port: int, **kwargs: object) -> EmailChannel:
    return EmailChannel(
        "oncall-mail",
        host="127.0.0.1",
        port=port,
        sender="farm@lab.example",
        to=["perf-oncall@example.com", "lead@example.com"],
        timeout_s=5,
        **kwargs,
    )


def test_the_message_arrives_with_subject_body_and_a_stable_id(smtp) -> None:
    inbox, port = smtp()
    assert _channel(port).send(NOTE) == "SMTP accepted for 2 recipients"
    ((rcpt, msg),) = inbox.messages
    assert rcpt == ["perf-oncall@example.com", "lead@example.com"]
    assert msg["Subject"] == "[farm] 1 regression confirmed" and msg["From"] == "farm@lab.example"
    assert msg["Message-ID"] == message_id(NOTE.key, "farm@lab.example")
    assert msg["Message-ID"].endswith("@lab.example>")
    body = msg.get_payload(decode=True).decode()
    assert body.splitlines() == [
        "[farm] 1 regression confirmed",
        "Sweep nightly-42 on the lab.",
        "- resnet50 int8 b1 SingleStream on zcu104: p99 latency 10.4 -> 12.6 ms (+21.2 %); "
        "cause: clock 300 -> 240 MHz on zcu104-0 only",
        "details: http://farm.example/alerts/7",
    ]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_with_the_password_from_the_environment(smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, port = smtp(authenticator=_authenticator, auth_required=True, auth_require_tls=False)
    channel = _channel(port, username="farm", password_env="TEST_SMTP_PASSWORD")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "pw-123")
    assert channel.send(NOTE).startswith("SMTP accepted")
    assert len(inbox.messages) == 1
    assert "pw-123" not in repr(channel) and "$TEST_SMTP_PASSWORD" in repr(channel)

    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(DeliveryError) as caught:
        channel.send(NOTE)
    assert caught.value.retryable is False and "refused the login of 'farm'" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_a_4xx_answer_is_retryable_and_a_5xx_is_not(smtp) -> None:
    inbox, port = smtp()
    inbox.answer = "451 4.3.0 try again later"
    with pytest.raises(DeliveryError) as caught:
        _channel(port).send(NOTE)
    assert caught.value.retryable is True and "451" in str(caught.value)
    inbox.answer = "550 5.7.1 rejected"
    with pytest.raises(DeliveryError) as caught:
        _channel(port).send(NOTE)
    assert caught.value.retryable is False and "550" in str(caught.value)


def test_no_server_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(DeliveryError) as caught:
            _channel(sock.getsockname()[1]).send(NOTE)
    assert caught.value.retryable is True and "cannot deliver through 127.0.0.1" in str(caught.value)
