"""The in-process scheduler's bookkeeping: a job whose run failed at once is added again by the poll."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_REMOVED, EVENT_JOB_SUBMITTED

import jobs.runner
from db import StoreUnavailable, get_store
from db.base import Job
from scheduler import tasks
from scheduler.background import JobScheduler


def test_a_run_that_ends_before_its_submission_is_reported_is_polled_again(make_app, monkeypatch):
    # APScheduler dispatches "submitted" after its job-store pass (where it drops a date job that ran), while the
    # job's thread dispatches "error" as soon as the job raised: when the database is down the run fails within
    # milliseconds, and on a busy machine the end is often reported first. Here that order is forced.
    app = make_app(POLL_INTERVAL_SECONDS=3600, CLEANUP_INTERVAL_SECONDS=3600)
    with app.app_context():
        job = Job(id=uuid.uuid4().hex, query="kittens", email="owner@example.com", count=3,
                  run_at=datetime.now(UTC) - timedelta(minutes=1))
        get_store(app).create_job(job)
    key = f"job:{job.id}"
    runs: list[str] = []
    ran_again = threading.Event()

    def run(app, job_id, should_stop=None):
        runs.append(job_id)
        if len(runs) == 1:
            raise StoreUnavailable("Cassandra did not answer")  # the outage: the claim could not be read
        ran_again.set()

    monkeypatch.setattr(jobs.runner, "run_job", run)
    monkeypatch.setattr(tasks, "maintain", lambda app_key: None)  # the periodic upkeep is not what is tested
    end_tracked, submission_tracked = threading.Event(), threading.Event()
    track = JobScheduler._track

    def track_then_tell(self, event):
        track(self, event)
        if event.job_id == key and event.code == EVENT_JOB_ERROR:
            end_tracked.set()
        if event.job_id == key and event.code == EVENT_JOB_SUBMITTED:
            submission_tracked.set()

    monkeypatch.setattr(JobScheduler, "_track", track_then_tell)
    scheduler = JobScheduler(app)

    def hold_submission_until_the_end_is_tracked(event):
        if event.job_id == key:
            assert end_tracked.wait(10)

    scheduler.scheduler.add_listener(hold_submission_until_the_end_is_tracked, EVENT_JOB_REMOVED)
    app.extensions["scheduler"] = scheduler
    scheduler.start()  # its first poll schedules the queued job, whose run fails
    try:
        assert end_tracked.wait(10) and submission_tracked.wait(10)
        assert scheduler.sync() == 1  # the poll adds the job again, though its end was reported first
        assert ran_again.wait(10)
        assert runs == [job.id, job.id]
    finally:
        scheduler.shutdown(wait=True)
