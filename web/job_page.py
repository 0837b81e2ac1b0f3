"""What a job's page shows: progress, what happens next, the download button and previews, the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app, url_for

from db import ACTIVE, DONE, Job, get_store
from jobs import files
from jobs.classes import for_job
from jobs.links import form_path, human_size, local_time, make_download_token
from jobs.progress import PHASE_WORDS, log_lines, progress
from storage import StorageError, get_storage


def _download(job: Job) -> dict:
    """The download button's link (the one the email has), its expiry in the user's zone, the zip's size."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        stored = get_storage(app).exists(job.id)
    except StorageError:
        return {"download_unavailable": True}
    if not stored:
        return {}
    ttl = timedelta(minutes=float(app.config["LINK_TTL_MINUTES"]))
    return {"download_url": url_for("web.download", token=make_download_token(job.id)),
            "link_expires": local_time(datetime.now(UTC) + ttl, job.timezone), "zip_size": human_size(job.zip_bytes),
            "file_name": files.download_name(job.query, job.delivered),
            "thumbnails": list(range(1, files.thumbnail_count(app, job.id) + 1))}


def job_context(job: Job) -> dict:
    """The template context of ``job.html``."""
    results = for_job(job)
    shown = progress(job)
    context = {
        "job": job, "classes": results, "run_at_local": local_time(job.run_at, job.timezone),
        "events": log_lines(get_store().events(job.id), job.timezone), "progress": shown, "phases": PHASE_WORDS,
        "can_cancel": job.status in ACTIVE, "short": job.status == DONE and job.delivered < shown["wanted"],
        "again_url": form_path([r.query for r in results], job.count, job.timezone, job.options),
    }
    if job.status == DONE:
        context.update(_download(job))
    return context
