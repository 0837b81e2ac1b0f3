"""Cassandra stopped and started again (once) while the app runs: a submission during the outage gets a clear 503
("nothing was saved"), a job accepted before the outage still runs after it, and a store used directly fails fast
with StoreUnavailable while the node is down and works again, with the same session, once it is back."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from db import StoreUnavailable, get_store
from db.base import Job
from db.cassandra import CassandraStore
from tests.fixtures.apps import fresh_keyspace

pytestmark = [pytest.mark.cassandra, pytest.mark.browser, pytest.mark.slow]


def _form(at: datetime, email: str) -> dict:
    return {"search-query": "red panda", "email": email, "images": "3", "date": at.strftime("%Y-%m-%d"),
            "time": at.strftime("%H:%M:%S"), "timezone": "UTC"}


def _job() -> Job:
    now = datetime.now(UTC)
    return Job(id=uuid.uuid4().hex, query="kittens", email="owner@example.com", count=3,
               run_at=(now - timedelta(minutes=1)).replace(microsecond=now.microsecond // 1000 * 1000))


def _when_back(call, seconds: float = 60):
    """Call ``call`` until the store answers again; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except StoreUnavailable:
            assert time.monotonic() < deadline, f"the driver did not reconnect within {seconds:.0f} s"
            time.sleep(0.5)


def test_an_outage_refuses_new_jobs_clearly_and_loses_none(make_app, cassandra_server, cassandra_url, smtp_server,
                                                            engines, image_server):
    app = make_app(DATABASE_URL=fresh_keyspace(cassandra_url), WTF_CSRF_ENABLED=False, SCHEDULER_START=True,
                   BING_URL=engines.bing_url, IMAGE_SOURCES=["bing"], POLL_INTERVAL_SECONDS=1,
                   CLEANUP_INTERVAL_SECONDS=2, STALE_JOB_SECONDS=6, CASSANDRA_TIMEOUT_SECONDS=3,
                   EMAIL_CONFIRMATION="off",  # about the outage; tests/e2e/test_job_flow.py goes through confirmation
                   **smtp_server.settings())
    client = app.test_client()
    # A store of its own, in a keyspace no scheduler polls, so its job stays queued for the claim at the end.
    store = CassandraStore.from_url(fresh_keyspace(cassandra_url), {}, timeout=3.0)
    try:
        store.init_schema()
        direct = _job()
        store.create_job(direct)
        run_at = datetime.now(UTC) + timedelta(seconds=8)
        accepted = client.post("/api/jobs", json=_form(run_at, "before@example.com"))
        assert accepted.status_code == 201
        job_id = accepted.get_json()["id"]

        cassandra_server.stop()
        try:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable):
                store.get_job(direct.id)
            with pytest.raises(StoreUnavailable):
                store.create_job(_job())
            assert time.monotonic() - began < 30
            response = client.post("/", data=_form(datetime.now(UTC) + timedelta(minutes=5), "during@example.com"))
            assert response.status_code == 503
            page = response.get_data(as_text=True)
            assert "temporarily unavailable: nothing was saved. Please try again" in page
            assert "Traceback" not in page
            api = client.post("/api/jobs", json=_form(datetime.now(UTC) + timedelta(minutes=5), "during@example.com"))
            assert api.status_code == 503 and "nothing was saved" in api.get_json()["error"]
            assert client.get(f"/jobs/{job_id}").status_code == 503
            # The accepted job's time passes while the database is down.
            time.sleep(max(0.0, (run_at - datetime.now(UTC)).total_seconds()) + 2)
        finally:
            cassandra_server.start()  # same data directory, same ports

        got = _when_back(lambda: store.get_job(direct.id))
        assert got is not None and got.email == direct.email
        assert store.claim_job(direct.id, "w", datetime.now(UTC))
    finally:
        store.close()

    messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=180)
    assert [m["To"] for m in messages if "are ready" in m["Subject"]] == ["before@example.com"]
    with app.app_context():
        job = get_store(app).get_job(job_id)
    assert job.status == "done" and job.delivered == 3
    assert not any(m["To"] == "during@example.com" for m in smtp_server.messages)
