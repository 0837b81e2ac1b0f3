"""The runner with crawl jobs: cancel stops a crawl at a safe point and leaves nothing; a crawl stopped by a
shutdown continues from its state in the Store when it runs again, opening no visited page and fetching no saved
image a second time. Real runner, crawler and download stage against the fixture site (http mode); no browser."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

import jobs
from db import get_store
from jobs import files
from jobs.crawl_fields import CrawlFields
from jobs.runner import run_job
from jobs.validation import Submission
from tests.fixtures.site import start_site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow_site():
    handle = start_site(12, other=False)
    yield handle
    handle.stop()


@pytest.fixture
def crawl_app(make_app, slow_site):
    slow_site.clear_requests()
    # A page every 0.2 s, one at a time: slow enough to stop it halfway, whatever the machine.
    return make_app(ALLOW_PRIVATE_URLS=False, GUARD_TRUSTED_HOSTS=[slow_site.trusted], CRAWL_DELAY_SECONDS=0.2,
                    CRAWL_PER_HOST=1)


def _submit(app, site, count: int, max_pages: int) -> str:
    crawl = CrawlFields(site.url, max_pages, 8, "http")
    with app.test_request_context():
        return jobs.submit(Submission(query=crawl.site, email="crawl@example.com", count=count,
                                      run_at=datetime.now(UTC), timezone="UTC", crawl=crawl), confirmed=True).id


def _wait(app, job_id: str, enough) -> None:
    deadline = time.monotonic() + 120
    with app.app_context():
        while not enough(get_store(app).get_job(job_id)):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _path(url: str) -> str:
    return urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")


def test_cancel_stops_a_running_crawl_and_leaves_nothing(crawl_app, slow_site):
    job_id = _submit(crawl_app, slow_site, 30, 40)
    worker = threading.Thread(target=run_job, args=(crawl_app, job_id, "test-worker"), daemon=True)
    worker.start()
    _wait(crawl_app, job_id, lambda job: job.delivered >= 1)
    response = crawl_app.test_client().post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    worker.join(timeout=60)  # the next safe point: the page or batch in hand; this only bounds the test
    assert not worker.is_alive()
    with crawl_app.app_context():
        job = get_store(crawl_app).get_job(job_id)
        assert job.status == "cancelled" and job.delivered < 30 and job.mails_sent == ["started"]
        assert not files.work_dir(crawl_app, job_id).exists() and not files.zip_path(crawl_app, job_id).exists()


def test_a_crawl_stopped_by_a_shutdown_continues_from_the_store(crawl_app, slow_site):
    job_id = _submit(crawl_app, slow_site, 8, 30)
    stop = threading.Event()
    worker = threading.Thread(target=run_job, args=(crawl_app, job_id, "first"), kwargs={"should_stop": stop.is_set},
                              daemon=True)
    worker.start()
    _wait(crawl_app, job_id, lambda job: job.delivered >= 2)
    stop.set()  # the process shuts down: the job stops at a safe point and goes back to the queue
    worker.join(timeout=60)
    assert not worker.is_alive()
    with crawl_app.app_context():
        store = get_store(crawl_app)
        assert store.get_job(job_id).status == "queued"
        assert files.work_dir(crawl_app, job_id).is_dir()  # kept for the next run
        state = store.crawl_state(job_id)
        try:
            visited = _visited(crawl_app, job_id)
            saved = {_path(i.info["image_url"]) for i in state.saved()}
            assert saved and visited
        finally:
            state.close()
    slow_site.clear_requests()
    assert run_job(crawl_app, job_id, "second") == "done"
    asked = slow_site.paths()
    assert not saved & set(asked), saved & set(asked)  # no image already saved is fetched again
    assert not visited & set(asked), visited & set(asked)  # no page already visited is opened again
    with crawl_app.app_context():
        store = get_store(crawl_app)
        job = store.get_job(job_id)
        assert job.status == "done" and job.delivered == 8
        assert any(e.message.startswith("crawl continued") for e in store.events(job_id))


def _visited(app, job_id: str) -> set[str]:
    """The paths of the job's pages recorded visited or failed, read from the store's SQLite file."""
    with sqlite3.connect(app.config["DATABASE_URL"].split(":///", 1)[1]) as db:
        rows = db.execute("SELECT fetch_url FROM crawl_pages WHERE job_id = ? AND status != 'queued'", (job_id,))
        return {_path(url) for (url,) in rows}
