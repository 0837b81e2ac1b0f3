"""The pages a person sees: the form, the submitted page, a job's page, and the download link."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file
from werkzeug.datastructures import MultiDict

import jobs
from db import DONE, get_store
from jobs import files
from jobs.links import LinkExpired, LinkInvalid, local_time, read_download_token
from jobs.validation import FORMATS, validate_submission
from storage import StorageError, get_storage

bp = Blueprint("web", __name__)


def render_form(values: MultiDict | None = None, errors: dict | None = None, status: int = 200, form_error=None):
    return render_template("index.html", values=values or MultiDict(), errors=errors or {}, all_formats=FORMATS,
                           form_error=form_error), status


@bp.get("/")
def home():
    """Show the job form."""
    return render_form()


@bp.post("/")
def submit():
    """Validate the form; queue the job and show the submitted page, or show the form again with the errors."""
    config = current_app.config
    submission, errors = validate_submission(request.form, now=datetime.now(UTC), max_images=config["MAX_IMAGES"],
                                             max_query_length=config["MAX_QUERY_LENGTH"])
    if errors:
        return render_form(request.form, errors, 400)
    job = jobs.submit(submission)
    return render_template("submitted.html", job=job, run_at_local=local_time(job.run_at, job.timezone))


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    """Show a job's status and event log."""
    store = get_store()
    job = store.get_job(job_id)
    if job is None:
        abort(404, description="There is no such job. Jobs and their data are deleted "
                               f"{current_app.config['RETENTION_MINUTES']} minutes after they end.")
    return render_template("job.html", job=job, events=store.events(job_id),
                           run_at_local=local_time(job.run_at, job.timezone))


@bp.get("/download/<token>")
def download(token: str):
    """Send the zip named by a signed, unexpired link."""
    try:
        job_id = read_download_token(token)
    except LinkExpired:
        abort(410, description="This download link has expired. Links work for "
                               f"{current_app.config['LINK_TTL_MINUTES']:g} minutes; please submit the job again.")
    except LinkInvalid:
        abort(404, description="This download link is not valid. Please use the exact link from your email.")
    job = get_store().get_job(job_id)
    storage = get_storage()
    try:
        stored = job is not None and job.status == DONE and storage.exists(job_id)
    except StorageError:
        abort(503, description="The download is unavailable right now; please try again in a minute.")
    if not stored:
        abort(410, description="These images have been deleted: files are kept for "
                               f"{current_app.config['RETENTION_MINUTES']} minutes after a job ends.")
    name = files.download_name(job.query, job.delivered)
    path = storage.local_path(job_id)
    if path is not None:
        return send_file(path, mimetype="application/zip", as_attachment=True, download_name=name, max_age=0)
    # Object storage: hand out a fresh short-lived presigned URL on every click of the (longer-lived) link.
    response = redirect(storage.presigned_url(job_id, name, current_app.config["S3_PRESIGN_SECONDS"]), code=302)
    response.headers["Cache-Control"] = "no-store"
    return response
