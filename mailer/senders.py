"""Ways to hand a finished email over: an SMTP server, or an outbox folder of .eml files."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

log = logging.getLogger(__name__)


class MailError(Exception):
    """An email could not be delivered to the SMTP server (after retries)."""


class SMTPSender:
    """Send through an SMTP server with plain, STARTTLS or implicit-TLS connections."""

    def __init__(self, host: str, port: int, *, security: str = "starttls", username: str | None = None,
                 password: str | None = None, timeout: float = 10.0):
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.timeout = username, password, timeout

    def send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)

    def __repr__(self) -> str:
        return f"SMTPSender({self.host}:{self.port}, {self.security})"


class OutboxSender:
    """Write each email as an .eml file in a folder (the embedded default when no SMTP server is set)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path = self.folder / name
        path.write_bytes(bytes(message))
        log.info("mail written to %s: %s", path, message["Subject"])

    def __repr__(self) -> str:
        return f"OutboxSender({self.folder})"


def deliver(sender, message: EmailMessage, attempts: int = 3, backoff: float = 0.5, ref: str = "an email") -> None:
    """Send ``message``, retrying with exponential backoff; raise MailError when every attempt fails.

    ``ref`` names the message in the log, which never holds the recipient's address.
    """
    last: Exception | None = None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            sender.send(message)
            return
        except (OSError, smtplib.SMTPException) as exc:
            last = exc
            log.warning("sending %s failed (attempt %d of %d): %s", ref, attempt, attempts, _describe(exc))
            if attempt < attempts:
                time.sleep(backoff * 2 ** (attempt - 1))
    raise MailError(f"could not send mail via {sender!r}: {_describe(last)}") from last


def _describe(exc: Exception | None) -> str:
    """Say what went wrong without the recipient's address (smtplib puts refused recipients in its messages)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "the server refused the recipient"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else type(exc).__name__
