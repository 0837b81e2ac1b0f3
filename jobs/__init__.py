"""Jobs: accept a submission, run it at its time (jobs.runner), and clean up after it (jobs.cleanup)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from flask import current_app

from db import Job, get_store
from jobs.validation import Submission


def new_job_id() -> str:
    """An unguessable id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def submit(submission: Submission) -> Job:
    """Store a new queued job and hand it to this process's scheduler (if it runs one)."""
    now = datetime.now(UTC)
    job = Job(id=new_job_id(), query=submission.query, email=submission.email, count=submission.count,
              run_at=submission.run_at, timezone=submission.timezone, options=submission.options(),
              created_at=now)
    store = get_store()
    store.create_job(job)
    store.log_event(job.id, f"job submitted for {job.run_at:%Y-%m-%d %H:%M} UTC")
    scheduler = current_app.extensions.get("scheduler")
    if scheduler is not None:
        scheduler.schedule(job.id, job.run_at)
    return job
