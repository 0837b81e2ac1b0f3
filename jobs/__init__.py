"""Jobs: accept a submission, cancel it, run it at its time (jobs.runner), and clean up after it (jobs.cleanup)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from db import QUEUED, RUNNING, UNCONFIRMED, Job, LimitReached, get_store
from jobs import consent, files
from jobs.links import local_time
from jobs.validation import Submission, check

log = logging.getLogger(__name__)


class Refused(Exception):
    """A submission that creates no job: ``errors`` maps each field (None: the form as a whole) to a sentence."""

    def __init__(self, errors: Mapping[str | None, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = dict(errors)


def new_job_id() -> str:
    """An unguessable id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def _limit_message(exc: LimitReached, config: Mapping[str, Any]) -> tuple[str | None, str]:
    if exc.which == "email":
        count = int(config["MAX_ACTIVE_JOBS_PER_EMAIL"])
        return "email", (f"this email address already has {count} jobs waiting or running; "
                         "please submit again when one of them has ended")
    count = int(config["MAX_QUEUED_JOBS"])
    return None, f"the queue is full ({count} jobs are waiting); please try again later"


def submit(submission: Submission, *, confirmed: bool = False) -> Job:
    """Store a new job and hand it to this process's scheduler (if it runs one), or ask for its confirmation.

    ``confirmed`` skips the confirmation step (a program with an API key). Raises Refused when a cap is reached.
    """
    config = current_app.config
    now = datetime.now(UTC)
    store = get_store()
    waits = not confirmed and consent.required(config) and not consent.is_confirmed(store, submission.email, now)
    job = Job(id=new_job_id(), query=submission.query, email=submission.email, count=submission.count,
              run_at=submission.run_at, timezone=submission.timezone, options=submission.options(),
              created_at=now, status=UNCONFIRMED if waits else QUEUED, phase=UNCONFIRMED if waits else QUEUED)
    try:
        store.create_job_capped(job, per_email=int(config["MAX_ACTIVE_JOBS_PER_EMAIL"]),
                                in_all=int(config["MAX_QUEUED_JOBS"]))
    except LimitReached as exc:
        log.info("a submission was refused: the %s cap is reached", exc.which)
        field, message = _limit_message(exc, config)
        raise Refused({field: message}) from exc
    store.log_event(job.id, f"job submitted, to run at {local_time(job.run_at, job.timezone)}")
    if waits:
        consent.ask(store, job, now)
        return job
    scheduler = current_app.extensions.get("scheduler")
    if scheduler is not None:
        scheduler.schedule(job.id, job.run_at)
    return job


def accept(data: Any, *, confirmed: bool = False) -> Job:
    """Validate a form or JSON object and submit it; raise Refused with the field errors."""
    submission, errors = check(data, current_app.config, datetime.now(UTC))
    if submission is None:
        raise Refused({name: message for name, message in errors.items()})
    return submit(submission, confirmed=confirmed)


def cancel(job_id: str) -> tuple[Job | None, bool]:
    """Cancel a job that has not ended; return the job as it is now (None: no such job) and whether this call
    cancelled it.

    A queued or unconfirmed job is cancelled at once; a running one is marked at once and its worker stops at its
    next safe point (within a few seconds) and deletes what it made (the upkeep deletes it too, with the job).
    No email is sent after a cancellation.
    """
    store = get_store()
    before = store.get_job(job_id)
    cancelled = before is not None and store.cancel_job(job_id, datetime.now(UTC))
    if cancelled:
        store.log_event(job_id, "job cancelled: its files are deleted and no more email will be sent", "warning")
        if before is not None and before.status != RUNNING:  # a running job's worker still writes its folder
            files.delete_all(current_app._get_current_object(), job_id)  # type: ignore[attr-defined]
        log.info("job %s cancelled", job_id)
    return store.get_job(job_id), cancelled
