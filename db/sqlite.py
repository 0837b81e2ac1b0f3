"""The SQLite store: one file, shared safely by several processes (WAL mode, conditional updates)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from db import base  # the statuses, as base.QUEUED, base.RUNNING, ...
from db.base import (
    JOB_COLUMNS,
    Event,
    ImageUrl,
    Job,
    Store,
    StoreError,
    StoreUnavailable,
    finish_fields,
    writable_names,
)
from db.crawl_state import CrawlState
from db.sqlite_consent import SCHEMA as CONSENT_SCHEMA
from db.sqlite_consent import ConsentTables
from db.sqlite_crawl import SCHEMA as CRAWL_SCHEMA
from db.sqlite_crawl import SQLiteCrawlState, delete_crawl
from db.sqlite_rows import dt as _dt
from db.sqlite_rows import encode as _encode
from db.sqlite_rows import row_to_job as _row_to_job
from db.sqlite_rows import ts as _ts

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, query TEXT NOT NULL, email TEXT NOT NULL, count INTEGER NOT NULL, run_at TEXT NOT NULL,
    timezone TEXT NOT NULL, options TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL, phase TEXT NOT NULL,
    created_at TEXT, started_at TEXT, finished_at TEXT, heartbeat_at TEXT, claimed_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, candidates INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0,
    zip_name TEXT, zip_bytes INTEGER NOT NULL DEFAULT 0, error TEXT, note TEXT,
    mails_sent TEXT NOT NULL DEFAULT '[]', mail_pending TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status_run_at ON jobs (status, run_at);
CREATE TABLE IF NOT EXISTS image_urls (
    job_id TEXT NOT NULL, url TEXT NOT NULL, position INTEGER NOT NULL, email TEXT NOT NULL, page_url TEXT,
    title TEXT, source TEXT, PRIMARY KEY (job_id, url)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, at TEXT NOT NULL, level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, seq);
""" + CONSENT_SCHEMA + CRAWL_SCHEMA

class SQLiteStore(ConsentTables, Store):
    """A Store in one SQLite file; one connection per thread."""

    _ts = staticmethod(_ts)
    _job = staticmethod(_row_to_job)

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # Every thread's connection, with the lock its thread holds while using it: close() takes each lock, so it
        # never closes a connection in the middle of another thread's statement (that crashed the process).
        self._connections: list[tuple[sqlite3.Connection, threading.RLock]] = []
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Open ``sqlite:///relative/or/absolute/path`` (four slashes for an absolute path, as SQLAlchemy)."""
        path = url.split("://", 1)[1]
        if path.startswith("/"):
            path = path[1:]
        return cls(path or "aid.sqlite3")

    def _connection(self) -> tuple[sqlite3.Connection, threading.RLock]:
        held = getattr(self._local, "held", None)
        if held is None:
            conn = sqlite3.connect(self.path, timeout=15, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=15000")
            held = (conn, threading.RLock())
            self._local.held = held
            with self._lock:
                self._connections.append(held)
        return held

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            conn, in_use = self._connection()
            with in_use:
                yield conn
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"SQLite: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE), rolled back on any error."""
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def init_schema(self) -> None:
        with self._db() as conn:
            conn.executescript(SCHEMA)

    def close(self) -> None:
        """Close every thread's connection, each once its thread is done with it (a transaction open in another
        thread commits or rolls back first); a thread's next use opens a new one."""
        with self._lock:
            for conn, in_use in self._connections:
                with in_use:
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    # Jobs
    def create_job(self, job: Job) -> None:
        values = [_encode(name, getattr(job, name)) for name in JOB_COLUMNS]
        marks = ", ".join("?" for _ in JOB_COLUMNS)
        with self._db() as conn:
            conn.execute(f"INSERT INTO jobs ({', '.join(JOB_COLUMNS)}) VALUES ({marks})", values)

    def get_job(self, job_id: str) -> Job | None:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _row_to_job(row)

    def queued_jobs(self) -> list[Job]:
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE status = ? ORDER BY run_at", (base.QUEUED,)).fetchall()
        return [_row_to_job(row) for row in rows]

    def claim_job(self, job_id: str, worker: str, now: datetime) -> bool:
        with self._db() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, claimed_by = ?, heartbeat_at = ?, attempts = attempts + 1,"
                " started_at = COALESCE(started_at, ?) WHERE id = ? AND status = ?",
                (base.RUNNING, worker, _ts(now), _ts(now), job_id, base.QUEUED),
            )
        return cursor.rowcount == 1

    def heartbeat(self, job_id: str, worker: str, now: datetime, **progress) -> None:
        assignments, values = self._assignments(progress)
        with self._db() as conn:
            conn.execute(
                f"UPDATE jobs SET heartbeat_at = ?{assignments} WHERE id = ? AND claimed_by = ? AND status = ?",
                [_ts(now), *values, job_id, worker, base.RUNNING],
            )

    def finish_job(self, job_id: str, worker: str, status: str, now: datetime, **fields) -> bool:
        assignments, values = self._assignments(finish_fields(status, now, fields))
        with self._db() as conn:
            cursor = conn.execute(
                f"UPDATE jobs SET status = ?{assignments} WHERE id = ? AND status = ? AND claimed_by = ?",
                [status, *values, job_id, base.RUNNING, worker],
            )
        return cursor.rowcount == 1

    def release_job(self, job_id: str, worker: str, now: datetime) -> bool:
        with self._db() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, phase = 'queued', claimed_by = NULL, heartbeat_at = ?"
                " WHERE id = ? AND status = ? AND claimed_by = ?",
                (base.QUEUED, _ts(now), job_id, base.RUNNING, worker),
            )
        return cursor.rowcount == 1

    def cancel_job(self, job_id: str, now: datetime) -> bool:
        marks = ", ".join("?" for _ in base.ACTIVE)
        with self._db() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, phase = ?, finished_at = ?, mail_pending = NULL"
                f" WHERE id = ? AND status IN ({marks})",
                (base.CANCELLED, base.CANCELLED, _ts(now), job_id, *base.ACTIVE),
            )
        return cursor.rowcount == 1

    def requeue_stale(self, cutoff: datetime) -> list[str]:
        requeued = []
        with self._db() as conn:
            rows = conn.execute(
                "SELECT id, claimed_by FROM jobs WHERE status = ? AND heartbeat_at < ?", (base.RUNNING, _ts(cutoff))
            ).fetchall()
            for row in rows:
                cursor = conn.execute(
                    "UPDATE jobs SET status = ?, phase = 'queued', claimed_by = NULL"
                    " WHERE id = ? AND status = ? AND claimed_by = ? AND heartbeat_at < ?",
                    (base.QUEUED, row["id"], base.RUNNING, row["claimed_by"], _ts(cutoff)),
                )
                if cursor.rowcount == 1:
                    requeued.append(row["id"])
        return requeued

    def finished_before(self, cutoff: datetime) -> list[Job]:
        with self._db() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status IN ({', '.join('?' for _ in base.FINISHED)}) AND finished_at < ?"
                " ORDER BY finished_at",
                (*base.FINISHED, _ts(cutoff)),
            ).fetchall()
        return [_row_to_job(row) for row in rows]

    def purge_job(self, job_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM image_urls WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            delete_crawl(conn, job_id)

    # Mail bookkeeping
    def record_mail(self, job_id: str, kind: str, sent: bool) -> None:
        with self._transaction() as conn:
            row = conn.execute("SELECT mails_sent FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is not None:
                sent_kinds = json.loads(row["mails_sent"])
                if sent and kind not in sent_kinds:
                    sent_kinds.append(kind)
                conn.execute(
                    "UPDATE jobs SET mails_sent = ?, mail_pending = ? WHERE id = ?",
                    (json.dumps(sent_kinds), None if sent else kind, job_id),
                )

    def jobs_with_pending_mail(self) -> list[Job]:
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM jobs WHERE mail_pending IS NOT NULL").fetchall()
        return [_row_to_job(row) for row in rows]

    # Image URLs
    def add_image_urls(self, urls: list[ImageUrl]) -> None:
        if not urls:
            return
        with self._db() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO image_urls (job_id, url, position, email, page_url, title, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(u.job_id, u.url, u.position, u.email, u.page_url, u.title, u.source) for u in urls],
            )

    def image_urls(self, job_id: str) -> list[ImageUrl]:
        with self._db() as conn:
            rows = conn.execute(
                "SELECT * FROM image_urls WHERE job_id = ? ORDER BY position, rowid", (job_id,)
            ).fetchall()
        return [
            ImageUrl(job_id=r["job_id"], email=r["email"], url=r["url"], page_url=r["page_url"], title=r["title"],
                     source=r["source"], position=r["position"])
            for r in rows
        ]

    # Event log
    def log_event(self, job_id: str, message: str, level: str = "info", at: datetime | None = None) -> None:
        at = at or datetime.now(UTC)
        with self._db() as conn:
            conn.execute(
                "INSERT INTO events (job_id, at, level, message) VALUES (?, ?, ?, ?)",
                (job_id, _ts(at), level, message),
            )

    def events(self, job_id: str) -> list[Event]:
        with self._db() as conn:
            rows = conn.execute("SELECT * FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
        return [Event(job_id=r["job_id"], at=_dt(r["at"]), level=r["level"], message=r["message"]) for r in rows]

    # Crawl state
    def crawl_state(self, job_id: str) -> CrawlState:
        if self.path == ":memory:":
            raise StoreError("crawl jobs need an SQLite file, not :memory:")
        try:
            return SQLiteCrawlState(self.path, job_id)  # its own connection: the crawl's threads share it
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    def delete_crawl_state(self, job_id: str) -> None:
        with self._transaction() as conn:
            delete_crawl(conn, job_id)

    def _assignments(self, values: dict) -> tuple[str, list]:
        names = writable_names(values)
        return "".join(f", {name} = ?" for name in names), [_encode(name, values[name]) for name in names]
