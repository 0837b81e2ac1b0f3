"""Build the three emails (started, done, failed) from templates: UTF-8 text plus an HTML alternative."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

from flask import render_template

KINDS = ("started", "done", "failed")


def build_message(kind: str, *, to: str, sender: str, **context) -> EmailMessage:
    """Render templates/email/<kind>/{subject.txt,body.txt,body.html} into an EmailMessage."""
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}")
    subject = render_template(f"email/{kind}/subject.txt", **context).strip()
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())  # one line, whatever the query held
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="advanced-image-downloader")
    message.set_content(render_template(f"email/{kind}/body.txt", **context), charset="utf-8")
    message.add_alternative(render_template(f"email/{kind}/body.html", **context), subtype="html", charset="utf-8")
    return message
