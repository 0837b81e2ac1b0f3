"""The storage interface every database backend implements, and the records it passes.

Records are plain dataclasses; datetimes are timezone-aware UTC. A job's status changes only through the
conditional methods (``claim_job``, ``finish_job``, ``release_job``, ``requeue_stale``, ``cancel_job``), so that
when several processes share one database each job runs exactly once. Everything else is a plain write.

Exceptions: ``StoreError`` is the family; ``StoreUnavailable`` means the database did not answer (the web
layer turns it into a 503 "nothing was saved, please retry").
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from db.crawl_state import CrawlState

UNCONFIRMED = "unconfirmed"  # waits for its address to be confirmed (double opt-in)
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"  # stopped by its owner; final, like done and failed
FINISHED = (DONE, FAILED, CANCELLED)
WAITING = (UNCONFIRMED, QUEUED)  # counted by the cap in all
ACTIVE = (UNCONFIRMED, QUEUED, RUNNING)  # counted by the cap per address


class StoreError(Exception):
    """A database operation failed."""


class StoreUnavailable(StoreError):
    """The database could not be reached; nothing was written."""


class LimitReached(StoreError):
    """A cap refused a new job and nothing was written; ``which`` is "email" (per address) or "all"."""

    def __init__(self, which: str):
        super().__init__(f"the {which} cap on jobs is reached")
        self.which = which


def same_address(a: str, b: str) -> bool:
    """Addresses compare without case, as mail servers do (so a cap cannot be dodged by changing case)."""
    return a.strip().lower() == b.strip().lower()


@dataclass
class Job:
    id: str
    query: str
    email: str
    count: int
    run_at: datetime
    timezone: str = "UTC"
    options: dict = field(default_factory=dict)  # filters and sources, JSON-serialisable
    status: str = QUEUED
    phase: str = "queued"  # queued, collecting, downloading (also while the zip is built), done, failed, cancelled
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    claimed_by: str | None = None
    attempts: int = 0
    candidates: int = 0  # image URLs collected
    delivered: int = 0  # valid unique images in the zip
    zip_name: str | None = None  # file name under DATA_DIR/zips (or the storage key)
    zip_bytes: int = 0
    error: str | None = None
    note: str | None = None  # e.g. the shortfall explanation
    mails_sent: list[str] = field(default_factory=list)  # kinds delivered: started, done, failed
    mail_pending: str | None = None  # a kind whose send failed and waits for the periodic retry


# The jobs table has one column per Job field, of the same name, in this order (both backends).
JOB_COLUMNS = tuple(f.name for f in fields(Job))
DATETIME_FIELDS = frozenset({"run_at", "created_at", "started_at", "finished_at", "heartbeat_at"})
# Progress and result fields a worker may write; the status changes only through the conditional methods.
WRITABLE = frozenset({"phase", "candidates", "delivered", "zip_name", "zip_bytes", "error", "note", "started_at",
                      "finished_at"})


def writable_names(values: dict) -> list[str]:
    """Return the names of ``values`` sorted, refusing any field a worker may not write."""
    unknown = set(values) - WRITABLE
    if unknown:
        raise ValueError(f"cannot write job fields {sorted(unknown)} here")
    return sorted(values)


def finish_fields(status: str, now: datetime, values: dict) -> dict:
    """Return the fields ``finish_job`` writes: ``values`` with the finish time and the phase (the status)."""
    if status not in (DONE, FAILED):
        raise ValueError(f"a job finishes as done or failed, not {status!r}")
    values = {"finished_at": now, "phase": status, **values}
    writable_names(values)
    return values


@dataclass
class ImageUrl:
    job_id: str
    email: str
    url: str
    page_url: str | None = None
    title: str | None = None
    source: str | None = None
    position: int = 0


@dataclass
class Event:
    job_id: str
    at: datetime
    level: str
    message: str


class Store(abc.ABC):
    """What the app needs from a database. One instance per process."""

    @abc.abstractmethod
    def init_schema(self) -> None:
        """Create tables if they do not exist (idempotent)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    # Jobs
    @abc.abstractmethod
    def create_job(self, job: Job) -> None:
        """Insert a new queued job."""

    @abc.abstractmethod
    def create_job_capped(self, job: Job, per_email: int, in_all: int) -> None:
        """Insert a new job unless its address has ``per_email`` ACTIVE jobs or ``in_all`` jobs are WAITING.

        Raises LimitReached (nothing written). Checked and written at once, so the caps hold across processes.
        """

    @abc.abstractmethod
    def confirm_jobs(self, email: str) -> list[str]:
        """Move every unconfirmed job of ``email`` to queued (each exactly once); return their ids."""

    @abc.abstractmethod
    def unconfirmed_before(self, cutoff: datetime) -> list[Job]:
        """Return the unconfirmed jobs created before ``cutoff``."""

    @abc.abstractmethod
    def get_job(self, job_id: str) -> Job | None:
        """Return the job, or None when it does not exist (or was purged)."""

    @abc.abstractmethod
    def queued_jobs(self) -> list[Job]:
        """Return every queued job, earliest run_at first."""

    @abc.abstractmethod
    def claim_job(self, job_id: str, worker: str, now: datetime) -> bool:
        """Move the job from queued to running for ``worker``; True for exactly one caller."""

    @abc.abstractmethod
    def heartbeat(self, job_id: str, worker: str, now: datetime, **progress) -> None:
        """Record that ``worker`` still runs the job, with optional progress fields (phase, candidates, delivered)."""

    @abc.abstractmethod
    def finish_job(self, job_id: str, worker: str, status: str, now: datetime, **fields) -> bool:
        """Move the job from running (claimed by ``worker``) to done or failed, with result fields; True if it did."""

    @abc.abstractmethod
    def release_job(self, job_id: str, worker: str, now: datetime) -> bool:
        """Put a job that ``worker`` is running back to queued (a graceful shutdown); True if it did."""

    @abc.abstractmethod
    def cancel_job(self, job_id: str, now: datetime) -> bool:
        """Move an unconfirmed, queued or running job to cancelled (its phase too, finished at ``now``, no mail
        pending); True for exactly one caller. A running job's worker sees it and stops at its next safe point."""

    @abc.abstractmethod
    def requeue_stale(self, cutoff: datetime) -> list[str]:
        """Put running jobs whose heartbeat is older than ``cutoff`` back to queued; return their ids."""

    @abc.abstractmethod
    def finished_before(self, cutoff: datetime) -> list[Job]:
        """Return done or failed jobs that finished before ``cutoff``."""

    @abc.abstractmethod
    def purge_job(self, job_id: str) -> None:
        """Delete the job, its image URLs, its events and its crawl state."""

    # Consent: addresses stand for themselves only as keyed hashes (``key``), never in plain text
    @abc.abstractmethod
    def remember_confirmed(self, key: str, until: datetime) -> None:
        """Remember that the address of ``key`` is confirmed until ``until`` (then it is forgotten)."""

    @abc.abstractmethod
    def is_confirmed(self, key: str, now: datetime) -> bool:
        """True while the address of ``key`` is remembered as confirmed."""

    @abc.abstractmethod
    def reserve_confirmation_mail(self, key: str, now: datetime, limits: Sequence[tuple[timedelta, int]]) -> bool:
        """Count one confirmation email for ``key`` at ``now`` unless, for a (window, most) of ``limits``, ``most``
        were already counted within ``window`` before ``now``; True when counted. Atomic across processes."""

    # Mail bookkeeping
    @abc.abstractmethod
    def record_mail(self, job_id: str, kind: str, sent: bool) -> None:
        """Record that the ``kind`` email was sent (or is pending a retry when ``sent`` is False)."""

    @abc.abstractmethod
    def jobs_with_pending_mail(self) -> list[Job]:
        """Return jobs whose last email could not be sent yet."""

    # Image URLs
    @abc.abstractmethod
    def add_image_urls(self, urls: list[ImageUrl]) -> None:
        """Store collected image URLs (a URL already stored for the job is ignored)."""

    @abc.abstractmethod
    def image_urls(self, job_id: str) -> list[ImageUrl]:
        """Return the job's image URLs in the order they were collected."""

    # Event log
    @abc.abstractmethod
    def log_event(self, job_id: str, message: str, level: str = "info", at: datetime | None = None) -> None:
        """Append a line to the job's event log."""

    @abc.abstractmethod
    def events(self, job_id: str) -> list[Event]:
        """Return the job's event log, oldest first."""

    # Crawl state (crawl jobs): personal-ish data, deleted with the job by purge_job
    @abc.abstractmethod
    def crawl_state(self, job_id: str) -> CrawlState:
        """The crawl state of the job ``job_id``, empty until its crawl writes to it; the caller closes it."""

    @abc.abstractmethod
    def delete_crawl_state(self, job_id: str) -> None:
        """Delete the job's crawl state (a crawl that starts over; ``purge_job`` does it too)."""
