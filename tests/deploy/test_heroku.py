"""The app as Heroku runs it: the Procfile's processes, SCHEDULER=worker, restarts, and zips on S3."""

from __future__ import annotations

import io
import re
import signal
import time
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

import config
from db import open_store
from tests.fixtures.processes import starts, wait_done

pytestmark = pytest.mark.slow  # real processes under honcho and gunicorn


@pytest.fixture
def store(app_env):
    opened = open_store(app_env["DATABASE_URL"], config.load({}))
    yield opened
    opened.close()


def _link(message) -> str:
    return re.search(r"(http://\S+/download/\S+)", message.get_body(("plain",)).get_content())[1]


def _images_in(content: bytes) -> list[str]:
    """The images of a job's zip, which unpacks into one folder named after the job."""
    return [n for n in zipfile.ZipFile(io.BytesIO(content)).namelist() if n.split("/", 1)[-1].startswith("images/")]


def _wait_started(store, job_id, timeout=30.0) -> None:
    """Until the job runs and its "started" email is recorded: a process killed between the SMTP server's
    acceptance and that record sends the email again after the restart (at least once), which these tests,
    counting emails, must not provoke."""
    deadline = time.monotonic() + timeout
    while "started" not in store.get_job(job_id).mails_sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert starts(store, job_id) == 1 and store.get_job(job_id).status == "running"


@pytest.mark.browser
def test_the_procfile_web_process_runs_a_job_end_to_end(processes, store, smtp_server):
    # honcho runs `gunicorn 'app:create_app()' -c gunicorn.conf.py` with PORT set; this job collects with Chromium
    # in the dyno (the other process tests take their candidates from the fixture's URL list).
    web = processes.procfile_web(IMAGE_SOURCES="bing")
    job_id = web.submit("heroku@example.com", datetime.now(UTC), 5)
    messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=120)
    done = [m for m in messages if "are ready" in m["Subject"]][0]
    response = requests.get(_link(done), timeout=30)
    assert response.status_code == 200
    assert len(_images_in(response.content)) == 5
    assert store.get_job(job_id).status == "done"
    assert [m["Subject"] for m in smtp_server.to("heroku@example.com")][0].endswith("are being collected")


def test_worker_mode_two_workers_two_webs_run_each_job_once(processes, store, smtp_server):
    webs = [processes.procfile_web(SCHEDULER="worker") for _ in range(2)]
    workers = [processes.worker(SCHEDULER="worker") for _ in range(2)]
    at = datetime.now(UTC) + timedelta(seconds=5)
    ids = [webs[i % 2].submit(f"user{i}@example.com", at, 2) for i in range(8)]  # twice the workers' threads
    jobs = wait_done(store, ids, timeout=300)
    assert [job.status for job in jobs] == ["done"] * 8
    assert [starts(store, job_id) for job_id in ids] == [1] * 8
    runners = {int(job.claimed_by.split(":")[1]) for job in jobs}
    assert runners <= {w.proc.pid for w in workers}  # web processes only accept and serve
    smtp_server.wait_for(lambda msgs: sum("are ready" in m["Subject"] for m in msgs) >= 8, timeout=60)
    time.sleep(2)
    done = Counter(m["To"] for m in smtp_server.messages if "are ready" in m["Subject"])
    assert len(done) == 8 and set(done.values()) == {1}


def test_a_worker_killed_mid_job_leaves_it_to_another_which_completes_it_once(processes, store, smtp_server,
                                                                              engines):
    engines.set_mode("urls", "slow")  # the list answers late: the job stays busy until its worker is killed
    web = processes.procfile_web(SCHEDULER="worker")
    workers = {w.proc.pid: w for w in (processes.worker(SCHEDULER="worker"), processes.worker(SCHEDULER="worker"))}
    job_id = web.submit("killed@example.com", datetime.now(UTC), 3)
    _wait_started(store, job_id)
    victim = int(store.get_job(job_id).claimed_by.split(":")[1])
    workers[victim].stop(signal.SIGKILL)
    engines.reset()
    [job] = wait_done(store, [job_id], timeout=120)
    assert job.status == "done" and job.attempts == 2
    assert int(job.claimed_by.split(":")[1]) != victim
    smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
    time.sleep(1)
    assert Counter("ready" in m["Subject"] for m in smtp_server.to("killed@example.com")) == {False: 1, True: 1}


def test_sigterm_puts_the_running_job_back_and_it_completes_once_after_restart(processes, store, smtp_server,
                                                                               engines):
    engines.set_mode("urls", "slow")
    web = processes.procfile_web(SCHEDULER="worker")
    # The slow list times out 10 s into the job (a quarter of the collect timeout): within the 20 s grace.
    first = processes.worker(SCHEDULER="worker", SHUTDOWN_GRACE_SECONDS="20", COLLECT_TIMEOUT_SECONDS="40")
    job_id = web.submit("restart@example.com", datetime.now(UTC), 3)
    _wait_started(store, job_id)
    stopped_at = time.monotonic()
    assert first.stop(signal.SIGTERM, timeout=40) == 0  # it stopped within the grace period
    assert time.monotonic() - stopped_at < 25
    job = store.get_job(job_id)
    assert job.status == "queued" and job.claimed_by is None
    assert any("stopped by a restart" in e.message for e in store.events(job_id))
    engines.reset()
    processes.worker(SCHEDULER="worker")  # the restarted dyno
    [job] = wait_done(store, [job_id], timeout=120)
    assert job.status == "done" and starts(store, job_id) == 2
    smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
    time.sleep(1)
    subjects = Counter(m["Subject"] for m in smtp_server.to("restart@example.com"))
    assert subjects == {"Your images are being collected": 1, "Your images are ready": 1}


def test_zips_on_s3_download_from_another_web_process_until_the_link_expires(processes, store, smtp_server,
                                                                             s3_server):
    bucket = s3_server.create_bucket()
    s3 = {"STORAGE_URL": f"s3://{bucket}/zips", "S3_ENDPOINT_URL": s3_server.endpoint_url,
          "AWS_REGION": s3_server.region, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "LINK_TTL_MINUTES": "0.25", "SCHEDULER": "worker"}
    web_a, web_b = processes.procfile_web(**s3), processes.procfile_web(**s3)
    processes.worker(**s3, PUBLIC_URL=web_a.url)
    job_id = web_a.submit("s3@example.com", datetime.now(UTC), 4)
    messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=120)
    link = _link([m for m in messages if "are ready" in m["Subject"]][0])
    issued = time.monotonic()
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [f"zips/{job_id}.zip"]  # the zip lives in the bucket, not on a dyno's disk

    other = link.replace(web_a.url, web_b.url)  # a web process that did not run the job
    redirect = requests.get(other, timeout=30, allow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith(s3_server.endpoint_url)
    response = requests.get(other, timeout=30)
    assert response.status_code == 200 and len(_images_in(response.content)) == 4

    time.sleep(max(0.0, 15 + 2 - (time.monotonic() - issued)))
    expired = requests.get(other, timeout=30, allow_redirects=False)
    assert expired.status_code == 410
    assert "This download link has expired" in expired.text
