"""The SQLite store's caps and consent: admission under one write transaction, addresses only as keyed hashes.

``create_job_capped`` counts and inserts inside ``BEGIN IMMEDIATE``, which SQLite grants to one connection at a time
across processes, so two submissions can never both take the last place. Expired hashes are deleted as the tables
are used.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from db.base import ACTIVE, QUEUED, UNCONFIRMED, WAITING, Job, LimitReached

SCHEMA = """
CREATE INDEX IF NOT EXISTS jobs_email ON jobs (lower(email), status);
CREATE TABLE IF NOT EXISTS confirmed_addresses (key TEXT PRIMARY KEY, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS confirmation_mails (key TEXT NOT NULL, sent_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS confirmation_mails_key ON confirmation_mails (key, sent_at);
"""


def _marks(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


class ConsentTables:
    """The Store methods for the caps, unconfirmed jobs, confirmed addresses and confirmation emails."""

    # Provided by SQLiteStore: its connection, its write transaction, its insert and its row conversions.
    _db: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]
    create_job: Callable[[Job], None]
    _ts: Callable[[datetime | None], str | None]
    _job: Callable[[sqlite3.Row], Job]

    def create_job_capped(self, job: Job, per_email: int, in_all: int) -> None:
        with self._transaction() as conn:
            mine = conn.execute(
                f"SELECT count(*) FROM jobs WHERE lower(email) = ? AND status IN ({_marks(ACTIVE)})",
                (job.email.strip().lower(), *ACTIVE),
            ).fetchone()[0]
            if mine >= per_email:
                raise LimitReached("email")
            waiting = conn.execute(f"SELECT count(*) FROM jobs WHERE status IN ({_marks(WAITING)})", WAITING)
            if waiting.fetchone()[0] >= in_all:
                raise LimitReached("all")
            self.create_job(job)  # the same connection: inside this transaction

    def confirm_jobs(self, email: str) -> list[str]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM jobs WHERE lower(email) = ? AND status = ?", (email.strip().lower(), UNCONFIRMED)
            ).fetchall()
            ids = [row["id"] for row in rows]
            conn.executemany("UPDATE jobs SET status = ?, phase = ? WHERE id = ? AND status = ?",
                             [(QUEUED, QUEUED, job_id, UNCONFIRMED) for job_id in ids])
        return ids

    def unconfirmed_before(self, cutoff: datetime) -> list[Job]:
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE status = ? AND created_at < ? ORDER BY created_at",
                                (UNCONFIRMED, self._ts(cutoff))).fetchall()
        return [self._job(row) for row in rows]

    def remember_confirmed(self, key: str, until: datetime) -> None:
        with self._db() as conn:
            conn.execute("INSERT OR REPLACE INTO confirmed_addresses (key, until) VALUES (?, ?)",
                         (key, self._ts(until)))

    def is_confirmed(self, key: str, now: datetime) -> bool:
        with self._db() as conn:
            conn.execute("DELETE FROM confirmed_addresses WHERE until <= ?", (self._ts(now),))
            row = conn.execute("SELECT 1 FROM confirmed_addresses WHERE key = ?", (key,)).fetchone()
        return row is not None

    def reserve_confirmation_mail(self, key: str, now: datetime, limits: Sequence[tuple[timedelta, int]]) -> bool:
        longest = max((window for window, _ in limits), default=timedelta(0))
        with self._transaction() as conn:
            conn.execute("DELETE FROM confirmation_mails WHERE sent_at <= ?", (self._ts(now - longest),))
            for window, most in limits:
                count = conn.execute(
                    "SELECT count(*) FROM confirmation_mails WHERE key = ? AND sent_at > ? AND sent_at <= ?",
                    (key, self._ts(now - window), self._ts(now)),
                ).fetchone()[0]
                if count >= most:
                    return False
            conn.execute("INSERT INTO confirmation_mails (key, sent_at) VALUES (?, ?)", (key, self._ts(now)))
        return True
