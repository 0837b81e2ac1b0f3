"""A running job people can follow and stop: progress reaches the API while it runs, cancel stops it and leaves
nothing, and a filtered job's log stays short. Real runner, real download stage, the local image server (with
latency) and the fixture URL list; no browser."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import jobs
from db import get_store
from jobs import files
from jobs.progress import MAX_LOG_LINES
from jobs.runner import run_job
from jobs.validation import Submission
from storage import get_storage

pytestmark = pytest.mark.slow


@pytest.fixture
def slow_images(image_server):
    """The image server answers every request 100 ms late (the session's server; put back afterwards)."""
    before = image_server.latency
    image_server.latency = 0.1
    yield image_server
    image_server.latency = before


@pytest.fixture
def runner_app(make_app, engines, image_server):
    engines.reset()

    def factory(**settings):
        # Two downloads at a time from the one image host: a steady pace, whatever the machine.
        return make_app(IMAGE_SOURCES=["urls"], URL_LIST=engines.url_list, DOWNLOAD_PER_HOST=2,
                        DOWNLOAD_PER_HOST_MAX=2, **settings)

    return factory


def _start(app, count: int, **options) -> tuple[str, threading.Thread]:
    """Submit a job for now and run it in a thread, as the scheduler would."""
    with app.test_request_context():
        job = jobs.submit(Submission(query="red panda", email="follow@example.com", count=count,
                                     run_at=datetime.now(UTC), timezone="Europe/Paris", queries=["red panda"],
                                     **options), confirmed=True)
    worker = threading.Thread(target=run_job, args=(app, job.id, "test-worker"), daemon=True)
    worker.start()
    return job.id, worker


def _emails(app) -> list:
    outbox = app.config["MAIL_OUTBOX"]
    return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(Path(outbox).glob("*.eml"))]


def test_progress_reaches_the_api_while_the_job_runs(runner_app, slow_images):
    app = runner_app()
    client = app.test_client()
    job_id, worker = _start(app, 120)  # about 6 s at two downloads of 100 ms at a time: a dozen polls
    seen, status, progress = [], "queued", {}
    deadline = time.monotonic() + 180
    while status not in ("done", "failed") and time.monotonic() < deadline:
        data = client.get(f"/api/jobs/{job_id}").get_json()
        status, progress = data["status"], data["progress"]
        assert set(progress) == {"phase", "candidates", "delivered", "wanted", "eta_seconds"}
        if status == "running" and progress["delivered"] not in seen:
            seen.append(progress["delivered"])
            if 0 < progress["delivered"] < 120:
                assert progress["eta_seconds"] is not None and progress["eta_seconds"] > 0
                assert progress["phase"] == "downloading" and progress["candidates"] >= progress["delivered"]
        time.sleep(0.5)
    worker.join(timeout=60)
    assert status == "done", data
    assert len([value for value in seen if value > 0]) >= 5, seen
    assert seen == sorted(seen)  # counts only grow
    assert progress == {"phase": "done", "candidates": progress["candidates"], "delivered": 120, "wanted": 120,
                        "eta_seconds": 0}
    assert len(data["events"]) <= MAX_LOG_LINES
    with app.app_context():
        assert files.thumbnail_count(app, job_id) == 8  # previews made while downloading, kept with the job


def test_cancel_stops_a_running_job_and_leaves_no_zip_and_no_email(runner_app, slow_images):
    app = runner_app()
    client = app.test_client()
    job_id, worker = _start(app, 500)
    deadline = time.monotonic() + 120
    while client.get(f"/api/jobs/{job_id}").get_json()["progress"]["delivered"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    response = client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.get_json() == {"id": job_id, "status": "cancelled"}
    worker.join(timeout=30)  # its next safe point comes within a second or two; this only bounds the test
    assert not worker.is_alive()
    data = client.get(f"/api/jobs/{job_id}").get_json()
    assert data["status"] == "cancelled" and data["progress"]["phase"] == "cancelled"
    assert data["progress"]["delivered"] < 500
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 409  # ended: nothing left to cancel
    with app.app_context():
        assert not files.zip_path(app, job_id).exists() and not get_storage(app).exists(job_id)
        assert not files.work_dir(app, job_id).exists() and files.thumbnail_count(app, job_id) == 0
        job = get_store(app).get_job(job_id)
    assert job.mail_pending is None and job.mails_sent == ["started"]
    assert [m["Subject"] for m in _emails(app)] == ["Your images are being collected"]  # no "done" email
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="cancelled"' in page and 'id="cancel-form"' not in page
    assert 'href="/?search-query=red+panda&amp;images=500&amp;timezone=Europe%2FParis' in page  # submit it again


def test_cancel_frees_a_queued_job_at_once(runner_app):
    app = runner_app(MAX_ACTIVE_JOBS_PER_EMAIL=1)
    client = app.test_client()
    later = datetime.now(UTC) + timedelta(days=2)
    job = {"search-query": "koala", "email": "one@example.com", "images": 5, "date": f"{later:%Y-%m-%d}",
           "time": "10:00"}
    job_id = client.post("/api/jobs", json=job).get_json()["id"]
    assert client.post("/api/jobs", json=job).status_code == 400  # the address has its one active job
    assert client.post(f"/api/jobs/{job_id}/cancel").get_json()["status"] == "cancelled"
    assert client.post("/api/jobs", json=job).status_code == 201  # freed at once
    assert client.post("/api/jobs/no-such-job/cancel").status_code == 404
    with app.app_context():
        assert run_job(app, job_id, "test-worker") is None  # a cancelled job is never claimed


def test_a_filtered_job_logs_one_line_per_engine_not_one_per_round(runner_app):
    app = runner_app()
    client = app.test_client()
    job_id, worker = _start(app, 30, formats=["gif"])  # 1 in 5 of the list is a GIF: round after round
    worker.join(timeout=180)
    data = client.get(f"/api/jobs/{job_id}").get_json()
    assert data["status"] == "done"
    messages = [e["message"] for e in data["events"]]
    assert len(messages) <= MAX_LOG_LINES
    with app.app_context():
        assert len(get_store(app).events(job_id)) <= MAX_LOG_LINES  # the stored log too, not only what is shown
    [engine] = [m for m in messages if m.startswith("urls gave")]
    [kept] = [m for m in messages if " images kept from " in m]
    rounds = int(kept.split(" rounds of collecting")[0].rsplit("(", 1)[1])
    assert rounds >= 4, kept  # the rounds the old log wrote two lines each for
    assert not any("paused" in m or "bytes" in m or "UTC" in m for m in messages)
    [written] = [m for m in messages if m.startswith("zip written: 30 images, ")]
    assert re.search(r", \d+\.\d [KM]B, in the folder ", written), written  # a size people read, not bytes
    assert messages[0].startswith("job submitted, to run at ") and messages[0].endswith("(Europe/Paris)")
    assert all(len(e["time"]) == 8 for e in data["events"])  # HH:MM:SS in the job's zone
