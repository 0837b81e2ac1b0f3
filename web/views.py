"""The pages a person sees: the form, the confirmation page, a job's page (with cancel and previews), the download
link."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.datastructures import MultiDict

import jobs
from db import DONE, Job, get_store
from jobs import consent, files
from jobs.links import LinkExpired, LinkInvalid, read_download_token
from jobs.validation import FIELDS, FORMATS, PAST_TIME, zone_names
from storage import StorageError, get_storage
from web.job_page import job_context

bp = Blueprint("web", __name__)
SUBMITTED = "submitted"  # the flashed mark: the job page then says the job was just submitted


def render_form(values: MultiDict | None = None, errors: dict | None = None, status: int = 200, form_error=None):
    errors = errors or {}
    invalid = set(errors)
    if errors.get("time") == PAST_TIME:
        invalid.add("date")  # a time in the past is as much the date's doing as the time's
    return render_template("index.html", values=values or MultiDict(), errors=errors, invalid=invalid,
                           all_formats=FORMATS, labels=FIELDS, zones=zone_names(), form_error=form_error), status


@bp.get("/")
def home():
    """Show the job form, filled in from the address's query (the "try again" links) when it has one."""
    values = MultiDict([(name, value) for name, value in request.args.items(multi=True) if name in FIELDS])
    return render_form(values)


@bp.post("/")
def submit():
    """Validate the form; queue the job and send the browser to its page (303, so a reload submits nothing), or
    show the form again with the errors."""
    try:
        job = jobs.accept(request.form, confirmed=False)
    except jobs.Refused as exc:
        errors = dict(exc.errors)
        return render_form(request.form, errors, 400, form_error=errors.pop(None, None))
    flash(job.id, SUBMITTED)
    return redirect(url_for("web.job_page", job_id=job.id), code=303)


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


def _job_or_404(job_id: str) -> Job:
    job = get_store().get_job(job_id)
    if job is None:
        abort(404, description="There is no such job. Jobs and their data are deleted "
                               f"{current_app.config['RETENTION_MINUTES']} minutes after they end.")
    return job


@bp.get("/jobs/<job_id>")
def job_page(job_id: str):
    """Show a job's progress, what happens next, its download button and previews, and its event log."""
    job = _job_or_404(job_id)
    submitted = job.id in get_flashed_messages(category_filter=[SUBMITTED])
    return render_template("job.html", submitted=submitted, **job_context(job))


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):
    """Cancel the job (the form's button; CSRF-checked) and show its page again."""
    _job_or_404(job_id)
    jobs.cancel(job_id)
    return redirect(url_for("web.job_page", job_id=job_id), code=303)


@bp.get("/jobs/<job_id>/thumbnails/<int:number>.jpg")
def thumbnail(job_id: str, number: int):
    """One preview of a finished job's first images, while the job exists."""
    job = _job_or_404(job_id)
    path = files.thumbnail(current_app._get_current_object(), job.id, number)  # type: ignore[attr-defined]
    if job.status != DONE or path is None:
        abort(404, description="There is no such preview.")
    return send_file(path, mimetype="image/jpeg", max_age=0)


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
