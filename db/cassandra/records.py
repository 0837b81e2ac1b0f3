"""The Cassandra store's records of a job: the image URLs it collected and its event log, one partition each."""

from __future__ import annotations

import uuid
from datetime import datetime

from db.base import Event, ImageUrl
from db.cassandra import lists
from db.cassandra.connection import CassandraConnection
from db.cassandra.rows import as_utc, to_ms, utc_now


class JobRecords(CassandraConnection):
    """The Store methods for image URLs and events; written with the job's TTL (none until it finishes)."""

    retention_seconds: int

    # Image URLs
    def add_image_urls(self, urls: list[ImageUrl]) -> None:
        by_job: dict[str, list[ImageUrl]] = {}
        for item in urls:
            by_job.setdefault(item.job_id, []).append(item)
        with self.errors():
            for job_id, items in by_job.items():
                # One worker collects a job's URLs, so reading the partition first is a sound dedupe.
                seen = {r.url for r in self.run("SELECT url FROM {ks}.image_urls WHERE job_id = ?", (job_id,))}
                ttl = lists.job_ttl(self, self.retention_seconds, job_id)
                rows = []
                for item in items:
                    if item.url in seen:
                        continue
                    seen.add(item.url)
                    rows.append((job_id, item.position, uuid.uuid1(), item.url, item.email, item.page_url,
                                 item.title, item.source, ttl))  # fmt: skip
                self.run_many(
                    "INSERT INTO {ks}.image_urls (job_id, position, seq, url, email, page_url, title, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
                    rows,
                )

    def image_urls(self, job_id: str) -> list[ImageUrl]:
        with self.errors():
            rows = self.run("SELECT * FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
            return [
                ImageUrl(job_id=r.job_id, email=r.email, url=r.url, page_url=r.page_url, title=r.title,
                         source=r.source, position=r.position)
                for r in rows
            ]  # fmt: skip

    # Event log
    def log_event(self, job_id: str, message: str, level: str = "info", at: datetime | None = None) -> None:
        at = to_ms(at or utc_now())
        with self.errors():
            ttl = lists.job_ttl(self, self.retention_seconds, job_id)
            self.run(
                "INSERT INTO {ks}.events (job_id, at, seq, level, message) VALUES (?, ?, ?, ?, ?) USING TTL ?",
                (job_id, at, uuid.uuid1(), level, message, ttl),
            )

    def events(self, job_id: str) -> list[Event]:
        with self.errors():
            rows = self.run("SELECT * FROM {ks}.events WHERE job_id = ?", (job_id,))
            return [Event(job_id=r.job_id, at=as_utc(r.at), level=r.level, message=r.message) for r in rows]
