"""The Cassandra store's methods: every job write a lightweight transaction, personal data expiring by TTL."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from db.base import (
    ACTIVE,
    CANCELLED,
    FINISHED,
    JOB_COLUMNS,
    QUEUED,
    RUNNING,
    Job,
    Store,
    StoreError,
    finish_fields,
    writable_names,
)
from db.cassandra import lists, schema
from db.cassandra.consent import ConsentRecords
from db.cassandra.crawl import CassandraCrawlState, delete_crawl
from db.cassandra.records import JobRecords
from db.cassandra.rows import as_utc, encode, row_to_job, row_values, to_ms, write_row
from db.crawl_state import CrawlState

log = logging.getLogger(__name__)

CAS_RETRIES = 5  # bounded retries when a conditional write lost to a concurrent mail/heartbeat update


class CassandraStore(ConsentRecords, JobRecords, Store):
    """A Store in a Cassandra keyspace; one driver session per process, created on first use (after any fork)."""

    def __init__(
        self,
        contact_points: list[str],
        port: int = schema.DEFAULT_PORT,
        keyspace: str = "aid",
        *,
        retention_seconds: int = 1800,
        replication: str = schema.DEFAULT_REPLICATION,
        **connection: Any,
    ) -> None:
        super().__init__(contact_points, port, keyspace, **connection)
        self.retention_seconds = int(retention_seconds)
        self.replication = schema.parse_replication(replication)

    @classmethod
    def from_url(cls, url: str, config: Mapping[str, Any] | None = None, **overrides: Any) -> CassandraStore:
        """Open ``url`` with the app's settings (``config``: CASSANDRA_*, RETENTION_MINUTES); keyword overrides win."""
        hosts, port, keyspace = schema.parse_url(url)
        options = {**schema.store_options(config or {}), **overrides}
        return cls(hosts, port, keyspace, **options)

    def init_schema(self) -> None:
        with self.errors():
            schema.create_tables(self.cluster(), self.session(), self.keyspace, self.replication, self.timeout)

    def _ttl_for(self, finished_at: datetime | None) -> int:
        return lists.ttl_left(self.retention_seconds, finished_at)

    # Jobs
    def create_job(self, job: Job) -> None:
        values = {n: getattr(job, n) for n in JOB_COLUMNS}
        ttl = self._ttl_for(to_ms(job.finished_at)) if job.status in FINISHED else 0
        with self.errors():
            if job.status in FINISHED:
                lists.add_finished(self, job.id, job.status, to_ms(job.finished_at), job.zip_name, ttl)
            else:
                lists.add_active(self, job.id)
            cql, params = write_row(job.id, values, ttl, "status = null", [])

            def ours(row: Any) -> bool:
                return row.email == job.email and row.query == job.query and as_utc(row.run_at) == to_ms(job.run_at)

            applied, _ = self.cas(cql, params, job.id, ours)
            if not applied:
                raise StoreError(f"job {job.id} already exists")
            if job.mail_pending:
                lists.add_pending_mail(self, job.id, ttl)

    def get_job(self, job_id: str) -> Job | None:
        with self.errors():
            row = self.run("SELECT * FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
        return None if row is None or row.status is None else row_to_job(row)

    def queued_jobs(self) -> list[Job]:
        with self.errors():
            rows = [row for row in lists.active_rows(self) if row.status == QUEUED]
        jobs = [row_to_job(row) for row in rows]
        return sorted(jobs, key=lambda job: (job.run_at, job.id))

    def claim_job(self, job_id: str, worker: str, now: datetime) -> bool:
        now = to_ms(now)
        with self.errors():
            row = self.run("SELECT status, attempts, started_at FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
            if row is None or row.status != QUEUED:
                return False
            attempts = row.attempts or 0
            started_at = as_utc(row.started_at) or now
            applied, _ = self.cas(
                "UPDATE {ks}.jobs SET status = ?, claimed_by = ?, heartbeat_at = ?, attempts = ?, started_at = ?"
                " WHERE id = ? IF status = ? AND attempts = ?",
                (RUNNING, worker, now, attempts + 1, started_at, job_id, QUEUED, attempts),
                job_id,
                lambda r: r.status == RUNNING and r.claimed_by == worker and as_utc(r.heartbeat_at) == now,
            )
        if applied:
            log.debug("job %s claimed by %s", job_id, worker)
        return applied

    def heartbeat(self, job_id: str, worker: str, now: datetime, **progress) -> None:
        names = writable_names(progress)
        cql = (
            "UPDATE {ks}.jobs SET heartbeat_at = ?" + "".join(f", {n} = ?" for n in names)
            + " WHERE id = ? IF status = ? AND claimed_by = ?"
        )  # fmt: skip
        params = [to_ms(now), *[encode(n, progress[n]) for n in names], job_id, RUNNING, worker]
        with self.errors():
            applied, _ = self.cas(cql, params, job_id, lambda r: r.claimed_by == worker)
        if not applied:
            log.info("heartbeat for job %s by %s not applied (no longer its claimer)", job_id, worker)

    def finish_job(self, job_id: str, worker: str, status: str, now: datetime, **fields) -> bool:
        fields = finish_fields(status, now, fields)
        finished_at = to_ms(fields["finished_at"])
        ttl = self._ttl_for(finished_at)
        with self.errors():
            for _attempt in range(CAS_RETRIES):
                row = self.run("SELECT * FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
                if row is None or row.status != RUNNING or row.claimed_by != worker:
                    return False
                values = row_values(row)
                values.update(fields, status=status)
                # The whole row is rewritten with the TTL; the mail cells are in the condition so a concurrent
                # record_mail is never overwritten with the old value.
                cql, params = write_row(
                    job_id, values, ttl, "status = ? AND claimed_by = ? AND mails_sent = ? AND mail_pending = ?",
                    [RUNNING, worker, row.mails_sent, row.mail_pending],
                )  # fmt: skip
                applied, current = self.cas(
                    cql, params, job_id,
                    lambda r: r.status == status and r.claimed_by == worker and as_utc(r.finished_at) == finished_at,
                )  # fmt: skip
                if applied:
                    lists.after_finish(self, job_id, status, finished_at, values.get("zip_name"), row.mail_pending,
                                       ttl)
                    return True
                if current is None or current.status != RUNNING or current.claimed_by != worker:
                    return False
            raise StoreError(f"job {job_id}: finish kept losing to concurrent updates")

    def release_job(self, job_id: str, worker: str, now: datetime) -> bool:
        now = to_ms(now)
        with self.errors():
            applied, _ = self.cas(
                "UPDATE {ks}.jobs SET status = ?, phase = ?, claimed_by = null, heartbeat_at = ?"
                " WHERE id = ? IF status = ? AND claimed_by = ?",
                (QUEUED, "queued", now, job_id, RUNNING, worker),
                job_id,
                lambda r: r.status == QUEUED and r.claimed_by is None and as_utc(r.heartbeat_at) == now,
            )
        return applied

    def cancel_job(self, job_id: str, now: datetime) -> bool:
        now = to_ms(now)
        ttl = self._ttl_for(now)
        with self.errors():
            for _attempt in range(CAS_RETRIES):
                row = self.run("SELECT * FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
                if row is None or row.status not in ACTIVE:
                    return False
                values = row_values(row)
                values.update(status=CANCELLED, phase=CANCELLED, finished_at=now, mail_pending=None)
                # Like finish_job: the whole row again with the retention TTL, if nobody moved or mailed it since.
                cql, params = write_row(
                    job_id, values, ttl, "status = ? AND mails_sent = ? AND mail_pending = ?",
                    [row.status, row.mails_sent, row.mail_pending],
                )  # fmt: skip
                applied, current = self.cas(
                    cql, params, job_id,
                    lambda r: r.status == CANCELLED and as_utc(r.finished_at) == now,
                )  # fmt: skip
                if applied:
                    lists.after_finish(self, job_id, CANCELLED, now, values.get("zip_name"), None, ttl)
                    lists.remove(self, job_id, "jobs_pending_mail")
                    return True
                if current is None or current.status not in ACTIVE:
                    return False
            raise StoreError(f"job {job_id}: cancel kept losing to concurrent updates")

    def requeue_stale(self, cutoff: datetime) -> list[str]:
        cutoff = to_ms(cutoff)
        requeued = []
        with self.errors():
            for row in lists.active_rows(self):
                if row.status != RUNNING or row.heartbeat_at is None or as_utc(row.heartbeat_at) >= cutoff:
                    continue

                def moved(r: Any, claimed: str | None = row.claimed_by) -> bool:
                    return r.status == QUEUED or r.claimed_by != claimed

                applied, _ = self.cas(
                    "UPDATE {ks}.jobs SET status = ?, phase = ?, claimed_by = null"
                    " WHERE id = ? IF status = ? AND claimed_by = ? AND heartbeat_at < ?",
                    (QUEUED, "queued", row.id, RUNNING, row.claimed_by, cutoff),
                    row.id,
                    moved,
                )
                if applied:
                    requeued.append(row.id)
        if requeued:
            log.info("requeued stale jobs %s", requeued)
        return requeued

    def finished_before(self, cutoff: datetime) -> list[Job]:
        cutoff = to_ms(cutoff)
        with self.errors():
            entries = [
                e for e in self.run("SELECT id, status, finished_at, zip_name FROM {ks}.jobs_finished WHERE shard = 0")
                if e.finished_at is not None and as_utc(e.finished_at) < cutoff
            ]  # fmt: skip
            rows = self.fetch_rows([e.id for e in entries])
        jobs = []
        for entry in entries:
            row = rows.get(entry.id)
            if row is not None:
                if row.status in FINISHED:
                    jobs.append(row_to_job(row))
                continue
            # The row expired by TTL (personal data gone): what is left is what the cleanup needs.
            finished_at = as_utc(entry.finished_at)
            jobs.append(
                Job(id=entry.id, query="", email="", count=0, run_at=finished_at, status=entry.status,
                    phase=entry.status, finished_at=finished_at, zip_name=entry.zip_name)
            )  # fmt: skip
        return sorted(jobs, key=lambda job: (job.finished_at, job.id))

    def purge_job(self, job_id: str) -> None:
        with self.errors():
            self.cas("DELETE FROM {ks}.jobs WHERE id = ? IF EXISTS", (job_id,), job_id, lambda r: False)
            self.run("DELETE FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
            self.run("DELETE FROM {ks}.events WHERE job_id = ?", (job_id,))
            lists.remove(self, job_id, "jobs_active", "jobs_finished", "jobs_pending_mail")
            delete_crawl(self, job_id)

    # Crawl state
    def crawl_state(self, job_id: str) -> CrawlState:
        return CassandraCrawlState(self, job_id)

    def delete_crawl_state(self, job_id: str) -> None:
        with self.errors():
            delete_crawl(self, job_id)

    # Mail bookkeeping
    def record_mail(self, job_id: str, kind: str, sent: bool) -> None:
        with self.errors():
            for _attempt in range(CAS_RETRIES):
                row = self.run(
                    "SELECT status, finished_at, mails_sent, mail_pending FROM {ks}.jobs WHERE id = ?", (job_id,)
                ).one()
                if row is None or row.status is None:
                    return
                sent_kinds = list(row.mails_sent or [])
                if sent and kind not in sent_kinds:
                    sent_kinds.append(kind)
                pending = None if sent else kind
                ttl = self._ttl_for(as_utc(row.finished_at)) if row.status in FINISHED else 0
                if pending:
                    lists.add_pending_mail(self, job_id, ttl)

                def written(r: Any, want: list[str] = sent_kinds, wait: str | None = pending) -> bool:
                    return (r.mails_sent or []) == want and r.mail_pending == wait

                # The status is in the condition so the TTL chosen above still matches the job's state.
                applied, _ = self.cas(
                    "UPDATE {ks}.jobs USING TTL ? SET mails_sent = ?, mail_pending = ?"
                    " WHERE id = ? IF status = ? AND mails_sent = ? AND mail_pending = ?",
                    (ttl, sent_kinds or None, pending, job_id, row.status, row.mails_sent, row.mail_pending),
                    job_id,
                    written,
                )
                if applied:
                    if not pending:
                        lists.remove(self, job_id, "jobs_pending_mail")
                    return
            raise StoreError(f"job {job_id}: record_mail kept losing to concurrent updates")

    def jobs_with_pending_mail(self) -> list[Job]:
        with self.errors():
            ids = [e.id for e in self.run("SELECT id FROM {ks}.jobs_pending_mail WHERE shard = 0")]
            rows = self.fetch_rows(ids)
        return [row_to_job(row) for row in rows.values() if row.mail_pending]
