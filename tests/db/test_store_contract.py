"""The Store contract, run against every backend: SQLite (a temporary file) and a real Cassandra node."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

import db
from db.base import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    UNCONFIRMED,
    ImageUrl,
    Job,
    LimitReached,
    StoreError,
)


def _now(minutes: float = 0) -> datetime:
    """Now plus ``minutes``, cut to the millisecond (Cassandra keeps milliseconds)."""
    value = datetime.now(UTC) + timedelta(minutes=minutes)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _job(run_at: datetime | None = None, **overrides) -> Job:
    fields = {
        "id": uuid.uuid4().hex,
        "query": "red bicycles",
        "email": "someone@example.com",
        "count": 25,
        "run_at": run_at or _now(-1),
        "timezone": "Europe/Berlin",
        "options": {"sources": ["bing"], "min_side": 64},
        "created_at": _now(-2),
    }
    fields.update(overrides)
    return Job(**fields)


@pytest.fixture(params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = db.open_store("sqlite:///" + str(tmp_path / "contract.sqlite3"))
    else:
        url = request.getfixturevalue("cassandra_url")
        opened = db.open_store(url, {"RETENTION_MINUTES": 30})
    opened.init_schema()
    opened.init_schema()  # idempotent
    yield opened
    opened.close()


def _ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


def test_create_and_get_round_trip(store):
    berlin = timezone(timedelta(hours=2))
    job = _job(run_at=datetime(2031, 5, 6, 7, 8, 9, 123000, tzinfo=berlin))
    store.create_job(job)
    got = store.get_job(job.id)
    assert got == job
    assert got.run_at == datetime(2031, 5, 6, 5, 8, 9, 123000, tzinfo=UTC)
    for value in (got.run_at, got.created_at):
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert got.options == {"sources": ["bing"], "min_side": 64}
    assert store.get_job(uuid.uuid4().hex) is None


def test_create_twice_is_refused(store):
    job = _job()
    store.create_job(job)
    with pytest.raises(StoreError):
        store.create_job(job)


def test_queued_jobs_earliest_first_and_only_queued(store):
    later, sooner, running = _job(run_at=_now(60 * 24 * 7)), _job(run_at=_now(-5)), _job(run_at=_now(-10))
    for job in (later, sooner, running):
        store.create_job(job)
    assert store.claim_job(running.id, "w1", _now())
    mine = {later.id, sooner.id, running.id}
    assert [i for i in _ids(store.queued_jobs()) if i in mine] == [sooner.id, later.id]


def test_claim_moves_to_running_once(store):
    job = _job()
    store.create_job(job)
    now = _now()
    assert store.claim_job(job.id, "worker-a", now) is True
    assert store.claim_job(job.id, "worker-b", now) is False
    assert store.claim_job(uuid.uuid4().hex, "worker-b", now) is False
    got = store.get_job(job.id)
    assert (got.status, got.claimed_by, got.attempts) == (RUNNING, "worker-a", 1)
    assert got.heartbeat_at == now and got.started_at == now


def test_claim_exactly_once_under_contention(store):
    jobs = [_job() for _ in range(20)]
    for job in jobs:
        store.create_job(job)
    wins: dict[str, list[str]] = {job.id: [] for job in jobs}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def race(worker: str) -> None:
        order = [job.id for job in jobs]
        random.Random(worker).shuffle(order)
        try:
            barrier.wait(timeout=30)
            for job_id in order:
                if store.claim_job(job_id, worker, _now()):
                    with lock:
                        wins[job_id].append(worker)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert all(len(winners) == 1 for winners in wins.values()), wins
    for job in jobs:
        got = store.get_job(job.id)
        assert got.status == RUNNING and got.claimed_by == wins[job.id][0] and got.attempts == 1


def test_heartbeat_only_for_the_claimer(store):
    job = _job()
    store.create_job(job)
    store.claim_job(job.id, "w1", _now(-3))
    beat = _now()
    store.heartbeat(job.id, "w1", beat, phase="downloading", candidates=40, delivered=3)
    store.heartbeat(job.id, "intruder", _now(5), phase="collecting")
    got = store.get_job(job.id)
    assert (got.heartbeat_at, got.phase, got.candidates, got.delivered) == (beat, "downloading", 40, 3)
    with pytest.raises(ValueError):
        store.heartbeat(job.id, "w1", beat, status=DONE)


def test_finish_only_by_the_claimer(store):
    job = _job()
    store.create_job(job)
    assert store.finish_job(job.id, "w1", DONE, _now()) is False  # still queued
    store.claim_job(job.id, "w1", _now())
    assert store.finish_job(job.id, "w2", DONE, _now()) is False
    end = _now()
    assert store.finish_job(job.id, "w1", DONE, end, zip_name="abc.zip", zip_bytes=12345, delivered=20, note="short")
    assert store.finish_job(job.id, "w1", FAILED, _now()) is False
    got = store.get_job(job.id)
    assert (got.status, got.phase, got.finished_at, got.claimed_by) == (DONE, DONE, end, "w1")
    assert (got.zip_name, got.zip_bytes, got.delivered, got.note) == ("abc.zip", 12345, 20, "short")
    assert got.email == job.email and got.query == job.query and got.options == job.options
    with pytest.raises(ValueError):
        store.finish_job(job.id, "w1", QUEUED, _now())


def test_failed_job_keeps_its_error(store):
    job = _job()
    store.create_job(job)
    store.claim_job(job.id, "w1", _now())
    assert store.finish_job(job.id, "w1", FAILED, _now(), error="no images found")
    got = store.get_job(job.id)
    assert (got.status, got.error) == (FAILED, "no images found")


def test_requeue_stale_only_old_heartbeats(store):
    stale, fresh, queued = _job(), _job(), _job()
    for job in (stale, fresh, queued):
        store.create_job(job)
    store.claim_job(stale.id, "w-dead", _now(-10))
    store.claim_job(fresh.id, "w-live", _now(-10))
    store.heartbeat(fresh.id, "w-live", _now())
    requeued = store.requeue_stale(_now(-2))
    assert stale.id in requeued and fresh.id not in requeued and queued.id not in requeued
    assert store.requeue_stale(_now(-2)).count(stale.id) == 0  # already back in the queue
    got = store.get_job(stale.id)
    assert (got.status, got.claimed_by, got.phase) == (QUEUED, None, "queued")
    assert store.get_job(fresh.id).status == RUNNING
    assert stale.id in _ids(store.queued_jobs())
    # The old worker lost the job: it can neither heartbeat nor finish it; a new claim counts a second attempt.
    assert store.finish_job(stale.id, "w-dead", DONE, _now()) is False
    assert store.claim_job(stale.id, "w-new", _now())
    assert store.get_job(stale.id).attempts == 2


def test_release_only_by_the_claimer(store):
    job = _job()
    store.create_job(job)
    assert store.release_job(job.id, "w1", _now()) is False  # not running
    store.claim_job(job.id, "w1", _now(-1))
    assert store.release_job(job.id, "w2", _now()) is False
    assert store.release_job(job.id, "w1", _now()) is True
    assert store.release_job(job.id, "w1", _now()) is False
    got = store.get_job(job.id)
    assert (got.status, got.claimed_by, got.phase) == (QUEUED, None, "queued")
    assert job.id in _ids(store.queued_jobs())
    assert store.finish_job(job.id, "w1", DONE, _now()) is False
    assert store.claim_job(job.id, "w2", _now())
    assert store.get_job(job.id).attempts == 2


def test_cancel_once_from_unconfirmed_queued_or_running_and_never_after_the_end(store):
    unconfirmed, queued, running, done = _job(status=UNCONFIRMED), _job(), _job(), _job()
    for job in (unconfirmed, queued, running, done):
        store.create_job(job)
    for job in (running, done):
        assert store.claim_job(job.id, "w", _now(-2))
    store.finish_job(done.id, "w", DONE, _now(-1))
    store.record_mail(running.id, "started", sent=False)  # a pending email is dropped by the cancel
    for job in (unconfirmed, queued, running):
        assert store.cancel_job(job.id, _now()) is True
        assert store.cancel_job(job.id, _now()) is False  # exactly once
        got = store.get_job(job.id)
        assert (got.status, got.phase, got.mail_pending) == (CANCELLED, CANCELLED, None)
        assert got.finished_at is not None
    assert store.cancel_job(done.id, _now()) is False and store.get_job(done.id).status == DONE
    assert store.cancel_job(uuid.uuid4().hex, _now()) is False
    mine = {unconfirmed.id, queued.id, running.id}
    assert not mine & set(_ids(store.queued_jobs())) and not mine & set(_ids(store.jobs_with_pending_mail()))
    # The worker of the running job can neither beat nor finish it; retention deletes cancelled jobs too.
    store.heartbeat(running.id, "w", _now(), delivered=3)
    assert store.get_job(running.id).delivered == 0
    assert store.finish_job(running.id, "w", DONE, _now()) is False
    assert store.claim_job(queued.id, "w", _now()) is False
    assert mine <= set(_ids(store.finished_before(_now(1))))


def test_finished_before_cutoff(store):
    old, recent, running = _job(), _job(), _job()
    for job in (old, recent, running):
        store.create_job(job)
        store.claim_job(job.id, "w", _now(-20))
    store.finish_job(old.id, "w", DONE, _now(-10))
    store.finish_job(recent.id, "w", FAILED, _now(-1))
    mine = {old.id, recent.id, running.id}
    assert [i for i in _ids(store.finished_before(_now(-5))) if i in mine] == [old.id]
    assert [i for i in _ids(store.finished_before(_now(1))) if i in mine] == [old.id, recent.id]


def test_purge_job_removes_everything(store):
    job = _job()
    store.create_job(job)
    store.claim_job(job.id, "w", _now(-3))
    store.add_image_urls([ImageUrl(job.id, job.email, "https://img.example/1.jpg")])
    store.log_event(job.id, "collected 1")
    store.finish_job(job.id, "w", DONE, _now(-2))
    store.record_mail(job.id, DONE, sent=False)
    store.purge_job(job.id)
    assert store.get_job(job.id) is None
    assert store.image_urls(job.id) == [] and store.events(job.id) == []
    assert job.id not in _ids(store.finished_before(_now(1)))
    assert job.id not in _ids(store.jobs_with_pending_mail())
    store.purge_job(job.id)  # purging twice is harmless
    store.purge_job(uuid.uuid4().hex)


# Crawl state (crawl jobs): the frontier read forward, URLs seen once, statuses in place, gone with the job.
# Small Cassandra partitions here (7 sequence numbers a bucket, 5 reserved at a time), so the tests cross both.


@pytest.fixture
def small_buckets(monkeypatch):
    import db.cassandra.crawl as cassandra_crawl

    monkeypatch.setattr(cassandra_crawl, "BUCKET", 7)
    monkeypatch.setattr(cassandra_crawl, "SEQ_BLOCK", 5)


def _page(n: int, depth: int = 1) -> tuple[str, str, int]:
    return f"https://site.test/p{n}", f"https://site.test/p{n}?utm_source=x", depth


def _found(n: int) -> tuple[str, str, dict]:
    url = f"https://site.test/i{n}.jpg"
    return url, url, {"page_url": "https://site.test/", "alt": f"a{n}"}


def _saved_image(pending, n: int):
    from db.crawl_state import SavedImage

    return SavedImage(pending.url, pending.seq, f"images/{pending.seq:08d}.jpg", 100 + n, 50, 1000 + n,
                      f"{n:064x}", f"{n:016x}", {**pending.info, "image_url": pending.fetch_url})


def test_crawl_frontier_is_read_forward_and_each_url_is_queued_once(store, small_buckets):
    state = store.crawl_state(uuid.uuid4().hex)
    try:
        assert state.counts() == {} and state.queued(0, 10) == [] and state.get_meta("start_url") is None
        state.set_meta("start_url", "https://site.test/")
        assert state.add_pages([("https://site.test/", "https://site.test/", 0)]) == 1
        assert state.add_pages([("https://site.test/", "https://site.test/#top", 0)]) == 0
        [start] = state.queued(0, 10)
        assert (start.url, start.depth) == ("https://site.test/", 0)
        links = [_page(n) for n in range(20)] + [_page(3), ("https://site.test/", "https://site.test/", 1)]
        assert state.page_visited(start.url, links, [_found(1), _found(2), _found(1)]) == (20, 2)
        first = state.queued(0, 8)
        assert [p.url for p in first] == [f"https://site.test/p{n}" for n in range(8)]
        assert first[0].fetch_url == "https://site.test/p0?utm_source=x" and first[0].seq > start.seq
        later = state.queued(first[-1].seq, 100)  # the cursor: what comes after the pages taken
        assert [p.url for p in later] == [f"https://site.test/p{n}" for n in range(8, 20)]
        assert [p.seq for p in first + later] == sorted(p.seq for p in first + later)
        for page in first[:5]:
            state.page_visited(page.url, [_page(n) for n in range(3)], [_found(2)])  # all seen before
        state.page_failed(first[5].url, "HTTP 404")
        assert [p.url for p in state.queued(0, 3)] == [p.url for p in first[6:8]] + [later[0].url]
        assert state.counts() == {"pages_visited": 6, "pages_failed": 1, "pages_queued": 14, "images_pending": 2}
        assert state.failures() == [(first[5].fetch_url, "HTTP 404", "page")]
        assert state.get_meta("start_url") == "https://site.test/"
    finally:
        state.close()


def test_crawl_images_go_from_pending_to_saved_or_refused(store, small_buckets):
    state = store.crawl_state(uuid.uuid4().hex)
    try:
        state.add_pages([("https://site.test/", "https://site.test/", 0)])
        state.page_visited("https://site.test/", [], [_found(n) for n in range(12)])
        pending = state.pending(0, 100)
        assert [p.url for p in pending] == [f"https://site.test/i{n}.jpg" for n in range(12)]
        assert pending[3].info == {"page_url": "https://site.test/", "alt": "a3"}
        kept = [_saved_image(pending[n], n) for n in (0, 2, 5, 9)]
        state.images_done(kept, [(pending[1].url, "failed", "broken", "HTTP 500"),
                                 (pending[4].url, "duplicate", "duplicate", "the same image as i0")])
        assert [p.url for p in state.pending(0, 3)] == [pending[n].url for n in (3, 6, 7)]
        assert [p.url for p in state.pending(pending[7].seq, 100)] == [pending[n].url for n in (8, 10, 11)]
        assert state.saved() == kept
        assert state.saved_image(kept[2].seq) == kept[2] and state.saved_image(pending[3].seq) is None
        assert list(state.kept_hashes()) == [(k.seq, k.url, k.sha256, k.phash, k.width * k.height) for k in kept]
        # an image kept earlier gives way to a larger copy: saved -> duplicate
        state.images_done([_saved_image(pending[3], 3)], [(pending[0].url, "duplicate", "duplicate", "smaller")])
        assert [i.url for i in state.saved()] == [pending[n].url for n in (2, 3, 5, 9)]
        assert state.failures() == [(pending[0].fetch_url, "smaller", "duplicate"),
                                    (pending[1].fetch_url, "HTTP 500", "broken"),
                                    (pending[4].fetch_url, "the same image as i0", "duplicate")]
        assert state.counts() == {"pages_visited": 1, "images_saved": 4, "images_failed": 1,
                                  "images_duplicate": 2, "images_pending": 5}
    finally:
        state.close()


def test_crawl_state_resumes_where_it_was(store, small_buckets):
    job_id = uuid.uuid4().hex
    state = store.crawl_state(job_id)
    state.add_pages([_page(n) for n in range(9)])
    state.page_visited(_page(0)[0], [_page(20)], [_found(1)])
    state.page_visited(_page(1)[0], [], [])
    before = {p.url: p.seq for p in state.queued(0, 100)}
    state.close()  # the process is gone; another one opens the job's state
    again = store.crawl_state(job_id)
    try:
        assert again.counts() == {"pages_visited": 2, "pages_queued": 8, "images_pending": 1}
        assert {p.url: p.seq for p in again.queued(0, 100)} == before  # no visited page is handed out again
        assert again.add_pages([_page(n) for n in range(25)]) == 15  # what it saw before stays seen
        newest = again.queued(max(before.values()), 100)
        assert len(newest) == 15 and min(p.seq for p in newest) > max(before.values())
        assert [p.url for p in again.pending(0, 10)] == [_found(1)[0]]
    finally:
        again.close()


def test_crawl_state_is_per_job_and_purged_with_it(store, small_buckets):
    job, other = _job(), _job()
    for one in (job, other):
        store.create_job(one)
        state = store.crawl_state(one.id)
        state.set_meta("start_url", f"https://{one.id}.test/")
        state.add_pages([_page(n) for n in range(10)])
        state.page_visited(_page(0)[0], [], [_found(n) for n in range(3)])
        state.close()
    store.purge_job(job.id)
    gone, kept = store.crawl_state(job.id), store.crawl_state(other.id)
    try:
        assert gone.counts() == {} and gone.queued(0, 100) == [] and gone.pending(0, 100) == []
        assert gone.get_meta("start_url") is None and gone.saved() == [] and gone.failures() == []
        assert kept.counts() == {"pages_visited": 1, "pages_queued": 9, "images_pending": 3}
        assert kept.get_meta("start_url") == f"https://{other.id}.test/"
    finally:
        gone.close()
        kept.close()
    store.delete_crawl_state(other.id)  # a crawl that starts over
    fresh = store.crawl_state(other.id)
    try:
        assert fresh.counts() == {} and fresh.add_pages([_page(1)]) == 1
    finally:
        fresh.close()


def test_purge_queued_job(store):
    job = _job()
    store.create_job(job)
    store.purge_job(job.id)
    assert job.id not in _ids(store.queued_jobs())
    assert store.claim_job(job.id, "w", _now()) is False


def test_mail_bookkeeping(store):
    job = _job()
    store.create_job(job)
    store.record_mail(job.id, "started", sent=True)
    store.record_mail(job.id, "started", sent=True)
    got = store.get_job(job.id)
    assert (got.mails_sent, got.mail_pending) == (["started"], None)
    assert job.id not in _ids(store.jobs_with_pending_mail())
    store.claim_job(job.id, "w", _now())
    store.finish_job(job.id, "w", DONE, _now())
    store.record_mail(job.id, DONE, sent=False)
    pending = [j for j in store.jobs_with_pending_mail() if j.id == job.id]
    assert len(pending) == 1 and pending[0].mail_pending == DONE and pending[0].email == job.email
    store.record_mail(job.id, DONE, sent=True)
    got = store.get_job(job.id)
    assert (got.mails_sent, got.mail_pending) == (["started", DONE], None)
    assert job.id not in _ids(store.jobs_with_pending_mail())
    store.record_mail(uuid.uuid4().hex, DONE, sent=True)  # an unknown job is ignored


def test_image_urls_in_order_without_duplicates(store):
    job = _job()
    other = _job()
    store.create_job(job)
    store.create_job(other)
    first = [
        ImageUrl(job.id, job.email, "https://a.example/2.png", "https://a.example/", "two", "bing", position=2),
        ImageUrl(job.id, job.email, "https://a.example/0.png", None, None, "bing", position=0),
        ImageUrl(job.id, job.email, "https://a.example/1.png", position=1),
        ImageUrl(job.id, job.email, "https://a.example/0.png", position=3),  # duplicate in the same batch
    ]
    store.add_image_urls(first)
    store.add_image_urls(
        [
            ImageUrl(job.id, job.email, "https://a.example/1.png", position=4),  # duplicate of an earlier batch
            ImageUrl(job.id, job.email, "https://b.example/3.png", position=5, source="duckduckgo"),
            ImageUrl(other.id, other.email, "https://a.example/0.png", position=0),  # same URL, other job
        ]
    )
    store.add_image_urls([])
    got = store.image_urls(job.id)
    assert [u.url for u in got] == [
        "https://a.example/0.png", "https://a.example/1.png", "https://a.example/2.png", "https://b.example/3.png",
    ]  # fmt: skip
    assert got[2] == first[0]
    assert got[3].source == "duckduckgo" and got[3].position == 5
    assert [u.url for u in store.image_urls(other.id)] == ["https://a.example/0.png"]


def test_events_oldest_first(store):
    job = _job()
    store.create_job(job)
    base = _now(-1)
    store.log_event(job.id, "queued", at=base)
    store.log_event(job.id, "collecting", at=base + timedelta(seconds=1))
    store.log_event(job.id, "engine slow", level="warning", at=base + timedelta(seconds=2))
    before = datetime.now(UTC) - timedelta(seconds=1)
    store.log_event(job.id, "done")
    got = store.events(job.id)
    assert [(e.message, e.level) for e in got] == [
        ("queued", "info"), ("collecting", "info"), ("engine slow", "warning"), ("done", "info"),
    ]  # fmt: skip
    assert got[0].at == base and got[0].job_id == job.id
    assert got[3].at.utcoffset() == timedelta(0) and got[3].at >= before
    assert store.events(uuid.uuid4().hex) == []


def test_naive_datetimes_are_refused(store):
    job = _job()
    store.create_job(job)
    with pytest.raises(ValueError):
        store.claim_job(job.id, "w", datetime.now())  # noqa: DTZ005 - the point of the test


def test_whole_job_lifecycle_keeps_other_jobs_apart(store):
    a, b = _job(), _job()
    store.create_job(a)
    store.create_job(b)
    assert store.claim_job(a.id, "w", _now())
    store.heartbeat(a.id, "w", _now(), phase="collecting")
    assert store.finish_job(a.id, "w", DONE, _now())
    assert store.get_job(b.id).status == QUEUED and store.get_job(b.id).attempts == 0


# Caps and consent (issue 9): a store of the test's own, so that jobs of other tests do not count.
@pytest.fixture(params=["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)])
def own_store(request, tmp_path):
    """Return a factory of stores on one fresh database: two calls are two processes' stores."""
    if request.param == "sqlite":
        url = "sqlite:///" + str(tmp_path / "caps.sqlite3")
    else:
        from tests.fixtures.apps import fresh_keyspace

        url = fresh_keyspace(request.getfixturevalue("cassandra_url"))
    opened = []

    def factory():
        store = db.open_store(url, {"RETENTION_MINUTES": 30})
        store.init_schema()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def test_caps_per_address_and_in_all(own_store):
    store = own_store()
    first, second = _job(email="Capped@example.com", status=UNCONFIRMED), _job(email="capped@example.com")
    store.create_job_capped(first, per_email=2, in_all=4)
    store.create_job_capped(second, per_email=2, in_all=4)
    with pytest.raises(LimitReached) as caught:  # the address compares without case
        store.create_job_capped(_job(email="CAPPED@example.com"), per_email=2, in_all=4)
    assert caught.value.which == "email"
    assert store.claim_job(second.id, "w", _now())  # running still counts for its address...
    with pytest.raises(LimitReached):
        store.create_job_capped(_job(email="capped@example.com"), per_email=2, in_all=4)
    assert store.finish_job(second.id, "w", DONE, _now())  # ...a finished job does not
    third = _job(email="capped@example.com")
    store.create_job_capped(third, per_email=2, in_all=4)
    others = [_job(email=f"other{i}@example.com") for i in range(2)]
    for job in others:  # waiting now: first (unconfirmed), third, others
        store.create_job_capped(job, per_email=2, in_all=4)
    with pytest.raises(LimitReached) as caught:
        store.create_job_capped(_job(email="late@example.com"), per_email=2, in_all=4)
    assert caught.value.which == "all"
    assert store.get_job(first.id).status == UNCONFIRMED
    assert all(store.get_job(job.id).status == QUEUED for job in (third, *others))


def test_caps_hold_for_concurrent_submissions_from_two_processes(own_store):
    stores = [own_store(), own_store()]
    results: list[str] = []
    lock = threading.Lock()

    def submit(index: int) -> None:
        try:
            stores[index % 2].create_job_capped(_job(email="rush@example.com"), per_email=3, in_all=100)
            outcome = "created"
        except LimitReached as exc:
            outcome = exc.which
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == ["created"] * 3 + ["email"] * 5


def test_confirm_jobs_queues_each_unconfirmed_job_of_the_address_once(own_store):
    store = own_store()
    mine = [_job(email="me@example.com", status=UNCONFIRMED, phase=UNCONFIRMED) for _ in range(2)]
    other = _job(email="you@example.com", status=UNCONFIRMED, phase=UNCONFIRMED)
    for job in (*mine, other):
        store.create_job(job)
    assert store.queued_jobs() == []
    assert sorted(store.confirm_jobs("Me@example.com")) == sorted(_ids(mine))
    assert store.confirm_jobs("me@example.com") == []
    assert sorted(_ids(store.queued_jobs())) == sorted(_ids(mine))
    assert store.get_job(mine[0].id).phase == QUEUED and store.get_job(other.id).status == UNCONFIRMED
    assert store.claim_job(mine[0].id, "w", _now())


def test_unconfirmed_before_a_cutoff(own_store):
    store = own_store()
    old = _job(status=UNCONFIRMED, created_at=_now(-120))
    new = _job(status=UNCONFIRMED, created_at=_now(-1))
    queued = _job(created_at=_now(-120))
    for job in (old, new, queued):
        store.create_job(job)
    assert _ids(store.unconfirmed_before(_now(-60))) == [old.id]
    assert sorted(_ids(store.unconfirmed_before(_now()))) == sorted([old.id, new.id])
    store.purge_job(old.id)
    assert _ids(store.unconfirmed_before(_now())) == [new.id]


def test_confirmed_addresses_expire(own_store):
    store = own_store()
    now = _now()
    assert not store.is_confirmed("key-a", now)
    store.remember_confirmed("key-a", now + timedelta(hours=1))
    assert store.is_confirmed("key-a", now)
    assert not store.is_confirmed("key-b", now)
    assert not store.is_confirmed("key-a", now + timedelta(hours=2))


def test_confirmation_mails_at_most_one_an_hour_and_three_a_day(own_store):
    store, limits = own_store(), ((timedelta(hours=1), 1), (timedelta(days=1), 3))
    start = _now(-60 * 24 * 2)  # two days ago, so that every moment below is in the past
    minutes = [0, 10, 61, 122, 185, 24 * 60 + 2]
    allowed = [store.reserve_confirmation_mail("key-a", start + timedelta(minutes=m), limits) for m in minutes]
    assert allowed == [True, False, True, True, False, True]
    assert store.reserve_confirmation_mail("key-b", start + timedelta(minutes=10), limits)  # per address


def test_confirmation_mail_reservations_hold_under_contention(own_store):
    stores, now = [own_store(), own_store()], _now()
    limits = ((timedelta(hours=1), 1), (timedelta(days=1), 3))
    results: list[bool] = []
    threads = [threading.Thread(target=lambda s=stores[i % 2]: results.append(
        s.reserve_confirmation_mail("key-rush", now, limits))) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False] * 5 + [True]
