"""What a job's page and API show while it runs and after: its progress with an estimate of the time left, and its
event log as at most MAX_LOG_LINES lines with times in the user's zone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from db import DONE, RUNNING, Event, Job
from jobs.classes import job_queries
from jobs.links import clock_time

MAX_LOG_LINES = 30
_HEAD = 10  # lines kept from the start of a longer log; the rest from its end


def wanted(job: Job) -> int:
    return job.count * len(job_queries(job.query, job.options))


def eta_seconds(job: Job, now: datetime | None = None) -> int | None:
    """Seconds left at the pace so far (from the start to the images delivered), or None before any image."""
    if job.status == DONE:
        return 0
    want = wanted(job)
    if job.status != RUNNING or job.started_at is None or job.delivered <= 0 or job.delivered >= want:
        return None
    elapsed = ((now or datetime.now(UTC)) - job.started_at).total_seconds()
    if elapsed <= 0:
        return None
    return max(1, round((want - job.delivered) * elapsed / job.delivered))


def progress(job: Job, now: datetime | None = None) -> dict:
    """``{phase, candidates, delivered, wanted, eta_seconds}`` of ``job``."""
    return {"phase": job.phase, "candidates": job.candidates, "delivered": job.delivered, "wanted": wanted(job),
            "eta_seconds": eta_seconds(job, now)}


def log_lines(events: Sequence[Event], zone: str) -> list[dict]:
    """The log as ``{time, level, message}`` rows, times in ``zone``; a longer log keeps its start and its end with
    one line that says how many were left out, MAX_LOG_LINES in all."""
    rows = [{"at": e.at.isoformat(), "time": clock_time(e.at, zone), "level": e.level, "message": e.message}
            for e in events]
    if len(rows) <= MAX_LOG_LINES:
        return rows
    tail = MAX_LOG_LINES - _HEAD - 1
    skipped = len(rows) - _HEAD - tail
    gap = {"at": rows[_HEAD]["at"], "time": rows[_HEAD]["time"], "level": "info",
           "message": f"… {skipped} more lines like these are not shown …"}
    return [*rows[:_HEAD], gap, *rows[-tail:]]


# What each phase (and final status) is called on the page, in plain words.
PHASE_WORDS = {
    "unconfirmed": "waiting for you to confirm your address",
    "queued": "waiting for its time",
    "collecting": "collecting image links",
    "downloading": "downloading and checking images",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}
