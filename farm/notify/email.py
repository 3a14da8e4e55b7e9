"""Email through an SMTP server (smtplib): plain, STARTTLS or implicit TLS, optional login.

The body is plain text (the notification's text and one line per alert), the subject its title. The
Message-ID is derived from the notification's key, so a resend of the same notification (the outbox's
retry after a lost answer) carries the same id and mail servers and clients can see it as a duplicate.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from farm.notify.base import Channel, DeliveryError, Notification, Route
from farm.notify.render import render_plain


def message_id(key: str, sender: str) -> str:
    """``<farm-alert-<sha256(key)[:32]>@<the sender's domain>>``: stable per key."""
    domain = sender.rpartition("@")[2] or "farm.invalid"
    return f"<farm-alert-{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class EmailChannel(Channel):
    kind = "email"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        sender: str,
        to: list[str],
        port: int | None = None,
        starttls: bool = False,
        ssl_: bool = False,
        username: str | None = None,
        password_env: str | None = None,
        timeout_s: float = 30.0,
        routes: tuple[Route, ...] = (),
    ) -> None:
        super().__init__(name, routes)
        if starttls and ssl_:
            raise ValueError("starttls and ssl exclude each other")
        self.host, self.sender, self.to = host, sender, list(to)
        self.port = port if port is not None else (465 if ssl_ else 587 if starttls else 25)
        self.starttls, self.ssl = starttls, ssl_
        self.username, self.password_env = username, password_env
        self.timeout_s = timeout_s

    def _shown(self) -> str:
        security = "ssl" if self.ssl else "starttls" if self.starttls else "plain"
        login = f", username={self.username!r}, password=<${self.password_env}>" if self.username else ""
        return f"host={self.host!r}, port={self.port}, {security}{login}, to={self.to!r}"

    def message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[farm] {n.title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id(n.key, self.sender)
        msg["X-Farm-Alert-Key"] = n.key
        msg["X-Farm-Severity"] = n.severity
        msg.set_content(render_plain(n) + "\n")
        return msg

    def _password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise DeliveryError(
                f"{self.name}: environment variable {self.password_env} is not set", retryable=False
            )
        return value

    def send(self, n: Notification) -> str:
        msg = self.message(n)
        password = self._password()
        where = f"{self.host}:{self.port}"
        context = ssl.create_default_context()
        try:
            if self.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=context
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with smtp:
                if self.starttls:
                    smtp.starttls(context=context)
                if self.username is not None:
                    smtp.login(self.username, password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{self.name}: {where} refused the login of {self.username!r}: {_said(exc)}", retryable=False
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"{self.name}: {where} refused every recipient: "
                + "; ".join(f"{who}: {code} {_text(text)}" for who, (code, text) in exc.recipients.items()),
                retryable=all(400 <= c < 500 for c in codes),
            ) from None
        except smtplib.SMTPResponseException as exc:  # a 4xx is "try later" in SMTP; a 5xx is final
            raise DeliveryError(
                f"{self.name}: {where} answered {_said(exc)}", retryable=400 <= exc.smtp_code < 500
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{self.name}: {where}: {exc}", retryable=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{self.name}: {where}: certificate not trusted: {exc.verify_message}", retryable=False
            ) from None
        except TimeoutError:
            raise DeliveryError(
                f"{self.name}: {where} did not answer within {self.timeout_s:g} s", retryable=True
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, reset, DNS: transient
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DeliveryError(f"{self.name}: cannot deliver through {where}: {reason}", True) from None
        accepted = len(self.to) - len(refused)
        receipt = f"SMTP accepted for {accepted} recipient{'s' if accepted != 1 else ''}"
        return receipt + (f" (refused: {', '.join(sorted(refused))})" if refused else "")


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _said(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}".strip()
