"""Scheduling with real app processes on one database: restarts, missed jobs, exactly-once, crashes."""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

import config
from db import open_store
from tests.fixtures.apps import fresh_keyspace
from tests.fixtures.processes import starts, wait_done

pytestmark = pytest.mark.slow  # real app processes; their jobs read the fixture URL list, no browser


@pytest.fixture
def shared_db(request, app_env):
    """The database every app process of the test shares: SQLite unless the test asks for Cassandra."""
    if getattr(request, "param", "sqlite") == "cassandra":
        app_env["DATABASE_URL"] = fresh_keyspace(request.getfixturevalue("cassandra_url"))
    return app_env["DATABASE_URL"]


@pytest.fixture
def store(shared_db):
    """The shared database, as the tests see it."""
    opened = open_store(shared_db, config.load({}))
    yield opened
    opened.close()


def test_jobs_survive_a_restart_and_missed_ones_run_at_start(processes, store, smtp_server):
    first = processes.flask()
    now = datetime.now(UTC)
    missed = first.submit("missed@example.com", now + timedelta(seconds=3))
    future = first.submit("future@example.com", now + timedelta(seconds=20))  # the list source starts no browser
    first.stop()  # the app goes down before either job's time
    time.sleep(max(0.0, (now + timedelta(seconds=4) - datetime.now(UTC)).total_seconds()))
    assert store.get_job(missed).status == "queued"

    processes.flask()  # the app comes back: the missed job runs at once, the future one at its time
    [job] = wait_done(store, [missed], timeout=60)
    assert job.status == "done"
    assert store.get_job(future).status == "queued"
    [job] = wait_done(store, [future], timeout=90)
    assert job.status == "done" and job.started_at >= job.run_at >= now + timedelta(seconds=19)
    for job_id in (missed, future):
        assert starts(store, job_id) == 1
    smtp_server.wait_for(lambda msgs: sum("are ready" in m["Subject"] for m in msgs) >= 2, timeout=30)
    done = Counter(m["To"] for m in smtp_server.messages if "are ready" in m["Subject"])
    assert done == {"missed@example.com": 1, "future@example.com": 1}


@pytest.mark.parametrize(("shared_db", "jobs_per_process"), [
    ("sqlite", 3),
    pytest.param("cassandra", 5, marks=pytest.mark.cassandra),  # more claims racing on lightweight transactions
], indirect=["shared_db"])
def test_two_processes_on_one_database_run_each_job_once(processes, store, smtp_server, jobs_per_process):
    a, b = processes.flask(), processes.flask()
    at = datetime.now(UTC) + timedelta(seconds=6)  # every job is due at the same moment
    ids = [a.submit(f"a{i}@example.com", at, 2) for i in range(jobs_per_process)]
    ids += [b.submit(f"b{i}@example.com", at, 2) for i in range(jobs_per_process)]
    total = len(ids)
    jobs = wait_done(store, ids, timeout=240)
    assert [job.status for job in jobs] == ["done"] * total
    assert [starts(store, job_id) for job_id in ids] == [1] * total  # counted in the event log
    smtp_server.wait_for(lambda msgs: sum("are ready" in m["Subject"] for m in msgs) >= total, timeout=60)
    time.sleep(2)  # any duplicate would arrive now
    done = Counter(m["To"] for m in smtp_server.messages if "are ready" in m["Subject"])
    assert sorted(done.values()) == [1] * total and len(done) == total
    assert len({job.claimed_by.split(":")[1] for job in jobs}) == 2  # both processes ran jobs


def test_a_job_interrupted_by_a_crash_completes_once_after_restart(processes, store, smtp_server, engines):
    engines.set_mode("urls", "slow")  # the list answers late: the job is busy long enough to kill its process
    first = processes.flask()
    job_id = first.submit("crash@example.com", datetime.now(UTC), 3)
    deadline = time.monotonic() + 30
    # Killed once its "started" email is recorded, while it waits for the list. An email is sent at least once:
    # a crash between the SMTP server's acceptance and that record would send it again after the restart (a
    # fresh-clone run once killed the process inside that window of a few milliseconds).
    while "started" not in store.get_job(job_id).mails_sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.get_job(job_id).status == "running" and starts(store, job_id) == 1
    first.stop(signal.SIGKILL)
    engines.reset()
    processes.flask()
    [job] = wait_done(store, [job_id], timeout=120)
    assert job.status == "done" and job.attempts == 2
    assert any("interrupted" in e.message for e in store.events(job_id))
    smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
    time.sleep(1)
    subjects = Counter(m["Subject"] for m in smtp_server.to("crash@example.com"))
    assert subjects == {"Your images are being collected": 1, "Your images are ready": 1}
