"""The Cassandra store: ``cassandra://host1,host2:9042/keyspace`` (or an Astra secure connect bundle).

Tables (all fixed, created by ``init_schema``; statements are prepared once per session):

* ``jobs (id)``: one row per job. Every write to it is a lightweight transaction (LWT): created with
  ``IF status = null``, claimed with ``IF status = 'queued'``, finished with ``IF status = 'running' AND
  claimed_by = ?``, requeued with ``IF ... heartbeat_at < ?``; heartbeats and mail bookkeeping are conditional too,
  so plain writes and Paxos never touch the same cells. Rows are written with UPDATE (no row marker), so a row
  disappears entirely once its cells expire.
* ``jobs_active ((shard), id)``: queued or running jobs, for ``queued_jobs`` and ``requeue_stale``.
* ``jobs_finished ((shard), id)``: done or failed jobs with ``finished_at`` and ``zip_name``, for retention.
* ``jobs_pending_mail ((shard), id)``: jobs whose last email waits for a retry.
* ``image_urls ((job_id), position, seq)`` and ``events ((job_id), at, seq)``: one partition per job.

The three lists are single partitions (``shard = 0``): the app holds few jobs at a time (queued, running and the
retention window), so one partition per list is small. They are indexes, not the truth: readers fetch the job rows
and keep only those in the right state. An entry is written before the LWT that needs it, so a crash can leave a
dangling entry but never hide a job.

Retention by TTL: nothing expires while a job is queued or running (a job for next week waits). ``finish_job``
rewrites the whole job row, its image URLs and its events ``USING TTL retention_seconds``, so the personal data (email,
query, URLs, log) disappear that long after the job ends; later writes (mail bookkeeping, events) use the remaining
TTL. The ``jobs_finished`` entry (id, zip name, times; nothing personal) lives a day longer, so the periodic cleanup
still finds the job's zip after its row has expired; ``purge_job`` deletes everything explicitly.

A Paxos write that times out (``WriteTimeout`` with write type CAS) has an unknown outcome: it is resolved by reading
the row back at LOCAL_SERIAL consistency, never by guessing. Driver errors meaning "the cluster did not answer"
become ``StoreUnavailable``; anything else from the driver becomes ``StoreError``.

Timestamps are Cassandra ``timestamp`` values: millisecond precision, returned as timezone-aware UTC datetimes.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
    WriteType,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.protocol import ErrorMessage
from cassandra.query import PreparedStatement

from db.base import DONE, FAILED, FINISHED, QUEUED, RUNNING, Event, ImageUrl, Job, Store, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
DEFAULT_PORT = 9042
FINISHED_INDEX_GRACE = 86400  # the jobs_finished entry outlives the job row by a day: cleanup still finds the zip
DANGLING_AFTER = timedelta(hours=1)  # an index entry without a job row this old is the trace of a failed create
CAS_RETRIES = 5  # bounded retries when a conditional write lost to a concurrent mail/heartbeat update
CAS_WRITE_UNKNOWN = 0x1700  # protocol v5 error code for "Paxos outcome unknown"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_REPLICATION_VALUE = re.compile(r"^[A-Za-z0-9_.]+$")

_JOB_COLUMNS = [f.name for f in fields(Job)]
_DATETIME_FIELDS = {"run_at", "created_at", "started_at", "finished_at", "heartbeat_at"}
# Progress and result fields a worker may write (the same list as the SQLite store).
_WRITABLE = {"phase", "candidates", "delivered", "zip_name", "zip_bytes", "error", "note", "started_at", "finished_at"}

_TABLES = (
    """CREATE TABLE IF NOT EXISTS {ks}.jobs (
        id text PRIMARY KEY, query text, email text, count int, run_at timestamp, timezone text, options text,
        status text, phase text, created_at timestamp, started_at timestamp, finished_at timestamp,
        heartbeat_at timestamp, claimed_by text, attempts int, candidates int, delivered int, zip_name text,
        zip_bytes bigint, error text, note text, mails_sent frozen<list<text>>, mail_pending text
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.jobs_active (
        shard int, id text, added_at timestamp, PRIMARY KEY ((shard), id)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.jobs_finished (
        shard int, id text, status text, finished_at timestamp, zip_name text, PRIMARY KEY ((shard), id)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.jobs_pending_mail (
        shard int, id text, PRIMARY KEY ((shard), id)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.image_urls (
        job_id text, position int, seq timeuuid, url text, email text, page_url text, title text, source text,
        PRIMARY KEY ((job_id), position, seq)
    ) WITH gc_grace_seconds = 86400""",
    """CREATE TABLE IF NOT EXISTS {ks}.events (
        job_id text, at timestamp, seq timeuuid, level text, message text, PRIMARY KEY ((job_id), at, seq)
    ) WITH gc_grace_seconds = 86400""",
)


def _ms(value: datetime | None) -> datetime | None:
    """Return ``value`` as UTC, cut to the millisecond Cassandra keeps."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _encode(name: str, value: Any) -> Any:
    if name in _DATETIME_FIELDS:
        return _ms(value)
    if name == "options":
        return json.dumps(value or {})
    if name == "mails_sent":
        return list(value or []) or None  # an empty frozen list reads back as null: store null so conditions match
    return value


def _row_to_job(row: Any) -> Job:
    values = {}
    for name in _JOB_COLUMNS:
        value = getattr(row, name)
        if name in _DATETIME_FIELDS:
            value = _utc(value)
        elif name == "options":
            value = json.loads(value) if value else {}
        elif name == "mails_sent":
            value = list(value or [])
        elif name in {"count", "attempts", "candidates", "delivered", "zip_bytes"}:
            value = value or 0
        values[name] = value
    return Job(**values)


def parse_replication(text: str) -> str:
    """Return a CQL replication map from a Python-literal dict, refusing anything but plain names and numbers."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"CASSANDRA_REPLICATION is not a map: {text!r}") from exc
    if not isinstance(value, dict) or "class" not in value:
        raise ValueError(f"CASSANDRA_REPLICATION needs a 'class': {text!r}")
    parts = []
    for key, item in value.items():
        key, item = str(key), str(item)
        if not (_REPLICATION_VALUE.match(key) and _REPLICATION_VALUE.match(item)):
            raise ValueError(f"CASSANDRA_REPLICATION has an unexpected entry {key!r}: {item!r}")
        parts.append(f"'{key}': '{item}'")
    return "{" + ", ".join(parts) + "}"


def parse_url(url: str) -> tuple[list[str], int, str]:
    """Split ``cassandra://host1,host2:9042/keyspace`` into contact points, port and keyspace."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "cassandra" or not sep:
        raise ValueError(f"not a cassandra:// URL: {url!r}")
    netloc, _, path = rest.partition("/")
    keyspace = unquote(path.strip("/")) or "aid"
    if not _NAME.match(keyspace):
        raise ValueError(f"keyspace name must be letters, digits and _: {keyspace!r}")
    netloc = netloc.rpartition("@")[2]  # credentials belong in CASSANDRA_USERNAME/PASSWORD, not the URL
    hosts, port = [], DEFAULT_PORT
    for item in filter(None, netloc.split(",")):
        host, colon, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if colon:
            port = int(port_text)
        hosts.append(host)
    return hosts, port, keyspace


class CassandraStore(Store):
    """A Store in a Cassandra keyspace; one driver session per process, created on first use (after any fork)."""

    def __init__(
        self,
        contact_points: list[str],
        port: int = DEFAULT_PORT,
        keyspace: str = "aid",
        *,
        retention_seconds: int = 1800,
        username: str | None = None,
        password: str | None = None,
        secure_bundle: str | None = None,
        astra_token: str | None = None,
        replication: str = DEFAULT_REPLICATION,
        local_dc: str = "datacenter1",
        timeout: float = 10.0,
    ) -> None:
        if not _NAME.match(keyspace):
            raise ValueError(f"keyspace name must be letters, digits and _: {keyspace!r}")
        if not contact_points and not secure_bundle:
            raise ValueError("a cassandra:// URL needs at least one host (or CASSANDRA_SECURE_BUNDLE)")
        self.contact_points = contact_points
        self.port = port
        self.keyspace = keyspace
        self.retention_seconds = int(retention_seconds)
        self.replication = parse_replication(replication)
        self.local_dc = local_dc
        self.timeout = timeout
        self._username, self._password = username, password
        self._secure_bundle, self._astra_token = secure_bundle, astra_token
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._cluster: Cluster | None = None
        self._session_obj: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}

    @classmethod
    def from_url(cls, url: str, config: Mapping[str, Any] | None = None, **overrides: Any) -> CassandraStore:
        """Open ``url`` with the app's settings (``config``: CASSANDRA_*, RETENTION_MINUTES); keyword overrides win."""
        config = config or {}
        hosts, port, keyspace = parse_url(url)
        options: dict[str, Any] = {
            "retention_seconds": int(config.get("RETENTION_MINUTES") or 30) * 60,
            "username": config.get("CASSANDRA_USERNAME"),
            "password": config.get("CASSANDRA_PASSWORD"),
            "secure_bundle": config.get("CASSANDRA_SECURE_BUNDLE"),
            "astra_token": config.get("CASSANDRA_ASTRA_TOKEN"),
            "replication": config.get("CASSANDRA_REPLICATION") or DEFAULT_REPLICATION,
            "local_dc": config.get("CASSANDRA_LOCAL_DC") or "datacenter1",
            "timeout": float(config.get("CASSANDRA_TIMEOUT_SECONDS") or 10.0),
        }
        options.update(overrides)
        return cls(hosts, port, keyspace, **options)

    # Connection
    def _new_cluster(self) -> Cluster:
        local_dc: str | None = self.local_dc
        if self._secure_bundle and local_dc == "datacenter1":
            local_dc = None  # Astra names its DC after the region: take the DC of the bundle's endpoint
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=local_dc)),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,  # reads see committed Paxos writes at any RF
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=self.timeout,
        )
        common: dict[str, Any] = {
            "execution_profiles": {EXEC_PROFILE_DEFAULT: profile},
            "connect_timeout": min(self.timeout, 10.0),
            # Retry a lost node every 0.5 s growing to 5 s, so the app recovers soon after the cluster returns.
            "reconnection_policy": ExponentialReconnectionPolicy(0.5, 5.0),
        }
        if self._secure_bundle:
            # Astra: no contact points or SSL options (the bundle has them); the protocol version is negotiated,
            # since the service's supported versions are not ours to pin. Not testable offline.
            return Cluster(
                cloud={"secure_connect_bundle": self._secure_bundle},
                auth_provider=PlainTextAuthProvider("token", self._astra_token or ""),
                **common,
            )
        auth = PlainTextAuthProvider(self._username, self._password or "") if self._username else None
        # Protocol v5 explicitly: Cassandra 4+ speaks it, and a pinned version fails loudly instead of downgrading.
        return Cluster(self.contact_points, port=self.port, auth_provider=auth, protocol_version=5, **common)

    def _session(self) -> Session:
        pid = os.getpid()
        if self._pid == pid and self._session_obj is not None:
            return self._session_obj
        with self._lock:
            if self._pid != pid:  # a fork: the parent's connections and threads are not ours to use or close
                self._cluster, self._session_obj, self._prepared = None, None, {}
                self._pid = pid
            if self._session_obj is None:
                cluster = self._new_cluster()
                try:
                    session = cluster.connect()
                except BaseException:
                    cluster.shutdown()
                    raise
                self._cluster, self._session_obj, self._prepared = cluster, session, {}
            return self._session_obj

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout, WriteTimeout) as exc:
            raise StoreUnavailable(f"Cassandra did not answer: {exc}") from exc
        except DriverException as exc:
            raise StoreError(f"Cassandra: {exc}") from exc
        except ErrorMessage as exc:
            raise StoreError(f"Cassandra: {exc}") from exc

    def _prepare(self, cql: str) -> PreparedStatement:
        session = self._session()
        statement = self._prepared.get(cql)
        if statement is None:
            statement = session.prepare(cql.format(ks=self.keyspace))
            self._prepared[cql] = statement
        return statement

    def _run(self, cql: str, params: tuple | list = ()) -> Any:
        return self._session().execute(self._prepare(cql), params)

    def _run_many(self, cql: str, rows: list[tuple]) -> None:
        if not rows:
            return
        results = execute_concurrent_with_args(self._session(), self._prepare(cql), rows, concurrency=32)
        for ok, result in results:
            if not ok:
                raise result

    def _cas(self, cql: str, params: tuple | list, job_id: str, resolve: Callable[[Any], bool]) -> tuple[bool, Any]:
        """Run a conditional write; return (applied, current row). An unknown outcome is read back at SERIAL."""
        try:
            result = self._run(cql, params)
            return result.was_applied, result.one()
        except WriteTimeout as exc:
            if exc.write_type != WriteType.CAS:
                raise
            cause = exc
        except ErrorMessage as exc:
            if getattr(exc, "code", None) != CAS_WRITE_UNKNOWN:
                raise
            cause = exc
        log.warning("Paxos write on job %s timed out (%s); reading back at LOCAL_SERIAL", job_id, cause)
        row = self._read_serial(job_id)
        return (row is not None and resolve(row)), row

    def _read_serial(self, job_id: str) -> Any:
        statement = self._prepare("SELECT * FROM {ks}.jobs WHERE id = ?")
        bound = statement.bind((job_id,))
        bound.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return self._session().execute(bound).one()

    # Schema
    def init_schema(self) -> None:
        with self._errors():
            session = self._session()
            if self._cluster is not None and self.keyspace not in self._cluster.metadata.keyspaces:
                # Astra and managed clusters create keyspaces elsewhere; then the keyspace already exists here.
                session.execute(
                    f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {self.replication}",
                    timeout=max(self.timeout, 60.0),
                )
            for ddl in _TABLES:
                session.execute(ddl.format(ks=self.keyspace), timeout=max(self.timeout, 60.0))

    def close(self) -> None:
        with self._lock:
            if self._cluster is not None and self._pid == os.getpid():
                self._cluster.shutdown()
            self._cluster, self._session_obj, self._prepared, self._pid = None, None, {}, None

    # Helpers
    def _ttl_for(self, finished_at: datetime | None, now: datetime | None = None) -> int:
        """Return the TTL for a job's personal data: none while it is not finished, else what is left of retention."""
        if finished_at is None:
            return 0
        left = self.retention_seconds - int(((now or _now()) - finished_at).total_seconds())
        return max(left, 1)

    def _fetch_rows(self, job_ids: list[str]) -> dict[str, Any]:
        if not job_ids:
            return {}
        results = execute_concurrent_with_args(
            self._session(), self._prepare("SELECT * FROM {ks}.jobs WHERE id = ?"), [(i,) for i in job_ids],
            concurrency=32,
        )  # fmt: skip
        rows = {}
        for job_id, (ok, result) in zip(job_ids, results, strict=True):
            if not ok:
                raise result
            row = result.one()
            if row is not None and row.status is not None:
                rows[job_id] = row
        return rows

    def _write_row(self, job_id: str, values: dict[str, Any], ttl: int, condition: str, cond_params: list) -> tuple:
        names = [n for n in _JOB_COLUMNS if n != "id"]
        cql = (
            "UPDATE {ks}.jobs USING TTL ? SET " + ", ".join(f"{n} = ?" for n in names)
            + f" WHERE id = ? IF {condition}"
        )  # fmt: skip
        params = [ttl, *[_encode(n, values.get(n)) for n in names], job_id, *cond_params]
        return cql, params

    # Jobs
    def create_job(self, job: Job) -> None:
        values = {n: getattr(job, n) for n in _JOB_COLUMNS}
        ttl = self._ttl_for(_ms(job.finished_at)) if job.status in FINISHED else 0
        with self._errors():
            if job.status in FINISHED:
                self._index_finished(job.id, job.status, _ms(job.finished_at), job.zip_name, ttl)
            else:
                self._run("INSERT INTO {ks}.jobs_active (shard, id, added_at) VALUES (0, ?, ?)", (job.id, _now()))
            cql, params = self._write_row(job.id, values, ttl, "status = null", [])

            def ours(row: Any) -> bool:
                return row.email == job.email and row.query == job.query and _utc(row.run_at) == _ms(job.run_at)

            applied, _ = self._cas(cql, params, job.id, ours)
            if not applied:
                raise StoreError(f"job {job.id} already exists")
            if job.mail_pending:
                self._run("INSERT INTO {ks}.jobs_pending_mail (shard, id) VALUES (0, ?) USING TTL ?", (job.id, ttl))

    def get_job(self, job_id: str) -> Job | None:
        with self._errors():
            row = self._run("SELECT * FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
        return None if row is None or row.status is None else _row_to_job(row)

    def _active_rows(self) -> list[Any]:
        entries = list(self._run("SELECT id, added_at FROM {ks}.jobs_active WHERE shard = 0"))
        rows = self._fetch_rows([e.id for e in entries])
        old = _now() - DANGLING_AFTER
        for entry in entries:
            row = rows.get(entry.id)
            # Finished is final, so removing its active entry cannot race; a missing row is only removed when old
            # (a create in flight writes the entry first).
            if (row is not None and row.status in FINISHED) or (
                row is None and entry.added_at is not None and _utc(entry.added_at) < old
            ):
                self._run("DELETE FROM {ks}.jobs_active WHERE shard = 0 AND id = ?", (entry.id,))
        return [row for row in rows.values() if row.status not in FINISHED]

    def queued_jobs(self) -> list[Job]:
        with self._errors():
            rows = [row for row in self._active_rows() if row.status == QUEUED]
        jobs = [_row_to_job(row) for row in rows]
        return sorted(jobs, key=lambda job: (job.run_at, job.id))

    def claim_job(self, job_id: str, worker: str, now: datetime) -> bool:
        now = _ms(now)
        with self._errors():
            row = self._run("SELECT status, attempts, started_at FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
            if row is None or row.status != QUEUED:
                return False
            attempts = row.attempts or 0
            started_at = _utc(row.started_at) or now
            applied, _ = self._cas(
                "UPDATE {ks}.jobs SET status = ?, claimed_by = ?, heartbeat_at = ?, attempts = ?, started_at = ?"
                " WHERE id = ? IF status = ? AND attempts = ?",
                (RUNNING, worker, now, attempts + 1, started_at, job_id, QUEUED, attempts),
                job_id,
                lambda r: r.status == RUNNING and r.claimed_by == worker and _utc(r.heartbeat_at) == now,
            )
        if applied:
            log.debug("job %s claimed by %s", job_id, worker)
        return applied

    def heartbeat(self, job_id: str, worker: str, now: datetime, **progress) -> None:
        names = self._check_fields(progress)
        cql = (
            "UPDATE {ks}.jobs SET heartbeat_at = ?" + "".join(f", {n} = ?" for n in names)
            + " WHERE id = ? IF status = ? AND claimed_by = ?"
        )  # fmt: skip
        params = [_ms(now), *[_encode(n, progress[n]) for n in names], job_id, RUNNING, worker]
        with self._errors():
            applied, _ = self._cas(cql, params, job_id, lambda r: r.claimed_by == worker)
        if not applied:
            log.info("heartbeat for job %s by %s not applied (no longer its claimer)", job_id, worker)

    def finish_job(self, job_id: str, worker: str, status: str, now: datetime, **fields) -> bool:
        if status not in (DONE, FAILED):
            raise ValueError(f"a job finishes as done or failed, not {status!r}")
        fields.setdefault("finished_at", now)
        fields.setdefault("phase", status)
        self._check_fields(fields)
        finished_at = _ms(fields["finished_at"])
        ttl = self._ttl_for(finished_at)
        with self._errors():
            for _attempt in range(CAS_RETRIES):
                row = self._run("SELECT * FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
                if row is None or row.status != RUNNING or row.claimed_by != worker:
                    return False
                values = {n: getattr(row, n) for n in _JOB_COLUMNS}
                for name in _DATETIME_FIELDS:
                    values[name] = _utc(values[name])
                values["options"] = json.loads(row.options) if row.options else {}
                values.update(fields, status=status)
                # The whole row is rewritten with the TTL; the mail cells are in the condition so a concurrent
                # record_mail is never overwritten with the old value.
                cql, params = self._write_row(
                    job_id, values, ttl, "status = ? AND claimed_by = ? AND mails_sent = ? AND mail_pending = ?",
                    [RUNNING, worker, row.mails_sent, row.mail_pending],
                )  # fmt: skip
                applied, current = self._cas(
                    cql, params, job_id,
                    lambda r: r.status == status and r.claimed_by == worker and _utc(r.finished_at) == finished_at,
                )  # fmt: skip
                if applied:
                    self._after_finish(job_id, status, finished_at, values.get("zip_name"), row.mail_pending, ttl)
                    return True
                if current is None or current.status != RUNNING or current.claimed_by != worker:
                    return False
            raise StoreError(f"job {job_id}: finish kept losing to concurrent updates")

    def release_job(self, job_id: str, worker: str, now: datetime) -> bool:
        now = _ms(now)
        with self._errors():
            applied, _ = self._cas(
                "UPDATE {ks}.jobs SET status = ?, phase = ?, claimed_by = null, heartbeat_at = ?"
                " WHERE id = ? IF status = ? AND claimed_by = ?",
                (QUEUED, "queued", now, job_id, RUNNING, worker),
                job_id,
                lambda r: r.status == QUEUED and r.claimed_by is None and _utc(r.heartbeat_at) == now,
            )
        return applied

    def _after_finish(
        self, job_id: str, status: str, finished_at: datetime, zip_name: str | None, mail_pending: str | None, ttl: int
    ) -> None:
        self._index_finished(job_id, status, finished_at, zip_name, ttl)
        self._run("DELETE FROM {ks}.jobs_active WHERE shard = 0 AND id = ?", (job_id,))
        if mail_pending:
            self._run("INSERT INTO {ks}.jobs_pending_mail (shard, id) VALUES (0, ?) USING TTL ?", (job_id, ttl))
        # Re-write the job's URLs and log with the TTL (same keys, newer cells and row markers).
        urls = self._run("SELECT * FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
        self._run_many(
            "INSERT INTO {ks}.image_urls (job_id, position, seq, url, email, page_url, title, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
            [(u.job_id, u.position, u.seq, u.url, u.email, u.page_url, u.title, u.source, ttl) for u in urls],
        )
        events = self._run("SELECT * FROM {ks}.events WHERE job_id = ?", (job_id,))
        self._run_many(
            "INSERT INTO {ks}.events (job_id, at, seq, level, message) VALUES (?, ?, ?, ?, ?) USING TTL ?",
            [(e.job_id, e.at, e.seq, e.level, e.message, ttl) for e in events],
        )

    def _index_finished(
        self, job_id: str, status: str, finished_at: datetime | None, zip_name: str | None, ttl: int
    ) -> None:
        self._run(
            "INSERT INTO {ks}.jobs_finished (shard, id, status, finished_at, zip_name) VALUES (0, ?, ?, ?, ?)"
            " USING TTL ?",
            (job_id, status, finished_at, zip_name, ttl + FINISHED_INDEX_GRACE),
        )

    def requeue_stale(self, cutoff: datetime) -> list[str]:
        cutoff = _ms(cutoff)
        requeued = []
        with self._errors():
            for row in self._active_rows():
                if row.status != RUNNING or row.heartbeat_at is None or _utc(row.heartbeat_at) >= cutoff:
                    continue
                applied, _ = self._cas(
                    "UPDATE {ks}.jobs SET status = ?, phase = ?, claimed_by = null"
                    " WHERE id = ? IF status = ? AND claimed_by = ? AND heartbeat_at < ?",
                    (QUEUED, "queued", row.id, RUNNING, row.claimed_by, cutoff),
                    row.id,
                    lambda r, claimed=row.claimed_by: r.status == QUEUED or r.claimed_by != claimed,
                )
                if applied:
                    requeued.append(row.id)
        if requeued:
            log.info("requeued stale jobs %s", requeued)
        return requeued

    def finished_before(self, cutoff: datetime) -> list[Job]:
        cutoff = _ms(cutoff)
        with self._errors():
            entries = [
                e for e in self._run("SELECT id, status, finished_at, zip_name FROM {ks}.jobs_finished WHERE shard = 0")
                if e.finished_at is not None and _utc(e.finished_at) < cutoff
            ]  # fmt: skip
            rows = self._fetch_rows([e.id for e in entries])
        jobs = []
        for entry in entries:
            row = rows.get(entry.id)
            if row is not None:
                if row.status in FINISHED:
                    jobs.append(_row_to_job(row))
                continue
            # The row expired by TTL (personal data gone): what is left is what the cleanup needs.
            finished_at = _utc(entry.finished_at)
            jobs.append(
                Job(id=entry.id, query="", email="", count=0, run_at=finished_at, status=entry.status,
                    phase=entry.status, finished_at=finished_at, zip_name=entry.zip_name)
            )  # fmt: skip
        return sorted(jobs, key=lambda job: (job.finished_at, job.id))

    def purge_job(self, job_id: str) -> None:
        with self._errors():
            self._cas("DELETE FROM {ks}.jobs WHERE id = ? IF EXISTS", (job_id,), job_id, lambda r: False)
            self._run("DELETE FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
            self._run("DELETE FROM {ks}.events WHERE job_id = ?", (job_id,))
            self._run("DELETE FROM {ks}.jobs_active WHERE shard = 0 AND id = ?", (job_id,))
            self._run("DELETE FROM {ks}.jobs_finished WHERE shard = 0 AND id = ?", (job_id,))
            self._run("DELETE FROM {ks}.jobs_pending_mail WHERE shard = 0 AND id = ?", (job_id,))

    # Mail bookkeeping
    def record_mail(self, job_id: str, kind: str, sent: bool) -> None:
        with self._errors():
            for _attempt in range(CAS_RETRIES):
                row = self._run(
                    "SELECT status, finished_at, mails_sent, mail_pending FROM {ks}.jobs WHERE id = ?", (job_id,)
                ).one()
                if row is None or row.status is None:
                    return
                sent_kinds = list(row.mails_sent or [])
                if sent and kind not in sent_kinds:
                    sent_kinds.append(kind)
                pending = None if sent else kind
                ttl = self._ttl_for(_utc(row.finished_at)) if row.status in FINISHED else 0
                if pending:
                    self._run("INSERT INTO {ks}.jobs_pending_mail (shard, id) VALUES (0, ?) USING TTL ?", (job_id, ttl))
                # The status is in the condition so the TTL chosen above still matches the job's state.
                applied, _ = self._cas(
                    "UPDATE {ks}.jobs USING TTL ? SET mails_sent = ?, mail_pending = ?"
                    " WHERE id = ? IF status = ? AND mails_sent = ? AND mail_pending = ?",
                    (ttl, sent_kinds or None, pending, job_id, row.status, row.mails_sent, row.mail_pending),
                    job_id,
                    lambda r, want=sent_kinds, wait=pending: (r.mails_sent or []) == want and r.mail_pending == wait,
                )
                if applied:
                    if not pending:
                        self._run("DELETE FROM {ks}.jobs_pending_mail WHERE shard = 0 AND id = ?", (job_id,))
                    return
            raise StoreError(f"job {job_id}: record_mail kept losing to concurrent updates")

    def jobs_with_pending_mail(self) -> list[Job]:
        with self._errors():
            ids = [e.id for e in self._run("SELECT id FROM {ks}.jobs_pending_mail WHERE shard = 0")]
            rows = self._fetch_rows(ids)
        return [_row_to_job(row) for row in rows.values() if row.mail_pending]

    # Image URLs
    def _job_ttl(self, job_id: str) -> int:
        row = self._run("SELECT status, finished_at FROM {ks}.jobs WHERE id = ?", (job_id,)).one()
        if row is None or row.status is None:
            return self.retention_seconds  # no job (purged or expired): never keep personal data forever
        return self._ttl_for(_utc(row.finished_at)) if row.status in FINISHED else 0

    def add_image_urls(self, urls: list[ImageUrl]) -> None:
        by_job: dict[str, list[ImageUrl]] = {}
        for item in urls:
            by_job.setdefault(item.job_id, []).append(item)
        with self._errors():
            for job_id, items in by_job.items():
                # One worker collects a job's URLs, so reading the partition first is a sound dedupe.
                seen = {r.url for r in self._run("SELECT url FROM {ks}.image_urls WHERE job_id = ?", (job_id,))}
                ttl = self._job_ttl(job_id)
                rows = []
                for item in items:
                    if item.url in seen:
                        continue
                    seen.add(item.url)
                    rows.append((job_id, item.position, uuid.uuid1(), item.url, item.email, item.page_url,
                                 item.title, item.source, ttl))  # fmt: skip
                self._run_many(
                    "INSERT INTO {ks}.image_urls (job_id, position, seq, url, email, page_url, title, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?",
                    rows,
                )

    def image_urls(self, job_id: str) -> list[ImageUrl]:
        with self._errors():
            rows = self._run("SELECT * FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
            return [
                ImageUrl(job_id=r.job_id, email=r.email, url=r.url, page_url=r.page_url, title=r.title,
                         source=r.source, position=r.position)
                for r in rows
            ]  # fmt: skip

    # Event log
    def log_event(self, job_id: str, message: str, level: str = "info", at: datetime | None = None) -> None:
        at = _ms(at or _now())
        with self._errors():
            ttl = self._job_ttl(job_id)
            self._run(
                "INSERT INTO {ks}.events (job_id, at, seq, level, message) VALUES (?, ?, ?, ?, ?) USING TTL ?",
                (job_id, at, uuid.uuid1(), level, message, ttl),
            )

    def events(self, job_id: str) -> list[Event]:
        with self._errors():
            rows = self._run("SELECT * FROM {ks}.events WHERE job_id = ?", (job_id,))
            return [Event(job_id=r.job_id, at=_utc(r.at), level=r.level, message=r.message) for r in rows]

    @staticmethod
    def _check_fields(values: dict) -> list[str]:
        unknown = set(values) - _WRITABLE
        if unknown:
            raise ValueError(f"cannot write job fields {sorted(unknown)} here")
        return sorted(values)
