"""Double opt-in through the app with a real SMTP server: one confirmation email, the button, the caps, the upkeep."""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest

from db import get_store
from jobs.cleanup import purge_unconfirmed

AT = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
CONFIRM_SUBJECT = "Confirm your email address"


def _job(email: str, query: str = "red panda") -> dict:
    return {"search-query": query, "email": email, "images": 3, "date": AT.strftime("%Y-%m-%d"),
            "time": AT.strftime("%H:%M")}


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _confirm_path(message) -> str:
    return re.search(r"http://[^/\s]+(/confirm/\S+)", message.get_body(("plain",)).get_content())[1]


@pytest.fixture
def mail_app(make_app, smtp_server):
    """An app that mails the test SMTP server (so EMAIL_CONFIRMATION=auto is on); jobs are not run."""
    def factory(**settings):
        return make_app(**smtp_server.settings(), **settings)

    return factory


def test_three_jobs_for_a_new_address_send_one_confirmation_email(mail_app, smtp_server, caplog):
    app = mail_app(MAX_ACTIVE_JOBS_PER_EMAIL=5)
    client = app.test_client()
    ids = []
    for _ in range(4):  # the fourth within the hour sends no second confirmation either
        response = client.post("/api/jobs", json=_job("new@example.com"))
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["status"] == "unconfirmed"
        ids.append(response.get_json()["id"])
    [message] = smtp_server.wait_for(lambda msgs: len(msgs) >= 1)
    time.sleep(1)  # a second email, if any, would have arrived now
    assert [m["Subject"] for m in smtp_server.messages] == [CONFIRM_SUBJECT]
    assert message["To"] == "new@example.com"
    body = message.get_body(("plain",)).get_content()
    assert "red panda" not in body  # nothing the submitter typed goes to an address that has not agreed
    path = _confirm_path(message)

    # A mail scanner opening the link confirms nothing; a POST without the form's CSRF token neither.
    page = client.get(path)
    assert page.status_code == 200 and 'id="confirm"' in page.get_data(as_text=True)
    assert client.post(path).status_code == 400
    with app.app_context():
        assert {get_store().get_job(i).status for i in ids} == {"unconfirmed"}

    confirmed = client.post(path, data={"csrf_token": _csrf(page.get_data(as_text=True))})
    assert confirmed.status_code == 200
    assert "4 waiting jobs are now queued" in confirmed.get_data(as_text=True)
    with app.app_context():
        store = get_store()
        assert {store.get_job(i).status for i in ids} == {"queued"}
        assert any("the address was confirmed" in e.message for e in store.events(ids[0]))
    # The next job of the address needs no confirmation; still one email in all.
    assert client.post("/api/jobs", json=_job("NEW@example.com")).get_json()["status"] == "queued"
    assert len(smtp_server.messages) == 1

    # The address is kept only as a keyed hash, and the log never names it nor the link.
    key = hmac.new(b"test-secret", b"new@example.com", hashlib.sha256).hexdigest()
    path_db = app.config["DATABASE_URL"].split(":///", 1)[1]
    with sqlite3.connect(path_db) as conn:
        assert conn.execute("SELECT key FROM confirmed_addresses").fetchall() == [(key,)]
        assert conn.execute("SELECT DISTINCT key FROM confirmation_mails").fetchall() == [(key,)]
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert ids[0] in ours
    assert "new@example.com" not in ours.lower() and path.rsplit("/", 1)[1] not in ours


def test_the_form_says_to_confirm_and_a_second_address_gets_its_own_email(mail_app, smtp_server):
    client = mail_app(WTF_CSRF_ENABLED=False).test_client()
    page = client.post("/", data=_job("form@example.com"), follow_redirects=True).get_data(as_text=True)
    assert 'id="confirm-needed"' in page and "form@example.com" in page
    client.post("/", data=_job("other@example.com"))
    messages = smtp_server.wait_for(lambda msgs: len(msgs) >= 2)
    assert sorted(m["To"] for m in messages) == ["form@example.com", "other@example.com"]


@pytest.mark.parametrize(("setting", "smtp", "status"), [
    ("auto", True, "unconfirmed"), ("auto", False, "queued"), ("off", True, "queued"), ("on", False, "unconfirmed"),
])
def test_email_confirmation_setting(make_app, smtp_server, setting, smtp, status):
    settings = smtp_server.settings() if smtp else {}
    client = make_app(EMAIL_CONFIRMATION=setting, **settings).test_client()
    assert client.post("/api/jobs", json=_job("setting@example.com")).get_json()["status"] == status


def test_an_unconfirmed_job_and_its_data_disappear_after_confirmation_hours(mail_app, smtp_server):
    app = mail_app()
    client = app.test_client()
    job_id = client.post("/api/jobs", json=_job("late@example.com")).get_json()["id"]
    path = _confirm_path(smtp_server.wait_for(lambda msgs: len(msgs) == 1)[0])
    now = datetime.now(UTC)
    with app.app_context():
        assert purge_unconfirmed(app, now=now + timedelta(hours=23)) == 0
        assert get_store().get_job(job_id).status == "unconfirmed"
        assert purge_unconfirmed(app, now=now + timedelta(hours=24, minutes=1)) == 1
        assert get_store().get_job(job_id) is None and get_store().events(job_id) == []
    response = client.get(path)
    assert response.status_code == 410
    assert "There is nothing left to confirm" in response.get_data(as_text=True)


def test_the_upkeep_deletes_unconfirmed_jobs_with_a_fractional_setting(mail_app, smtp_server):
    app = mail_app(CONFIRMATION_HOURS=1 / 3600, SCHEDULER_START=True, CLEANUP_INTERVAL_SECONDS=1)
    job_id = app.test_client().post("/api/jobs", json=_job("gone@example.com")).get_json()["id"]
    with app.app_context():
        store = get_store()
        deadline = time.monotonic() + 30
        while store.get_job(job_id) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.get_job(job_id) is None


def test_a_tampered_or_expired_confirmation_link(mail_app, smtp_server, monkeypatch):
    client = mail_app().test_client()
    client.post("/api/jobs", json=_job("link@example.com"))
    path = _confirm_path(smtp_server.wait_for(lambda msgs: len(msgs) == 1)[0])
    response = client.get(path[:-3] + "abc")
    assert response.status_code == 404 and "confirmation link is not valid" in response.get_data(as_text=True)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 25 * 3600)
    response = client.get(path)
    assert response.status_code == 410 and "This confirmation link has expired" in response.get_data(as_text=True)


def test_the_caps_answer_with_their_messages(mail_app):
    client = mail_app(WTF_CSRF_ENABLED=False, MAX_QUEUED_JOBS=4).test_client()
    for _ in range(3):
        assert client.post("/api/jobs", json=_job("busy@example.com")).status_code == 201
    per_address = ("this email address already has 3 jobs waiting or running; "
                   "please submit again when one of them has ended")
    response = client.post("/api/jobs", json=_job("busy@example.com"))
    assert response.status_code == 400
    assert response.get_json()["errors"] == [{"field": "email", "message": per_address}]
    page = client.post("/", data=_job("busy@example.com"))
    assert page.status_code == 400
    assert f'<p class="error" id="email-error">{per_address}</p>' in page.get_data(as_text=True)

    assert client.post("/api/jobs", json=_job("fourth@example.com")).status_code == 201
    full = "the queue is full (4 jobs are waiting); please try again later"
    response = client.post("/api/jobs", json=_job("fifth@example.com"))
    assert response.status_code == 400 and response.get_json()["errors"] == [{"field": None, "message": full}]
    page = client.post("/", data=_job("fifth@example.com"))
    assert page.status_code == 400 and f'<p class="alert" role="alert">{full}</p>' in page.get_data(as_text=True)


def test_an_unexpected_error_on_a_link_logs_the_route_not_the_token(mail_app, smtp_server, monkeypatch, caplog):
    from jobs import consent

    client = mail_app().test_client()
    client.post("/api/jobs", json=_job("boom@example.com"))
    path = _confirm_path(smtp_server.wait_for(lambda msgs: len(msgs) == 1)[0])

    def broken(store, token):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(consent, "pending_job", broken)
    assert client.get(path).status_code == 500
    assert "GET /confirm/<token>" in caplog.text
    assert path.rsplit("/", 1)[1] not in caplog.text


def test_a_confirmation_email_that_could_not_be_sent_is_retried_by_the_upkeep(mail_app, smtp_server):
    from jobs.notify import retry_pending

    app = mail_app()
    smtp_server.stop()
    job_id = app.test_client().post("/api/jobs", json=_job("retry@example.com")).get_json()["id"]
    with app.app_context():
        store = get_store()
        assert store.get_job(job_id).mail_pending == "confirm"
        smtp_server.start()
        assert retry_pending(store) == 1
        [message] = smtp_server.wait_for(lambda msgs: len(msgs) == 1)
        assert message["Subject"] == CONFIRM_SUBJECT and message["To"] == "retry@example.com"
        job = store.get_job(job_id)
        assert job.mail_pending is None and job.mails_sent == ["confirm"]
