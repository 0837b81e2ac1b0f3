"""A crawl's state in SQLite: the CLI's file in OUT_DIR (job id "") or the crawl jobs of the SQLite store.

Every change is one small transaction (WAL), so a process killed at any moment loses no committed step. Rows are
never deleted while the crawl lives (only ``delete`` removes a crawl, with its job); the frontier is read forward
by sequence number through the ``(job_id, status, seq)`` indexes, and "seen before?" is a primary-key lookup, so
memory does not grow with the crawl. One connection and one lock per state object (the coordinator's threads share
it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from db.crawl_state import CrawlState, ImageFind, PageLink, PendingImage, QueuedPage, Refusal, SavedImage

SCHEMA = """
CREATE TABLE IF NOT EXISTS crawl_meta (
    job_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (job_id, key));
CREATE TABLE IF NOT EXISTS crawl_pages (
    job_id TEXT NOT NULL, url TEXT NOT NULL, fetch_url TEXT NOT NULL, seq INTEGER NOT NULL, depth INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT, PRIMARY KEY (job_id, url));
CREATE INDEX IF NOT EXISTS crawl_pages_frontier ON crawl_pages (job_id, status, seq);
CREATE TABLE IF NOT EXISTS crawl_images (
    job_id TEXT NOT NULL, url TEXT NOT NULL, fetch_url TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
    info TEXT NOT NULL, reason TEXT, kind TEXT, file TEXT, width INTEGER, height INTEGER, bytes INTEGER,
    sha256 TEXT, phash TEXT, PRIMARY KEY (job_id, url));
CREATE INDEX IF NOT EXISTS crawl_images_pending ON crawl_images (job_id, status, seq);
"""
_SAVED = "SELECT url, seq, file, width, height, bytes, sha256, phash, info FROM crawl_images WHERE job_id = ? " \
         "AND status = 'saved'"


def delete_crawl(conn: sqlite3.Connection, job_id: str) -> None:
    """Delete one crawl's rows (inside the caller's transaction)."""
    for table in ("crawl_meta", "crawl_pages", "crawl_images"):
        conn.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))


def _saved(row: tuple) -> SavedImage:
    url, seq, file, width, height, size, sha, phash, info = row
    return SavedImage(url, seq, file, width, height, size, sha, phash, json.loads(info))


class SQLiteCrawlState(CrawlState):
    """The crawl ``job_id`` in the SQLite file ``path`` (created if needed)."""

    def __init__(self, path: str | Path, job_id: str = "") -> None:
        self.path, self.job_id = Path(path), job_id
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a process kill loses no committed write
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._seq = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM crawl_pages WHERE job_id = ? UNION ALL "
            "SELECT MAX(seq) FROM crawl_images WHERE job_id = ?)", (job_id, job_id)).fetchone()[0] or 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, *params: object) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, (self.job_id, *params)).fetchall()

    def delete(self) -> None:
        """Delete this crawl's rows."""
        with self._transaction() as db:
            delete_crawl(db, self.job_id)
            self._seq = 0

    # -- meta -----------------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM crawl_meta WHERE job_id = ? AND key = ?", key)
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO crawl_meta (job_id, key, value) VALUES (?, ?, ?)",
                       (self.job_id, key, value))

    # -- pages ----------------------------------------------------------------------------------------------------

    def _add_pages(self, db: sqlite3.Connection, pages: Iterable[PageLink]) -> int:
        added = 0
        for url, fetch_url, depth in pages:
            cursor = db.execute("INSERT OR IGNORE INTO crawl_pages (job_id, url, fetch_url, seq, depth, status) "
                                "VALUES (?, ?, ?, ?, ?, 'queued')", (self.job_id, url, fetch_url, self._seq + 1, depth))
            if cursor.rowcount:
                self._seq += 1
                added += 1
        return added

    def add_pages(self, pages: Iterable[PageLink]) -> int:
        with self._transaction() as db:
            return self._add_pages(db, pages)

    def queued(self, after: int, limit: int) -> list[QueuedPage]:
        rows = self._rows("SELECT url, fetch_url, depth, seq FROM crawl_pages WHERE job_id = ? AND status = 'queued' "
                          "AND seq > ? ORDER BY seq LIMIT ?", after, limit)
        return [QueuedPage(*row) for row in rows]

    def page_visited(self, url: str, links: Iterable[PageLink], images: Iterable[ImageFind]) -> tuple[int, int]:
        with self._transaction() as db:
            db.execute("UPDATE crawl_pages SET status = 'visited' WHERE job_id = ? AND url = ?", (self.job_id, url))
            new_pages = self._add_pages(db, links)
            new_images = 0
            for image_url, fetch_url, info in images:
                cursor = db.execute("INSERT OR IGNORE INTO crawl_images (job_id, url, fetch_url, seq, status, info) "
                                    "VALUES (?, ?, ?, ?, 'pending', ?)",
                                    (self.job_id, image_url, fetch_url, self._seq + 1, json.dumps(info)))
                if cursor.rowcount:
                    self._seq += 1
                    new_images += 1
            return new_pages, new_images

    def page_failed(self, url: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE crawl_pages SET status = 'failed', reason = ? WHERE job_id = ? AND url = ?",
                       (reason, self.job_id, url))

    # -- images ---------------------------------------------------------------------------------------------------

    def pending(self, after: int, limit: int) -> list[PendingImage]:
        rows = self._rows("SELECT url, fetch_url, seq, info FROM crawl_images WHERE job_id = ? AND status = 'pending' "
                          "AND seq > ? ORDER BY seq LIMIT ?", after, limit)
        return [PendingImage(url, fetch, seq, json.loads(info)) for url, fetch, seq, info in rows]

    def images_done(self, saved: Iterable[SavedImage], refused: Iterable[Refusal]) -> None:
        with self._transaction() as db:
            for image in saved:
                db.execute("UPDATE crawl_images SET status = 'saved', file = ?, width = ?, height = ?, bytes = ?, "
                           "sha256 = ?, phash = ?, info = ?, reason = NULL, kind = NULL WHERE job_id = ? AND url = ?",
                           (image.file, image.width, image.height, image.bytes, image.sha256, image.phash,
                            json.dumps(image.info), self.job_id, image.url))
            for url, status, kind, reason in refused:
                db.execute("UPDATE crawl_images SET status = ?, kind = ?, reason = ? WHERE job_id = ? AND url = ?",
                           (status, kind, reason, self.job_id, url))

    def saved(self) -> list[SavedImage]:
        return [_saved(row) for row in self._rows(_SAVED + " ORDER BY seq")]

    def saved_image(self, seq: int) -> SavedImage | None:
        rows = self._rows(_SAVED + " AND seq = ?", seq)
        return _saved(rows[0]) if rows else None

    def kept_hashes(self) -> Iterator[tuple[int, str, str, str, int]]:
        yield from self._rows("SELECT seq, url, sha256, phash, width * height FROM crawl_images WHERE job_id = ? "
                              "AND status = 'saved' ORDER BY seq")

    def failures(self) -> list[tuple[str, str, str]]:
        images = self._rows("SELECT fetch_url, reason, kind FROM crawl_images WHERE job_id = ? AND status IN "
                            "('failed', 'duplicate') ORDER BY seq")
        pages = self._rows("SELECT fetch_url, reason FROM crawl_pages WHERE job_id = ? AND status = 'failed' "
                           "ORDER BY seq")
        return [(u, r or "", k or "broken") for u, r, k in images] + [(u, r or "", "page") for u, r in pages]

    def counts(self) -> dict[str, int]:
        pages = self._rows("SELECT status, COUNT(*) FROM crawl_pages WHERE job_id = ? GROUP BY status")
        images = self._rows("SELECT status, COUNT(*) FROM crawl_images WHERE job_id = ? GROUP BY status")
        return {f"pages_{s}": n for s, n in pages} | {f"images_{s}": n for s, n in images}
