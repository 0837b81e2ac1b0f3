"""Scheduling with real app processes on one SQLite file: restarts, missed jobs, exactly-once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

import config
from db import open_store
from tests.fixtures.apps import fresh_keyspace

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppProcess:
    """`flask --app app run` in a child process, stopped by its own pid."""

    def __init__(self, env: dict, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env={**os.environ, **env, "PUBLIC_URL": self.url}, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"app exited early; see {log}"
            try:
                requests.get(self.url + "/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"app did not answer within 30 s; see {log}")

    def submit(self, email: str, at: datetime, count: int = 3) -> str:
        response = requests.post(self.url + "/api/jobs", timeout=10, json={
            "search-query": "red panda", "email": email, "images": count,
            "date": at.strftime("%Y-%m-%d"), "time": at.strftime("%H:%M:%S")})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def shared_db(request, tmp_path):
    """The database every app process of the test shares: SQLite unless the test asks for Cassandra."""
    if getattr(request, "param", "sqlite") == "cassandra":
        return fresh_keyspace(request.getfixturevalue("cassandra_url"))
    return f"sqlite:///{tmp_path}/shared.sqlite3"


@pytest.fixture
def processes(tmp_path, smtp_server, engines, image_server, shared_db):
    engines.reset()
    env = {
        "DATABASE_URL": shared_db, "DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "shared-secret", "SMTP_HOST": smtp_server.host, "SMTP_PORT": str(smtp_server.port),
        "SMTP_SECURITY": "none", "BING_URL": engines.bing_url, "IMAGE_SOURCES": "bing", "ALLOW_PRIVATE_URLS": "on",
        "POLL_INTERVAL_SECONDS": "1", "CLEANUP_INTERVAL_SECONDS": "1", "STALE_JOB_SECONDS": "4", "JOB_WORKERS": "2",
        "SCHEDULER": "web", "LOG_LEVEL": "INFO",
    }
    started: list[AppProcess] = []

    def start(**extra) -> AppProcess:
        process = AppProcess({**env, **extra}, tmp_path / f"app-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(signal.SIGKILL)
    engines.reset()


@pytest.fixture
def store(shared_db):
    """The shared database, as the tests see it."""
    opened = open_store(shared_db, config.load({}))
    yield opened
    opened.close()


def _wait_done(store, job_ids, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [store.get_job(job_id) for job_id in job_ids]
        if all(job.status in ("done", "failed") for job in jobs):
            return jobs
        time.sleep(0.3)
    raise AssertionError(f"jobs not finished: {[(j.id, j.status, j.phase) for j in jobs]}")


def _starts(store, job_id) -> int:
    return sum(1 for e in store.events(job_id) if e.message.startswith("job started"))


def test_jobs_survive_a_restart_and_missed_ones_run_at_start(processes, store, smtp_server):
    first = processes()
    now = datetime.now(UTC)
    missed = first.submit("missed@example.com", now + timedelta(seconds=3))
    future = first.submit("future@example.com", now + timedelta(seconds=25))
    first.stop()  # the app goes down before either job's time
    time.sleep(max(0.0, (now + timedelta(seconds=4) - datetime.now(UTC)).total_seconds()))
    assert store.get_job(missed).status == "queued"

    processes()  # the app comes back: the missed job runs at once, the future one at its time
    [job] = _wait_done(store, [missed], timeout=60)
    assert job.status == "done"
    assert store.get_job(future).status == "queued"
    [job] = _wait_done(store, [future], timeout=90)
    assert job.status == "done" and job.started_at >= job.run_at >= now + timedelta(seconds=24)
    for job_id in (missed, future):
        assert _starts(store, job_id) == 1
    smtp_server.wait_for(lambda msgs: sum("are ready" in m["Subject"] for m in msgs) >= 2, timeout=30)
    done = Counter(m["To"] for m in smtp_server.messages if "are ready" in m["Subject"])
    assert done == {"missed@example.com": 1, "future@example.com": 1}


@pytest.mark.parametrize(("shared_db", "jobs_per_process"), [
    ("sqlite", 3),
    pytest.param("cassandra", 10, marks=pytest.mark.cassandra),
], indirect=["shared_db"])
def test_two_processes_on_one_database_run_each_job_once(processes, store, smtp_server, jobs_per_process):
    a, b = processes(), processes()
    at = datetime.now(UTC) + timedelta(seconds=6)  # every job is due at the same moment
    ids = [a.submit(f"a{i}@example.com", at, 2) for i in range(jobs_per_process)]
    ids += [b.submit(f"b{i}@example.com", at, 2) for i in range(jobs_per_process)]
    total = len(ids)
    jobs = _wait_done(store, ids, timeout=240)
    assert [job.status for job in jobs] == ["done"] * total
    assert [_starts(store, job_id) for job_id in ids] == [1] * total  # counted in the event log
    smtp_server.wait_for(lambda msgs: sum("are ready" in m["Subject"] for m in msgs) >= total, timeout=60)
    time.sleep(2)  # any duplicate would arrive now
    done = Counter(m["To"] for m in smtp_server.messages if "are ready" in m["Subject"])
    assert sorted(done.values()) == [1] * total and len(done) == total
    assert len({job.claimed_by.split(":")[1] for job in jobs}) == 2  # both processes ran jobs


def test_a_job_interrupted_by_a_crash_completes_once_after_restart(processes, store, smtp_server, engines):
    engines.set_mode("bing", "slow")  # keep the job busy long enough to kill its process mid-way
    first = processes()
    job_id = first.submit("crash@example.com", datetime.now(UTC), 3)
    deadline = time.monotonic() + 30
    while _starts(store, job_id) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get_job(job_id).status == "running"
    first.stop(signal.SIGKILL)
    engines.reset()
    processes()
    [job] = _wait_done(store, [job_id], timeout=120)
    assert job.status == "done" and job.attempts == 2
    assert any("interrupted" in e.message for e in store.events(job_id))
    smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
    time.sleep(1)
    subjects = Counter(m["Subject"] for m in smtp_server.to("crash@example.com"))
    assert subjects == {"Your images of “red panda” are being collected": 1,
                        "Your 3 images of “red panda” are ready": 1}
