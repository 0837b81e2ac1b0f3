"""Email: UTF-8 text and HTML from templates, over a real SMTP server or into the outbox; retries."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

import mailer
from db import Job

JOB = Job(id="j1", query="Café au lait — 咖啡", email="bee@example.com", count=10, run_at=datetime.now(UTC),
          timezone="Europe/Paris", delivered=7, zip_bytes=3 * 1024 * 1024, note="found 7 of 10 images: 3 broken links")


def _done_context():
    return {"job": JOB, "job_url": "http://x/jobs/j1", "home_url": "http://x/", "download_url": "http://x/download/t",
            "expires_local": "2026-11-23 10:30 (Europe/Paris)", "zip_size": "3.0 MB"}


def test_done_email_over_real_smtp_is_utf8_with_html(make_app, smtp_server):
    app = make_app(**smtp_server.settings())
    with app.app_context():
        mailer.send("done", JOB.email, **_done_context())
    [message] = smtp_server.wait_for(lambda msgs: len(msgs) == 1)
    assert message["Subject"] == "Your images are ready"
    assert message["To"] == "bee@example.com"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "7 images of the 10 you asked for, in a zip of 3.0 MB" in text
    assert "2026-11-23 10:30 (Europe/Paris)" in text
    assert "http://x/download/t" in text and 'href="http://x/download/t"' in html
    assert "found 7 of 10 images: 3 broken links" in text


@pytest.mark.parametrize("kind", ["started", "failed"])
def test_other_emails_render(make_app, smtp_server, kind):
    app = make_app(**smtp_server.settings())
    job = Job(**{**JOB.__dict__, "error": "the image search engines did not answer; try again later"})
    with app.app_context():
        mailer.send(kind, job.email, job=job, job_url="http://x/jobs/j1", home_url="http://x/")
    [message] = smtp_server.wait_for(lambda msgs: len(msgs) == 1)
    body = message.get_body(("plain",)).get_content()
    assert "Café au lait — 咖啡" in body
    assert "Café" not in message["Subject"]
    if kind == "failed":
        assert "the image search engines did not answer; try again later" in body
        assert "http://x/" in body


def test_without_smtp_host_mail_goes_to_the_outbox(make_app, tmp_path):
    app = make_app(SMTP_HOST=None, MAIL_OUTBOX=str(tmp_path / "box"))
    with app.app_context():
        mailer.send("done", JOB.email, **_done_context())
    [path] = list((tmp_path / "box").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Your images are ready"


@pytest.mark.parametrize("kind", mailer.KINDS)
def test_every_subject_is_our_fixed_text(make_app, kind):
    """Nothing the submitter typed reaches a subject line; the confirmation email leaves the query out entirely."""
    app = make_app()
    job = Job(**{**JOB.__dict__, "query": "FREE MONEY call now", "error": "no images"})
    context = {**_done_context(), "job": job, "confirm_url": "http://x/confirm/t"}
    with app.app_context():
        message = mailer.build_message(kind, to=job.email, sender="us@example.com", **context)
    assert message["Subject"] == {"confirm": "Confirm your email address", "started": "Your images are being collected",
                                  "done": "Your images are ready",
                                  "failed": "Your images could not be collected"}[kind]
    body = message.get_body(("plain",)).get_content()
    assert ("FREE MONEY" in body) == (kind != "confirm")
    if kind == "confirm":
        assert "http://x/confirm/t" in body and 'href="http://x/confirm/t"' in message.get_body(("html",)).get_content()


def test_a_refused_recipient_is_not_named_in_the_error(make_app, smtp_server, monkeypatch, caplog):
    import smtplib

    app = make_app(**smtp_server.settings(), MAIL_RETRIES=2)

    def refuse(message):
        raise smtplib.SMTPRecipientsRefused({JOB.email: (550, b"no such user")})

    monkeypatch.setattr(app.extensions["mail_sender"], "send", refuse)
    with app.app_context(), pytest.raises(mailer.MailError) as caught:
        mailer.send("done", JOB.email, ref="job j1", **_done_context())
    assert "refused the recipient" in str(caught.value)
    assert JOB.email not in str(caught.value) and JOB.email not in caplog.text
    assert "the done email of job j1" in caplog.text


def test_a_dead_smtp_server_raises_after_the_retries(make_app, smtp_server):
    app = make_app(**smtp_server.settings(), MAIL_RETRIES=3)
    smtp_server.stop()
    with app.app_context(), pytest.raises(mailer.MailError) as caught:
        mailer.send("done", JOB.email, **_done_context())
    assert "could not send mail" in str(caught.value)
    assert smtp_server.messages == []


def test_a_send_is_retried_until_it_goes_through(make_app, smtp_server, monkeypatch):
    app = make_app(**smtp_server.settings(), MAIL_RETRIES=3)
    sender = app.extensions["mail_sender"]
    calls = []
    real_send = sender.send

    def flaky(message):
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("simulated outage")
        real_send(message)

    monkeypatch.setattr(sender, "send", flaky)
    with app.app_context():
        mailer.send("done", JOB.email, **_done_context())
    assert len(calls) == 3
    smtp_server.wait_for(lambda msgs: len(msgs) == 1)
