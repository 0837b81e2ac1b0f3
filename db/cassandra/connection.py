"""The driver session of the Cassandra store: one per process, its error mapping and its Paxos plumbing.

A Paxos write that times out (``WriteTimeout`` with write type CAS) has an unknown outcome: it is resolved by reading
the row back at LOCAL_SERIAL consistency, never by guessing. Driver errors meaning "the cluster did not answer"
become ``StoreUnavailable``; anything else from the driver becomes ``StoreError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

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

from db.base import StoreError, StoreUnavailable
from db.cassandra.schema import DEFAULT_PORT, check_keyspace
from db.per_process import PerProcess

log = logging.getLogger(__name__)

CAS_WRITE_UNKNOWN = 0x1700  # protocol v5 error code for "Paxos outcome unknown"
CONCURRENCY = 32  # statements in flight at once for the many-row reads and writes


@dataclass
class _Link:
    """A connected cluster, its session and the statements prepared on it."""

    cluster: Cluster
    session: Session
    prepared: dict[str, PreparedStatement] = field(default_factory=dict)


class CassandraConnection:
    """Statements on one keyspace (``{ks}`` in CQL is its name), through a session made on first use in each process."""

    def __init__(
        self,
        contact_points: list[str],
        port: int = DEFAULT_PORT,
        keyspace: str = "aid",
        *,
        username: str | None = None,
        password: str | None = None,
        secure_bundle: str | None = None,
        astra_token: str | None = None,
        local_dc: str = "datacenter1",
        timeout: float = 10.0,
    ) -> None:
        self.keyspace = check_keyspace(keyspace)
        if not contact_points and not secure_bundle:
            raise ValueError("a cassandra:// URL needs at least one host (or CASSANDRA_SECURE_BUNDLE)")
        self.contact_points = contact_points
        self.port = port
        self.local_dc = local_dc
        self.timeout = timeout
        self._username, self._password = username, password
        self._secure_bundle, self._astra_token = secure_bundle, astra_token
        self._link: PerProcess[_Link] = PerProcess()

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

    def _connect(self) -> _Link:
        cluster = self._new_cluster()
        try:
            session = cluster.connect()
        except BaseException:
            cluster.shutdown()
            raise
        return _Link(cluster, session)

    def _connected(self) -> _Link:
        return self._link.get(self._connect)

    def session(self) -> Session:
        """Return this process's session, connecting on first use (after any fork)."""
        return self._connected().session

    def cluster(self) -> Cluster:
        return self._connected().cluster

    def close(self) -> None:
        """Shut down this process's session; a parent's (inherited across a fork) is left alone."""
        link = self._link.pop()
        if link is not None:
            link.cluster.shutdown()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn driver errors into ``StoreUnavailable`` (the cluster did not answer) or ``StoreError``."""
        try:
            yield
        except (NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout, WriteTimeout) as exc:
            raise StoreUnavailable(f"Cassandra did not answer: {exc}") from exc
        except (DriverException, ErrorMessage) as exc:
            raise StoreError(f"Cassandra: {exc}") from exc

    def prepare(self, cql: str) -> PreparedStatement:
        link = self._connected()
        statement = link.prepared.get(cql)
        if statement is None:
            statement = link.session.prepare(cql.format(ks=self.keyspace))
            link.prepared[cql] = statement
        return statement

    def run(self, cql: str, params: tuple | list = ()) -> Any:
        return self.session().execute(self.prepare(cql), params)

    def run_many(self, cql: str, rows: list[tuple]) -> list[Any]:
        """Run ``cql`` once per parameter tuple, concurrently; return the results in order (the first error raises)."""
        if not rows:
            return []
        results = execute_concurrent_with_args(self.session(), self.prepare(cql), rows, concurrency=CONCURRENCY)
        done = []
        for ok, result in results:
            if not ok:
                raise result
            done.append(result)
        return done

    def cas(self, cql: str, params: tuple | list, job_id: str, resolve: Callable[[Any], bool]) -> tuple[bool, Any]:
        """Run a conditional write; return (applied, current row). An unknown outcome is read back at SERIAL."""
        try:
            result = self.run(cql, params)
            return result.was_applied, result.one()
        except WriteTimeout as exc:
            if exc.write_type != WriteType.CAS:
                raise
            cause: Exception = exc
        except ErrorMessage as exc:
            if getattr(exc, "code", None) != CAS_WRITE_UNKNOWN:
                raise
            cause = exc
        log.warning("Paxos write on job %s timed out (%s); reading back at LOCAL_SERIAL", job_id, cause)
        row = self.read_serial(job_id)
        return (row is not None and resolve(row)), row

    def read_serial(self, job_id: str) -> Any:
        """Read the job row at LOCAL_SERIAL: the outcome of every Paxos write on it, finished or not, is settled."""
        bound = self.prepare("SELECT * FROM {ks}.jobs WHERE id = ?").bind((job_id,))
        bound.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return self.session().execute(bound).one()

    def fetch_rows(self, job_ids: list[str]) -> dict[str, Any]:
        """Return the rows of the jobs that exist, by id."""
        results = self.run_many("SELECT * FROM {ks}.jobs WHERE id = ?", [(i,) for i in job_ids])
        rows = {}
        for job_id, result in zip(job_ids, results, strict=True):
            row = result.one()
            if row is not None and row.status is not None:
                rows[job_id] = row
        return rows
