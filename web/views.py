"""The pages a person sees: the form, the submitted page, the confirmation page, a job's page, the download link."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file
from werkzeug.datastructures import MultiDict

import jobs
from db import DONE, Job, get_store
from jobs import consent, files
from jobs.classes import for_job
from jobs.links import LinkExpired, LinkInvalid, local_time, read_download_token
from jobs.validation import FORMATS
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
    try:
        job = jobs.accept(request.form, confirmed=False)
    except jobs.Refused as exc:
        errors = dict(exc.errors)
        return render_form(request.form, errors, 400, form_error=errors.pop(None, None))
    return render_template("submitted.html", job=job, run_at_local=local_time(job.run_at, job.timezone))


@bp.get("/confirm/<token>")
def confirm_page(token: str):
    """Show the one button that confirms an address (a mail scanner opening the link confirms nothing)."""
    _confirming_job(token)
    return render_template("confirm.html", token=token)


@bp.post("/confirm/<token>")
def confirm(token: str):
    """Confirm the address of the link and queue every job that waited for it."""
    queued = consent.confirm(get_store(), _confirming_job(token))
    return render_template("confirmed.html", queued=len(queued))


def _confirming_job(token: str) -> Job:
    hours = f"{float(current_app.config['CONFIRMATION_HOURS']):g}"
    try:
        return consent.pending_job(get_store(), token)
    except LinkExpired:
        abort(410, description=f"This confirmation link has expired: links work for {hours} hours. "
                               "Please submit your job again.")
    except LinkInvalid:
        abort(404, description="This confirmation link is not valid. Please use the exact link from your email.")
    except consent.NothingToConfirm:
        abort(410, description="There is nothing left to confirm: jobs whose address is not confirmed are "
                               f"deleted {hours} hours after they were submitted. Please submit your job again.")


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    """Show a job's status and event log."""
    store = get_store()
    job = store.get_job(job_id)
    if job is None:
        abort(404, description="There is no such job. Jobs and their data are deleted "
                               f"{current_app.config['RETENTION_MINUTES']} minutes after they end.")
    return render_template("job.html", job=job, events=store.events(job_id), classes=for_job(job),
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
    if job is None or not stored:
        abort(410, description="These images have been deleted: files are kept for "
                               f"{current_app.config['RETENTION_MINUTES']} minutes after a job ends.")
    name = files.download_name(job.query, job.delivered)
    path = storage.local_path(job_id)
    if path is not None:
        return send_file(path, mimetype="application/zip", as_attachment=True, download_name=name, max_age=0)
    # Object storage: hand out a fresh short-lived presigned URL on every click of the (longer-lived) link.
    presigned = storage.presigned_url(job_id, name, current_app.config["S3_PRESIGN_SECONDS"])
    if presigned is None:
        abort(503, description="The download is unavailable right now; please try again in a minute.")
    response = redirect(presigned, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response
