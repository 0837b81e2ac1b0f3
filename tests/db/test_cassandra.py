"""What only the Cassandra store does: retention by TTL, its URL and settings, and its error translation."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cassandra import WriteTimeout, WriteType

from db.base import DONE, ImageUrl, Job, StoreUnavailable
from db.cassandra import CassandraStore, parse_replication, parse_url
from db.cassandra.lists import ttl_left
from scripts.cassandra_server import free_port

RETENTION = 1800


def _now(minutes: float = 0) -> datetime:
    value = datetime.now(UTC) + timedelta(minutes=minutes)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _job(**overrides) -> Job:
    fields = {"id": uuid.uuid4().hex, "query": "kittens", "email": "owner@example.com", "count": 3, "run_at": _now(-1)}
    fields.update(overrides)
    return Job(**fields)


@pytest.fixture
def store(cassandra_url):
    opened = CassandraStore.from_url(cassandra_url, {"RETENTION_MINUTES": RETENTION // 60})
    opened.init_schema()
    yield opened
    opened.close()


def _ttls(store: CassandraStore, job_id: str) -> dict[str, int | None]:
    row = store.run(
        "SELECT TTL(email) AS email, TTL(query) AS query, TTL(options) AS options, TTL(status) AS status"
        " FROM {ks}.jobs WHERE id = ?",
        (job_id,),
    ).one()
    url = store.run("SELECT TTL(url) AS url, TTL(email) AS email FROM {ks}.image_urls WHERE job_id = ?", (job_id,))
    event = store.run("SELECT TTL(message) AS message FROM {ks}.events WHERE job_id = ?", (job_id,))
    url_row, event_row = url.one(), event.one()
    return {
        "email": row.email, "query": row.query, "options": row.options, "status": row.status,
        "url": url_row.url if url_row else None, "url_email": url_row.email if url_row else None,
        "event": event_row.message if event_row else None,
    }  # fmt: skip


def _run_job(store: CassandraStore, job: Job, finish: bool = True) -> None:
    store.create_job(job)
    store.claim_job(job.id, "w", _now())
    store.add_image_urls([ImageUrl(job.id, job.email, f"https://img.example/{i}.jpg", position=i) for i in range(3)])
    store.log_event(job.id, "collected 3")
    if finish:
        assert store.finish_job(job.id, "w", DONE, _now(), zip_name="z.zip")


@pytest.mark.cassandra
def test_finish_sets_the_retention_ttl_on_personal_data(store):
    job = _job()
    began = time.monotonic()
    _run_job(store, job)
    store.log_event(job.id, "mail sent")  # written after the finish: gets the remaining TTL
    ttls = _ttls(store, job.id)
    rows = store.run("SELECT TTL(message) AS ttl FROM {ks}.events WHERE job_id = ?", (job.id,))
    # A TTL counts down in whole seconds from the write: by now it is at most this much below the retention
    # (two seconds were not always enough for a freshly started node under a loaded machine).
    lowest = RETENTION - math.ceil(time.monotonic() - began) - 1
    for name, ttl in ttls.items():
        assert ttl is not None and lowest <= ttl <= RETENTION, (name, ttl, lowest)
    assert all(lowest <= r.ttl <= RETENTION for r in rows), ([r.ttl for r in rows], lowest)


@pytest.mark.cassandra
def test_nothing_expires_while_queued_or_running(store):
    job = _job(run_at=_now(60 * 24 * 7))  # next week
    store.create_job(job)
    assert set(_ttls(store, job.id).values()) == {None}
    running = _job()
    _run_job(store, running, finish=False)
    store.heartbeat(running.id, "w", _now(), phase="downloading")
    store.record_mail(running.id, "started", sent=True)
    assert set(_ttls(store, running.id).values()) == {None}


@pytest.mark.cassandra
def test_personal_data_is_gone_after_retention(cassandra_url):
    # 5 s, not 2: on a busy 2-core box the steps between finish and the first check can take a couple of seconds.
    store = CassandraStore.from_url(cassandra_url, {}, retention_seconds=5)
    try:
        store.init_schema()
        job = _job()
        _run_job(store, job)
        store.record_mail(job.id, DONE, sent=False)
        assert store.get_job(job.id).mail_pending == DONE
        deadline = time.monotonic() + 20
        raw = "SELECT * FROM {ks}.jobs WHERE id = ?"
        # Cells written at different moments (the finish, then the mail) expire up to a second apart: TTLs are whole
        # seconds. Wait for the last of them, within the retention and the deadline.
        while (store.get_job(job.id) is not None or store.run(raw, (job.id,)).one() is not None) and (
                time.monotonic() < deadline):
            time.sleep(0.5)
        assert store.get_job(job.id) is None
        assert store.run(raw, (job.id,)).one() is None
        assert store.image_urls(job.id) == [] and store.events(job.id) == []
        assert job.id not in [j.id for j in store.jobs_with_pending_mail()]
        # The retention cleanup still finds the job (and its zip), without any personal data, and purges it.
        left = [j for j in store.finished_before(_now(1)) if j.id == job.id]
        assert len(left) == 1 and left[0].zip_name == "z.zip" and left[0].email == "" and left[0].query == ""
        store.purge_job(job.id)
        assert job.id not in [j.id for j in store.finished_before(_now(1))]
    finally:
        store.close()


def test_nothing_written_after_the_finish_outlives_the_retention():
    finished = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    assert ttl_left(5, finished, now=finished + timedelta(seconds=0.9)) == 4  # expires at 4.9 s, not 5.9 s
    assert ttl_left(5, finished, now=finished + timedelta(seconds=2)) == 3
    assert ttl_left(5, finished, now=finished + timedelta(seconds=30)) == 1  # never 0: 0 means "no TTL"
    assert ttl_left(5, None) == 0


def test_parse_url():
    assert parse_url("cassandra://db1,db2:9142/aid_prod") == (["db1", "db2"], 9142, "aid_prod")
    assert parse_url("cassandra://127.0.0.1/aid") == (["127.0.0.1"], 9042, "aid")
    assert parse_url("cassandra:///astra_ks") == ([], 9042, "astra_ks")
    with pytest.raises(ValueError):
        parse_url("cassandra://h/bad-name;DROP")
    with pytest.raises(ValueError):
        parse_url("sqlite:///x")


def test_parse_replication():
    assert parse_replication("{'class': 'SimpleStrategy', 'replication_factor': 1}") == (
        "{'class': 'SimpleStrategy', 'replication_factor': '1'}"
    )
    assert parse_replication("{'class': 'NetworkTopologyStrategy', 'dc1': 3}") == (
        "{'class': 'NetworkTopologyStrategy', 'dc1': '3'}"
    )
    for bad in ("SimpleStrategy", "{'replication_factor': 1}", "{'class': \"x'} AND durable_writes=false\"}"):
        with pytest.raises(ValueError):
            parse_replication(bad)


def test_from_url_reads_the_settings():
    store = CassandraStore.from_url(
        "cassandra://h1,h2:9999/ks",
        {"RETENTION_MINUTES": 5, "CASSANDRA_LOCAL_DC": "eu", "CASSANDRA_USERNAME": "u", "CASSANDRA_PASSWORD": "p"},
        timeout=3.0,
    )
    assert (store.contact_points, store.port, store.keyspace) == (["h1", "h2"], 9999, "ks")
    assert (store.retention_seconds, store.local_dc, store.timeout) == (300, "eu", 3.0)


def test_unreachable_cluster_is_unavailable():
    store = CassandraStore.from_url(f"cassandra://127.0.0.1:{free_port()}/nowhere", {}, timeout=2.0)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.get_job("x")
        assert caught.value.__cause__ is not None  # chained from the driver's NoHostAvailable
    finally:
        store.close()


class _Row:
    def __init__(self, **values):
        self.__dict__.update(values)


def test_cas_timeout_is_resolved_by_a_serial_read(monkeypatch):
    """A Paxos write that times out is decided by what a SERIAL read shows, not by guessing."""
    store = CassandraStore(["127.0.0.1"], 9042, "ks")
    now = _now()

    def timeout(cql, params=()):
        if cql.startswith("SELECT"):
            return _Result([_Row(status="queued", attempts=0, started_at=None)])
        raise WriteTimeout("timed out", write_type=WriteType.CAS)

    monkeypatch.setattr(store, "run", timeout)
    mine = _Row(status="running", claimed_by="me", heartbeat_at=now)
    theirs = _Row(status="running", claimed_by="other", heartbeat_at=now)
    monkeypatch.setattr(store, "read_serial", lambda job_id: mine)
    assert store.claim_job("j", "me", now) is True
    monkeypatch.setattr(store, "read_serial", lambda job_id: theirs)
    assert store.claim_job("j", "me", now) is False

    def plain_timeout(cql, params=()):
        if cql.startswith("SELECT"):
            return _Result([_Row(status="queued", attempts=0, started_at=None)])
        raise WriteTimeout("timed out", write_type=WriteType.SIMPLE)

    monkeypatch.setattr(store, "run", plain_timeout)
    with pytest.raises(StoreUnavailable):
        store.claim_job("j", "me", now)


class _Result:
    def __init__(self, rows):
        self.rows = rows

    def one(self):
        return self.rows[0] if self.rows else None
