"""A crawl job's state in Cassandra: a frontier read forward from a cursor, never a queue whose rows are deleted.

Tables (created by ``init_schema``; see docs/architecture.md for why the frontier is modelled so):

* ``crawl_pages ((job_id, bucket), seq)`` and ``crawl_images ((job_id, bucket), seq)``: one row per page or image
  URL, in partitions of ``BUCKET`` sequence numbers each (``bucket = seq // BUCKET``), so no partition grows with
  the crawl. A row's ``status`` is updated in place (``queued`` -> ``visited``/``failed``, ``pending`` ->
  ``saved``/``failed``/``duplicate``); rows are never deleted while the job lives, so reading the frontier forward
  (``seq > cursor``, bucket after bucket) never scans a tombstone. The lowest sequence number that may still be
  queued (pending) is remembered, so each read starts there instead of at the first page.
* ``crawl_urls ((job_id, kind, shard), url)``: "seen before?" by canonical URL (``shard`` is a CRC32 of the URL
  modulo ``SHARDS``); a new URL's row and its entry are written in one logged batch, so after a kill a URL is
  either fully known or not at all.
* ``crawl_meta ((job_id), key)``: the crawl's values (its start URL) and the highest sequence number reserved:
  numbers are reserved ``SEQ_BLOCK`` at a time before use, so a resumed crawl continues above every number used.

One job has one writer (the worker that claimed it), so the seen-check, the counts (kept in memory, read from the
rows when the state is opened) and the sequence are sound without lightweight transactions. ``delete`` (from
``purge_job``) drops every partition of the job.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from cassandra.concurrent import execute_concurrent
from cassandra.query import BatchStatement, BatchType

from db.cassandra.connection import CONCURRENCY, CassandraConnection
from db.crawl_state import CrawlState, ImageFind, PageLink, PendingImage, QueuedPage, Refusal, SavedImage

BUCKET = 1000  # sequence numbers per partition of crawl_pages and crawl_images
SHARDS = 16  # partitions of crawl_urls per job and kind
SEQ_BLOCK = 1000  # sequence numbers reserved at a time
SEQ_KEY = "~seq-reserved"  # crawl_meta key of the highest sequence number reserved

TABLES = (
    """CREATE TABLE IF NOT EXISTS {ks}.crawl_meta (
        job_id text, key text, value text, PRIMARY KEY ((job_id), key)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.crawl_pages (
        job_id text, bucket int, seq bigint, url text, fetch_url text, depth int, status text, reason text,
        PRIMARY KEY ((job_id, bucket), seq)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.crawl_images (
        job_id text, bucket int, seq bigint, url text, fetch_url text, status text, info text, reason text,
        kind text, file text, width int, height int, size bigint, sha256 text, phash text,
        PRIMARY KEY ((job_id, bucket), seq)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.crawl_urls (
        job_id text, kind text, shard int, url text, seq bigint, PRIMARY KEY ((job_id, kind, shard), url)
    ) WITH gc_grace_seconds = 86400""",
)
_PAGE, _IMAGE = "page", "image"
_TABLE = {_PAGE: "crawl_pages", _IMAGE: "crawl_images"}
_IMAGE_COLUMNS = "seq, url, fetch_url, status, info, reason, kind, file, width, height, size, sha256, phash"


def _shard(url: str) -> int:
    return zlib.crc32(url.encode("utf-8")) % SHARDS


def _saved(row: Any) -> SavedImage:
    return SavedImage(row.url, row.seq, row.file, row.width, row.height, row.size, row.sha256, row.phash,
                      json.loads(row.info))


def reserved_seq(conn: CassandraConnection, job_id: str) -> int:
    row = conn.run("SELECT value FROM {ks}.crawl_meta WHERE job_id = ? AND key = ?", (job_id, SEQ_KEY)).one()
    return int(row.value) if row is not None else 0


def delete_crawl(conn: CassandraConnection, job_id: str) -> None:
    """Drop every partition of the job's crawl state (partition deletes: partitions nobody reads again)."""
    buckets = range(reserved_seq(conn, job_id) // BUCKET + 1)
    for table in _TABLE.values():
        conn.run_many(f"DELETE FROM {{ks}}.{table} WHERE job_id = ? AND bucket = ?", [(job_id, b) for b in buckets])
    conn.run_many("DELETE FROM {ks}.crawl_urls WHERE job_id = ? AND kind = ? AND shard = ?",
                  [(job_id, kind, shard) for kind in _TABLE for shard in range(SHARDS)])
    conn.run("DELETE FROM {ks}.crawl_meta WHERE job_id = ?", (job_id,))


class CassandraCrawlState(CrawlState):
    """The crawl state of one job, through the store's session (which is thread-safe)."""

    def __init__(self, conn: CassandraConnection, job_id: str) -> None:
        self.conn, self.job_id = conn, job_id
        self._lock = threading.RLock()
        self._floor = {_PAGE: 0, _IMAGE: 0}  # no row at or below is still queued (pending)
        with conn.errors():
            self._reserved = reserved_seq(conn, job_id)
            self._seq = self._reserved  # a resumed crawl continues above every number it may have used
            self._counts: Counter[str] = Counter()
            for kind in _TABLE:
                for row in self._scan(kind, "seq, status", 0):
                    self._counts[f"{kind}s_{row.status}"] += 1

    def close(self) -> None:
        """Nothing to release: the session is the store's."""

    # -- plumbing -------------------------------------------------------------------------------------------------

    def _scan(self, kind: str, columns: str, after: int) -> Iterator[Any]:
        """The rows of ``kind`` with a sequence number above ``after``, in order, bucket after bucket."""
        for bucket in range((after + 1) // BUCKET, self._reserved // BUCKET + 1):
            yield from self.conn.run(f"SELECT {columns} FROM {{ks}}.{_TABLE[kind]} WHERE job_id = ? AND bucket = ?"
                                     " AND seq > ?", (self.job_id, bucket, after))

    def _next_seq(self) -> int:
        if self._seq >= self._reserved:
            self._reserved = self._seq + SEQ_BLOCK  # reserved before use: durable before any row carries it
            self.conn.run("INSERT INTO {ks}.crawl_meta (job_id, key, value) VALUES (?, ?, ?)",
                          (self.job_id, SEQ_KEY, str(self._reserved)))
        self._seq += 1
        return self._seq

    def _seqs(self, kind: str, urls: list[str]) -> dict[str, int]:
        """The sequence numbers of the URLs of ``kind`` seen before."""
        results = self.conn.run_many("SELECT url, seq FROM {ks}.crawl_urls WHERE job_id = ? AND kind = ? AND shard = ?"
                                     " AND url = ?", [(self.job_id, kind, _shard(u), u) for u in urls])
        return {row.url: row.seq for result in results for row in result}

    def _add(self, kind: str, items: list[tuple[str, str, Any]]) -> int:
        """Write the rows of the URLs not seen before, each with its crawl_urls entry in one logged batch."""
        fresh: dict[str, tuple[str, str, Any]] = {}
        for item in items:
            fresh.setdefault(item[0], item)
        for url in self._seqs(kind, list(fresh)):
            del fresh[url]
        if not fresh:
            return 0
        if kind == _PAGE:
            row_cql = ("INSERT INTO {ks}.crawl_pages (job_id, bucket, seq, url, fetch_url, depth, status)"
                       " VALUES (?, ?, ?, ?, ?, ?, 'queued')")
        else:
            row_cql = ("INSERT INTO {ks}.crawl_images (job_id, bucket, seq, url, fetch_url, info, status)"
                       " VALUES (?, ?, ?, ?, ?, ?, 'pending')")
        row_statement = self.conn.prepare(row_cql)
        seen_statement = self.conn.prepare("INSERT INTO {ks}.crawl_urls (job_id, kind, shard, url, seq)"
                                           " VALUES (?, ?, ?, ?, ?)")
        batches = []
        for url, fetch_url, extra in fresh.values():
            seq = self._next_seq()
            batch = BatchStatement(batch_type=BatchType.LOGGED)
            batch.add(row_statement, (self.job_id, seq // BUCKET, seq, url, fetch_url,
                                      extra if kind == _PAGE else json.dumps(extra)))
            batch.add(seen_statement, (self.job_id, kind, _shard(url), url, seq))
            batches.append((batch, None))
        for ok, result in execute_concurrent(self.conn.session(), batches, concurrency=CONCURRENCY):
            if not ok:
                raise result
        self._counts[f"{kind}s_{'queued' if kind == _PAGE else 'pending'}"] += len(fresh)
        return len(fresh)

    def _set(self, kind: str, seq: int | None, status: str, cells: dict[str, Any]) -> None:
        """Update the row ``seq`` of ``kind`` in place: its status and ``cells``."""
        if seq is None:
            return
        table = _TABLE[kind]
        key = (self.job_id, seq // BUCKET, seq)
        row = self.conn.run(f"SELECT status FROM {{ks}}.{table} WHERE job_id = ? AND bucket = ? AND seq = ?", key).one()
        if row is None:
            return
        names = sorted(cells)
        self.conn.run(f"UPDATE {{ks}}.{table} SET status = ?" + "".join(f", {n} = ?" for n in names)
                      + " WHERE job_id = ? AND bucket = ? AND seq = ?", (status, *(cells[n] for n in names), *key))
        self._counts[f"{kind}s_{row.status}"] -= 1
        self._counts[f"{kind}s_{status}"] += 1

    def _next(self, kind: str, want: str, after: int, limit: int) -> list[Any]:
        """The next ``limit`` rows of ``kind`` in status ``want`` above ``after``, moving the floor past the rows
        that are no longer ``want`` (statuses never go back)."""
        start = max(after, self._floor[kind])
        moves = start == self._floor[kind]
        found = []
        for row in self._scan(kind, "*", start):
            if row.status == want:
                found.append(row)
                moves = False
                if len(found) >= limit:
                    break
            elif moves:
                self._floor[kind] = row.seq
        return found

    # -- meta -----------------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.conn.errors():
            row = self.conn.run("SELECT value FROM {ks}.crawl_meta WHERE job_id = ? AND key = ?",
                                (self.job_id, key)).one()
        return row.value if row is not None else None

    def set_meta(self, key: str, value: str) -> None:
        with self.conn.errors():
            self.conn.run("INSERT INTO {ks}.crawl_meta (job_id, key, value) VALUES (?, ?, ?)",
                          (self.job_id, key, value))

    # -- pages ----------------------------------------------------------------------------------------------------

    def add_pages(self, pages: Iterable[PageLink]) -> int:
        with self._lock, self.conn.errors():
            return self._add(_PAGE, list(pages))

    def queued(self, after: int, limit: int) -> list[QueuedPage]:
        with self._lock, self.conn.errors():
            rows = self._next(_PAGE, "queued", after, limit)
        return [QueuedPage(r.url, r.fetch_url, r.depth, r.seq) for r in rows]

    def page_visited(self, url: str, links: Iterable[PageLink], images: Iterable[ImageFind]) -> tuple[int, int]:
        with self._lock, self.conn.errors():
            # What the page yielded first, the page's own status last: a kill in between opens the page again
            # (its finds already written are seen then), never loses them.
            new_pages = self._add(_PAGE, list(links))
            new_images = self._add(_IMAGE, list(images))
            self._set(_PAGE, self._seqs(_PAGE, [url]).get(url), "visited", {})
        return new_pages, new_images

    def page_failed(self, url: str, reason: str) -> None:
        with self._lock, self.conn.errors():
            self._set(_PAGE, self._seqs(_PAGE, [url]).get(url), "failed", {"reason": reason})

    # -- images ---------------------------------------------------------------------------------------------------

    def pending(self, after: int, limit: int) -> list[PendingImage]:
        with self._lock, self.conn.errors():
            rows = self._next(_IMAGE, "pending", after, limit)
        return [PendingImage(r.url, r.fetch_url, r.seq, json.loads(r.info)) for r in rows]

    def images_done(self, saved: Iterable[SavedImage], refused: Iterable[Refusal]) -> None:
        refused = list(refused)
        with self._lock, self.conn.errors():
            for image in saved:
                self._set(_IMAGE, image.seq, "saved", {
                    "file": image.file, "width": image.width, "height": image.height, "size": image.bytes,
                    "sha256": image.sha256, "phash": image.phash, "info": json.dumps(image.info), "reason": None,
                    "kind": None})
            seqs = self._seqs(_IMAGE, [url for url, *_ in refused])
            for url, status, kind, reason in refused:
                self._set(_IMAGE, seqs.get(url), status, {"kind": kind, "reason": reason})

    def saved(self) -> list[SavedImage]:
        with self._lock, self.conn.errors():
            return [_saved(row) for row in self._scan(_IMAGE, _IMAGE_COLUMNS, 0) if row.status == "saved"]

    def saved_image(self, seq: int) -> SavedImage | None:
        with self.conn.errors():
            row = self.conn.run(f"SELECT {_IMAGE_COLUMNS} FROM {{ks}}.crawl_images WHERE job_id = ? AND bucket = ?"
                                " AND seq = ?", (self.job_id, seq // BUCKET, seq)).one()
        return _saved(row) if row is not None and row.status == "saved" else None

    def kept_hashes(self) -> Iterator[tuple[int, str, str, str, int]]:
        for image in self.saved():
            yield image.seq, image.url, image.sha256, image.phash, image.width * image.height

    def failures(self) -> list[tuple[str, str, str]]:
        with self._lock, self.conn.errors():
            images = [(r.fetch_url, r.reason or "", r.kind or "broken")
                      for r in self._scan(_IMAGE, _IMAGE_COLUMNS, 0) if r.status in ("failed", "duplicate")]
            pages = [(r.fetch_url, r.reason or "", "page")
                     for r in self._scan(_PAGE, "seq, fetch_url, status, reason", 0) if r.status == "failed"]
        return images + pages

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {name: count for name, count in self._counts.items() if count > 0}
