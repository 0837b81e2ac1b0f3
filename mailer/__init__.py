"""Email: the sender chosen from the settings (SMTP, or an outbox folder when SMTP_HOST is unset).

``send(kind, to, **context)`` builds the message from templates and delivers it with retries; it raises
``MailError`` when every attempt failed, so the caller can record the failure and retry later.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from mailer.messages import KINDS, build_message
from mailer.senders import MailError, OutboxSender, SMTPSender, deliver

__all__ = ["KINDS", "MailError", "OutboxSender", "SMTPSender", "build_message", "init_app", "send"]


def init_app(app: Flask) -> None:
    """Create the sender for this app from its settings."""
    config = app.config
    sender: SMTPSender | OutboxSender
    if config.get("SMTP_HOST"):
        sender = SMTPSender(
            config["SMTP_HOST"], int(config["SMTP_PORT"]), security=config["SMTP_SECURITY"],
            username=config.get("SMTP_USERNAME"), password=config.get("SMTP_PASSWORD"),
            timeout=float(config["SMTP_TIMEOUT"]),
        )
    else:
        outbox = config.get("MAIL_OUTBOX") or str(Path(app.instance_path) / "outbox")
        config["MAIL_OUTBOX"] = outbox
        sender = OutboxSender(outbox)
    app.extensions["mail_sender"] = sender


def send(kind: str, to: str, *, ref: str = "", **context) -> None:
    """Build the ``kind`` email and deliver it; raise MailError when it could not be sent.

    ``ref`` names the email in the log (a job id); the log never holds the address.
    """
    app = current_app
    message = build_message(kind, to=to, sender=app.config["MAIL_FROM"], **context)
    deliver(app.extensions["mail_sender"], message, attempts=int(app.config["MAIL_RETRIES"]),
            backoff=float(app.config["MAIL_BACKOFF_SECONDS"]), ref=f"the {kind} email of {ref or 'a job'}")
