"""Periodic upkeep: recover interrupted jobs, delete expired and unconfirmed data, reap orphaned browsers, retry
unsent emails."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import Flask

from db import Job, get_store
from jobs import files
from jobs.notify import retry_pending
from scraper import reap_orphans

log = logging.getLogger(__name__)


def requeue_interrupted(app: Flask) -> list[str]:
    """Put back in the queue the running jobs whose worker stopped beating (crash, restart, kill)."""
    store = get_store(app)
    cutoff = datetime.now(UTC) - timedelta(seconds=int(app.config["STALE_JOB_SECONDS"]))
    requeued = store.requeue_stale(cutoff)
    for job_id in requeued:
        store.log_event(job_id, "the job was interrupted (its worker stopped); it will run again", "warning")
        log.warning("job %s was interrupted; requeued", job_id)
    return requeued


def _delete(app: Flask, jobs: list[Job]) -> int:
    """Delete each job's zip, folder, rows, image URLs and event log; return how many."""
    store = get_store(app)
    for job in jobs:
        files.delete_all(app, job.id)
        store.purge_job(job.id)
    return len(jobs)


def purge_expired(app: Flask) -> int:
    """Delete the files and the personal data of jobs that ended more than RETENTION_MINUTES ago."""
    cutoff = datetime.now(UTC) - timedelta(minutes=int(app.config["RETENTION_MINUTES"]))
    purged = _delete(app, get_store(app).finished_before(cutoff))
    if purged:
        log.info("retention: deleted %d finished jobs and their files", purged)
    return purged


def purge_unconfirmed(app: Flask, now: datetime | None = None) -> int:
    """Delete the jobs (and their data) whose address was not confirmed within CONFIRMATION_HOURS."""
    cutoff = (now or datetime.now(UTC)) - timedelta(hours=float(app.config["CONFIRMATION_HOURS"]))
    purged = _delete(app, get_store(app).unconfirmed_before(cutoff))
    if purged:
        log.info("confirmation: deleted %d jobs whose address was not confirmed in time", purged)
    return purged


def reap_browsers(app: Flask) -> int:
    """Kill Chromium processes left by a process of this app that was killed outright (SIGKILL, OOM)."""
    return reap_orphans()


def maintain(app: Flask) -> None:
    """Run every periodic task; one failing (say, the database is down) does not stop the others next time."""
    with app.app_context():
        for task in (requeue_interrupted, purge_expired, purge_unconfirmed, reap_browsers):
            try:
                task(app)
            except Exception:
                log.exception("periodic task %s failed", task.__name__)
        try:
            retry_pending(get_store(app))
        except Exception:
            log.exception("retrying unsent emails failed")
