"""The crawl's state in one SQLite file: the frontier, the pages visited, the image URLs seen and the images saved.

Every change is written as it happens, in a small transaction, so a crawl killed at any moment (SIGKILL included)
resumes where it was. Rows are never deleted: a page goes ``queued`` -> ``visited`` (or ``failed``), an image
``pending`` -> ``saved`` (or ``failed``, ``duplicate``); the frontier is read forward by sequence number. The
primary keys are canonical URLs, so "seen before?" is an index lookup and memory does not grow with the crawl.
Used from several threads: one connection, one lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "crawl-state.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY, fetch_url TEXT NOT NULL, seq INTEGER NOT NULL, depth INTEGER NOT NULL,
    status TEXT NOT NULL, reason TEXT);
CREATE INDEX IF NOT EXISTS pages_frontier ON pages (status, seq);
CREATE TABLE IF NOT EXISTS images (
    url TEXT PRIMARY KEY, fetch_url TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL, info TEXT NOT NULL,
    reason TEXT, kind TEXT, file TEXT, width INTEGER, height INTEGER, bytes INTEGER, sha256 TEXT, phash TEXT);
CREATE INDEX IF NOT EXISTS images_pending ON images (status, seq);
CREATE INDEX IF NOT EXISTS images_seq ON images (seq);
"""


@dataclass(frozen=True)
class QueuedPage:
    url: str  # canonical
    fetch_url: str
    depth: int
    seq: int


@dataclass(frozen=True)
class PendingImage:
    url: str  # canonical
    fetch_url: str
    seq: int
    info: dict  # page URL, page title, alt, title, caption, tags, depth, discovered at, srcset widths


@dataclass(frozen=True)
class SavedImage:
    url: str
    seq: int
    file: str
    width: int
    height: int
    bytes: int
    sha256: str
    phash: str
    info: dict


class CrawlState:
    """One crawl's SQLite file; ``open(out_dir)`` creates it or opens the one a killed crawl left."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode a process kill loses no committed write
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._seq = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM pages UNION ALL SELECT MAX(seq) FROM images)"
        ).fetchone()[0] or 0

    @classmethod
    def open(cls, out_dir: Path) -> CrawlState:
        return cls(Path(out_dir) / STATE_FILE)

    @staticmethod
    def exists(out_dir: Path) -> bool:
        return (Path(out_dir) / STATE_FILE).exists()

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

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- meta -----------------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- pages ----------------------------------------------------------------------------------------------------

    def _add_pages(self, db: sqlite3.Connection, pages: Iterable[tuple[str, str, int]]) -> int:
        added = 0
        for url, fetch_url, depth in pages:
            cursor = db.execute("INSERT OR IGNORE INTO pages (url, fetch_url, seq, depth, status) "
                                "VALUES (?, ?, ?, ?, 'queued')", (url, fetch_url, self._seq + 1, depth))
            if cursor.rowcount:
                self._next_seq()
                added += 1
        return added

    def add_pages(self, pages: Iterable[tuple[str, str, int]]) -> int:
        """Queue (canonical URL, URL to fetch, depth) pages not seen before; return how many were new."""
        with self._transaction() as db:
            return self._add_pages(db, pages)

    def queued(self, after: int, limit: int) -> list[QueuedPage]:
        """The next ``limit`` queued pages with a sequence number above ``after``, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT url, fetch_url, depth, seq FROM pages WHERE status = 'queued' AND seq > ? "
                                    "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [QueuedPage(*row) for row in rows]

    def page_visited(self, url: str, links: Iterable[tuple[str, str, int]],
                     images: Iterable[tuple[str, str, dict]]) -> tuple[int, int]:
        """Mark ``url`` visited and queue what it yielded, in one transaction; return (new pages, new images)."""
        with self._transaction() as db:
            db.execute("UPDATE pages SET status = 'visited' WHERE url = ?", (url,))
            new_pages = self._add_pages(db, links)
            new_images = 0
            for image_url, fetch_url, info in images:
                cursor = db.execute("INSERT OR IGNORE INTO images (url, fetch_url, seq, status, info) "
                                    "VALUES (?, ?, ?, 'pending', ?)",
                                    (image_url, fetch_url, self._seq + 1, json.dumps(info)))
                if cursor.rowcount:
                    self._next_seq()
                    new_images += 1
            return new_pages, new_images

    def page_failed(self, url: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE pages SET status = 'failed', reason = ? WHERE url = ?", (reason, url))

    # -- images ---------------------------------------------------------------------------------------------------

    def pending(self, after: int, limit: int) -> list[PendingImage]:
        with self._lock:
            rows = self._db.execute("SELECT url, fetch_url, seq, info FROM images WHERE status = 'pending' AND seq > ? "
                                    "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        return [PendingImage(url, fetch, seq, json.loads(info)) for url, fetch, seq, info in rows]

    def images_done(self, saved: Iterable[SavedImage], refused: Iterable[tuple[str, str, str, str]]) -> None:
        """Record saved images and refused ones ((url, status, kind, reason)), in one transaction."""
        with self._transaction() as db:
            for image in saved:
                db.execute("UPDATE images SET status = 'saved', file = ?, width = ?, height = ?, bytes = ?, "
                           "sha256 = ?, phash = ?, reason = NULL, kind = NULL WHERE url = ?",
                           (image.file, image.width, image.height, image.bytes, image.sha256, image.phash, image.url))
            for url, status, kind, reason in refused:
                db.execute("UPDATE images SET status = ?, kind = ?, reason = ? WHERE url = ?",
                           (status, kind, reason, url))

    def saved(self) -> list[SavedImage]:
        with self._lock:
            rows = self._db.execute("SELECT url, seq, file, width, height, bytes, sha256, phash, info FROM images "
                                    "WHERE status = 'saved' ORDER BY seq").fetchall()
        return [SavedImage(url, seq, file, width, height, size, sha, phash, json.loads(info))
                for url, seq, file, width, height, size, sha, phash, info in rows]

    def saved_image(self, seq: int) -> SavedImage | None:
        """The saved image of sequence number ``seq``, or None."""
        with self._lock:
            row = self._db.execute("SELECT url, seq, file, width, height, bytes, sha256, phash, info FROM images "
                                   "WHERE status = 'saved' AND seq = ?", (seq,)).fetchone()
        if row is None:
            return None
        url, seq, file, width, height, size, sha, phash, info = row
        return SavedImage(url, seq, file, width, height, size, sha, phash, json.loads(info))

    def kept_hashes(self) -> Iterator[tuple[int, str, str, str, int]]:
        """(seq, url, sha256, phash, pixel area) of every saved image, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT seq, url, sha256, phash, width * height FROM images "
                                    "WHERE status = 'saved' ORDER BY seq").fetchall()
        yield from rows

    def failures(self) -> list[tuple[str, str, str]]:
        """(URL, reason, kind) of every refused image and failed page."""
        with self._lock:
            images = self._db.execute("SELECT fetch_url, reason, kind FROM images WHERE status IN ('failed', "
                                      "'duplicate') ORDER BY seq").fetchall()
            pages = self._db.execute("SELECT fetch_url, reason FROM pages WHERE status = 'failed' "
                                     "ORDER BY seq").fetchall()
        return [(u, r or "", k or "broken") for u, r, k in images] + [(u, r or "", "page") for u, r in pages]

    def counts(self) -> dict[str, int]:
        """Pages by status and images by status, e.g. {"pages_visited": 10, "images_saved": 4, ...}."""
        with self._lock:
            pages = self._db.execute("SELECT status, COUNT(*) FROM pages GROUP BY status").fetchall()
            images = self._db.execute("SELECT status, COUNT(*) FROM images GROUP BY status").fetchall()
        found = {f"pages_{s}": n for s, n in pages} | {f"images_{s}": n for s, n in images}
        return found
