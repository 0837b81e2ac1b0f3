"""The Cassandra store's three lists and its retention by TTL.

``jobs_active`` (queued or running), ``jobs_finished`` (done or failed, with what the cleanup needs) and
``jobs_pending_mail`` are single partitions (``shard = 0``). They are indexes, not the truth: readers fetch the job
rows and keep only those in the right state. An entry is written before the lightweight transaction that needs it,
so a crash can leave a dangling entry but never hide a job.

A job's personal data expire ``retention_seconds`` after it finished (``ttl_left``); nothing expires while it is
queued or running (TTL 0). The ``jobs_finished`` entry (id, zip name, times; nothing personal) lives a day longer.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from db.base import FINISHED
from db.cassandra.connection import CassandraConnection
from db.cassandra.rows import as_utc, utc_now

FINISHED_INDEX_GRACE = 86400  # the jobs_finished entry outlives the job row by a day: cleanup still finds the zip
DANGLING_AFTER = timedelta(hours=1)  # an index entry without a job row this old is the trace of a failed create


def ttl_left(retention_seconds: int, finished_at: datetime | None, now: datetime | None = None) -> int:
    """Return the TTL for a job's personal data: none while it is not finished, else what is left of retention.

    The elapsed time is rounded up, so nothing outlives the retention: rounding down gave a cell written 0.9 s after
    the finish a full second more. TTLs are whole seconds, so cells written at different moments still expire up
    to a second apart, all within the retention.
    """
    if finished_at is None:
        return 0
    left = retention_seconds - math.ceil(((now or utc_now()) - finished_at).total_seconds())
    return max(left, 1)


def job_ttl(conn: CassandraConnection, retention_seconds: int, job_id: str) -> int:
    """Return the TTL for what is written for the job now (its URLs, its log)."""
    row = conn.run("SELECT status, finished_at FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
    if row is None or row.status is None:
        return retention_seconds  # no job (purged or expired): never keep personal data forever
    return ttl_left(retention_seconds, as_utc(row.finished_at)) if row.status in FINISHED else 0


def add_active(conn: CassandraConnection, job_id: str) -> None:
    conn.run("INSERT INTO {ks}.jobs_active (shard, id, added_at) VALUES (0, ?, ?)", (job_id, utc_now()))


def active_rows(conn: CassandraConnection) -> list[Any]:
    """Return the rows of the queued and running jobs, removing the entries that are no longer active."""
    entries = list(conn.run("SELECT id, added_at FROM {ks}.jobs_active WHERE shard = 0"))
    rows = conn.fetch_rows([e.id for e in entries])
    old = utc_now() - DANGLING_AFTER
    for entry in entries:
        row = rows.get(entry.id)
        # Finished is final, so removing its active entry cannot race; a missing row is only removed when old
        # (a create in flight writes the entry first).
        if (row is not None and row.status in FINISHED) or (
            row is None and entry.added_at is not None and as_utc(entry.added_at) < old
        ):
            conn.run("DELETE FROM {ks}.jobs_active WHERE shard = 0 AND id = ?", (entry.id,))
    return [row for row in rows.values() if row.status not in FINISHED]


def add_finished(
    conn: CassandraConnection, job_id: str, status: str, finished_at: datetime | None, zip_name: str | None, ttl: int
) -> None:
    conn.run(
        "INSERT INTO {ks}.jobs_finished (shard, id, status, finished_at, zip_name) VALUES (0, ?, ?, ?, ?)"
        " USING TTL ?",
        (job_id, status, finished_at, zip_name, ttl + FINISHED_INDEX_GRACE),
    )


def add_pending_mail(conn: CassandraConnection, job_id: str, ttl: int) -> None:
    conn.run("INSERT INTO {ks}.jobs_pending_mail (shard, id) VALUES (0, ?) USING TTL ?", (job_id, ttl))


def remove(conn: CassandraConnection, job_id: str, *tables: str) -> None:
    """Remove the job's entry from the named lists (``jobs_active``, ``jobs_finished``, ``jobs_pending_mail``)."""
    for table in tables:
        conn.run(f"DELETE FROM {{ks}}.{table} WHERE shard = 0 AND id = ?", (job_id,))


def after_finish(
    conn: CassandraConnection, job_id: str, status: str, finished_at: datetime, zip_name: str | None,
    mail_pending: str | None, ttl: int,
) -> None:  # fmt: skip
    """Move a job that just finished to the finished list, and give its URLs and log the retention TTL."""
    add_finished(conn, job_id, status, finished_at, zip_name, ttl)
    remove(conn, job_id, "jobs_active")
    if mail_pending:
        add_pending_mail(conn, job_id, ttl)
    # Re-write the job's URLs and log with the TTL (same keys, newer cells and row markers).
    urls = conn.run("SELECT * FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
    conn.run_many(
        "INSERT INTO {ks}.image_urls (job_id, position, seq, url, email, page_url, title, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
        [(u.job_id, u.position, u.seq, u.url, u.email, u.page_url, u.title, u.source, ttl) for u in urls],
    )
    events = conn.run("SELECT * FROM {ks}.events WHERE job_id = ?", (job_id,))
    conn.run_many(
        "INSERT INTO {ks}.events (job_id, at, seq, level, message) VALUES (?, ?, ?, ?, ?) USING TTL ?",
        [(e.job_id, e.at, e.seq, e.level, e.message, ttl) for e in events],
    )
