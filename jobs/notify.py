"""Send a job's emails once each, record the outcome, and leave failed sends for the periodic retry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app

import mailer
from db import CANCELLED, FINISHED, UNCONFIRMED, Job, Store
from jobs import classes
from jobs.files import download_name
from jobs.links import form_path, human_size, local_time, make_confirm_token, make_download_token, public_url

log = logging.getLogger(__name__)


def _context(job: Job, kind: str) -> dict:
    results = classes.for_job(job)
    again = form_path([r.query for r in results], job.count, job.timezone, job.options)
    context = {"job": job, "job_url": public_url(f"/jobs/{job.id}"), "home_url": public_url("/"),
               "again_url": public_url(again), "classes": results if len(results) > 1 else [],
               "wanted": job.count * len(results)}
    if kind == "done":
        ttl = timedelta(minutes=float(current_app.config["LINK_TTL_MINUTES"]))
        context.update(
            download_url=public_url(f"/download/{make_download_token(job.id)}"),
            expires_local=local_time(datetime.now(UTC) + ttl, job.timezone),
            zip_size=human_size(job.zip_bytes),
            file_name=download_name(job.query, job.delivered),
        )
    elif kind == "confirm":
        hours = float(current_app.config["CONFIRMATION_HOURS"])
        context.update(
            confirm_url=public_url(f"/confirm/{make_confirm_token(job.id)}"),
            expires_local=local_time((job.created_at or datetime.now(UTC)) + timedelta(hours=hours), job.timezone),
        )
    return context


def notify(store: Store, job: Job, kind: str) -> bool:
    """Send the ``kind`` email for ``job`` unless it was already sent; True when it is (now) delivered."""
    if kind in job.mails_sent:
        return True
    try:
        mailer.send(kind, job.email, ref=f"job {job.id}", **_context(job, kind))
    except mailer.MailError as exc:
        store.record_mail(job.id, kind, sent=False)
        store.log_event(job.id, f"the “{kind}” email could not be sent ({exc}); it will be retried", "warning")
        return False
    store.record_mail(job.id, kind, sent=True)
    job.mails_sent.append(kind)
    store.log_event(job.id, f"the “{kind}” email was sent")
    return True


def retry_pending(store: Store) -> int:
    """Try again every email that could not be sent; return how many went out.

    Once a job has finished, only its final email matters: a pending "started" becomes "done" or "failed"
    (this also repairs a retry that raced with the job's end and recorded the older kind).
    """
    sent = 0
    for job in store.jobs_with_pending_mail():
        kind = job.mail_pending
        if job.status == CANCELLED:  # no email after a cancellation: clear the pending mark
            store.record_mail(job.id, kind or CANCELLED, sent=True)
            continue
        if kind == "confirm" and job.status != UNCONFIRMED:
            store.record_mail(job.id, kind, sent=True)  # confirmed meanwhile (another job's email): not needed
            continue
        if job.status in FINISHED:
            kind = job.status
            if kind in job.mails_sent:
                store.record_mail(job.id, kind, sent=True)  # nothing left to send: clear the pending mark
                continue
        if kind and notify(store, job, kind):
            sent += 1
    return sent
