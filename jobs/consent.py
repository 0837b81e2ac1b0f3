"""Double opt-in: no email but one confirmation goes to an address until its owner presses the button.

A confirmed address is remembered for CONFIRMED_DAYS as an HMAC of the address keyed with SECRET_KEY, never in
plain text. A confirmation email goes out at most once an hour and three times a day per address, however many
jobs are submitted for it; the others wait for that one email.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from db import Job, Store
from jobs.links import read_confirm_token
from jobs.notify import notify

log = logging.getLogger(__name__)

# (window, most confirmation emails per address within it)
MAIL_LIMITS = ((timedelta(hours=1), 1), (timedelta(days=1), 3))


class NothingToConfirm(Exception):
    """The link was genuine but its job is gone (deleted after CONFIRMATION_HOURS) or was never waiting."""


def required(config: Mapping[str, Any]) -> bool:
    """Whether jobs wait for their address to be confirmed (EMAIL_CONFIRMATION; auto: when mail really goes out)."""
    setting = config["EMAIL_CONFIRMATION"]
    if setting == "auto":
        return bool(config.get("SMTP_HOST"))
    return setting == "on"


def address_key(email: str) -> str:
    """The keyed hash that stands for an address in the database: HMAC-SHA256 with SECRET_KEY."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def is_confirmed(store: Store, email: str, now: datetime) -> bool:
    return store.is_confirmed(address_key(email), now)


def ask(store: Store, job: Job, now: datetime) -> bool:
    """Send the job's confirmation email unless the address had one too recently; True when it was sent now."""
    if not store.reserve_confirmation_mail(address_key(job.email), now, MAIL_LIMITS):
        store.log_event(job.id, "waiting for the address to be confirmed (a confirmation email was sent recently)")
        log.info("job %s waits for a confirmation email sent earlier", job.id)
        return False
    store.log_event(job.id, "waiting for the address to be confirmed")
    return notify(store, job, "confirm")


def pending_job(store: Store, token: str) -> Job:
    """Return the job named by a confirmation link; raise LinkExpired, LinkInvalid or NothingToConfirm."""
    job = store.get_job(read_confirm_token(token))
    if job is None:
        raise NothingToConfirm()
    return job


def confirm(store: Store, job: Job, now: datetime | None = None) -> list[str]:
    """Confirm the address of ``job`` (from its link) and queue every unconfirmed job of it; return their ids."""
    now = now or datetime.now(UTC)
    days = float(current_app.config["CONFIRMED_DAYS"])
    store.remember_confirmed(address_key(job.email), now + timedelta(days=days))
    queued = store.confirm_jobs(job.email)
    scheduler = current_app.extensions.get("scheduler")
    for job_id in queued:
        store.log_event(job_id, "the address was confirmed; the job is queued")
        queued_job = store.get_job(job_id)
        if scheduler is not None and queued_job is not None:
            scheduler.schedule(job_id, queued_job.run_at)  # a job whose time has passed runs at once
    log.info("address of job %s confirmed; %d jobs queued", job.id, len(queued))
    return queued
