"""Build the four emails (confirm, started, done, failed) from templates: UTF-8 text plus an HTML alternative
(templates/email/layout.html: inline styles and one button, as mail programs show no style sheets), with the
Date and Message-ID headers.

Every subject is fixed text of ours (templates/email/<kind>/subject.txt takes no context): nothing a stranger
typed goes into a subject line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import render_template

KINDS = ("confirm", "started", "done", "failed")


def build_message(kind: str, *, to: str, sender: str, **context) -> EmailMessage:
    """Render templates/email/<kind>/{subject.txt,body.txt,body.html} into an EmailMessage."""
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}")
    subject = render_template(f"email/{kind}/subject.txt").strip()
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="advanced-image-downloader")
    message.set_content(render_template(f"email/{kind}/body.txt", **context), charset="utf-8")
    message.add_alternative(render_template(f"email/{kind}/body.html", **context), subtype="html", charset="utf-8")
    return message
