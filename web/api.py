"""The JSON API: submit a job and read its status."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, jsonify, request, url_for

import jobs
from db import get_store
from jobs.validation import validate_submission

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/jobs")
def create_job():
    """Queue a job from a JSON object with the form's field names; 201 with its id, or 400 with field errors."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(errors=[{"field": None, "message": "the body must be a JSON object"}]), 400
    config = current_app.config
    submission, errors = validate_submission(data, now=datetime.now(UTC), max_images=config["MAX_IMAGES"],
                                             max_query_length=config["MAX_QUERY_LENGTH"])
    if errors:
        return jsonify(errors=[{"field": name, "message": message} for name, message in errors.items()]), 400
    job = jobs.submit(submission)
    status_url = url_for("api.job_status", job_id=job.id, _external=True)
    response = jsonify(id=job.id, status=job.status, run_at=job.run_at.isoformat(), status_url=status_url,
                       page_url=url_for("web.job_page", job_id=job.id, _external=True))
    response.headers["Location"] = status_url
    return response, 201


@bp.get("/jobs/<job_id>")
def job_status(job_id: str):
    """Return a job's status, progress and event log."""
    store = get_store()
    job = store.get_job(job_id)
    if job is None:
        abort(404, description="no such job (jobs are deleted after the retention period)")
    return jsonify(
        id=job.id, query=job.query, count=job.count, status=job.status, phase=job.phase,
        run_at=job.run_at.isoformat(), timezone=job.timezone, candidates=job.candidates, delivered=job.delivered,
        note=job.note, error=job.error, options=job.options,
        finished_at=job.finished_at.isoformat() if job.finished_at else None,
        events=[{"at": e.at.isoformat(), "level": e.level, "message": e.message} for e in store.events(job_id)],
    )
