"""Cassandra stopped and started again while the app runs: a submission during the outage gets a clear 503
("nothing was saved"), and a job accepted before the outage still runs after it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from db import get_store
from tests.fixtures.apps import fresh_keyspace

pytestmark = [pytest.mark.cassandra, pytest.mark.browser]


def _form(at: datetime, email: str) -> dict:
    return {"search-query": "red panda", "email": email, "images": "3", "date": at.strftime("%Y-%m-%d"),
            "time": at.strftime("%H:%M:%S"), "timezone": "UTC"}


def test_an_outage_refuses_new_jobs_clearly_and_loses_none(make_app, cassandra_server, cassandra_url, smtp_server,
                                                            engines, image_server):
    app = make_app(DATABASE_URL=fresh_keyspace(cassandra_url), WTF_CSRF_ENABLED=False, SCHEDULER_START=True,
                   BING_URL=engines.bing_url, IMAGE_SOURCES=["bing"], POLL_INTERVAL_SECONDS=1,
                   CLEANUP_INTERVAL_SECONDS=2, STALE_JOB_SECONDS=6, CASSANDRA_TIMEOUT_SECONDS=3,
                   **smtp_server.settings())
    client = app.test_client()
    accepted = client.post("/api/jobs", json=_form(datetime.now(UTC) + timedelta(seconds=8), "before@example.com"))
    assert accepted.status_code == 201
    job_id = accepted.get_json()["id"]

    cassandra_server.stop()
    try:
        response = client.post("/", data=_form(datetime.now(UTC) + timedelta(minutes=5), "during@example.com"))
        assert response.status_code == 503
        page = response.get_data(as_text=True)
        assert "temporarily unavailable: nothing was saved. Please try again" in page
        assert "Traceback" not in page
        api = client.post("/api/jobs", json=_form(datetime.now(UTC) + timedelta(minutes=5), "during@example.com"))
        assert api.status_code == 503 and "nothing was saved" in api.get_json()["error"]
        assert client.get(f"/jobs/{job_id}").status_code == 503
        time.sleep(10)  # the accepted job's time passes while the database is down
    finally:
        cassandra_server.start()

    messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=180)
    assert [m["To"] for m in messages if "are ready" in m["Subject"]] == ["before@example.com"]
    with app.app_context():
        job = get_store(app).get_job(job_id)
    assert job.status == "done" and job.delivered == 3
    assert not any(m["To"] == "during@example.com" for m in smtp_server.messages)
