"""The JSON API: submit a job, read its status and progress, cancel it (the job id is the secret, as on its page)."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, url_for

import jobs
from db import get_store
from jobs.classes import for_job
from jobs.links import public_url
from jobs.progress import log_lines, progress
from web import auth, bodies

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(auth.require_valid_key)


@bp.post("/jobs")
def create_job():
    """Queue a job from a JSON object with the form's field names; 201 with its id, or 400 with field errors."""
    try:
        data = bodies.json_object()
    except bodies.BadBody as exc:
        return jsonify(errors=[{"field": "body", "message": str(exc)}]), 400
    try:
        job = jobs.accept(data, confirmed=auth.api_key_client())  # a program with an API key needs no confirmation
    except jobs.Refused as exc:
        return jsonify(errors=[{"field": name, "message": message} for name, message in exc.errors.items()]), 400
    # Links from PUBLIC_URL, never from the request's Host header (which the client chooses).
    status_url = public_url(url_for("api.job_status", job_id=job.id))
    response = jsonify(id=job.id, status=job.status, run_at=job.run_at.isoformat(), status_url=status_url,
                       page_url=public_url(url_for("web.job_page", job_id=job.id)))
    response.headers["Location"] = status_url
    return response, 201


@bp.get("/jobs/<job_id>")
def job_status(job_id: str):
    """Return a job's status, progress (phase, counts, estimated seconds left) and event log."""
    store = get_store()
    job = store.get_job(job_id)
    if job is None:
        abort(404, description="no such job (jobs are deleted after the retention period)")
    return jsonify(
        id=job.id, query=job.query, count=job.count, status=job.status, phase=job.phase,
        run_at=job.run_at.isoformat(), timezone=job.timezone, candidates=job.candidates, delivered=job.delivered,
        progress=progress(job), note=job.note, error=job.error, options=job.options,
        classes=[result.to_dict() for result in for_job(job)],
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        events=log_lines(store.events(job_id), job.timezone),
    )


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    """Cancel a job that has not ended: 200 with its status, 409 when it had already ended."""
    job, cancelled = jobs.cancel(job_id)
    if job is None:
        abort(404, description="no such job (jobs are deleted after the retention period)")
    if not cancelled:
        return jsonify(error=f"the job has already ended ({job.status}); there is nothing to cancel",
                       status=job.status), 409
    return jsonify(id=job.id, status=job.status)
