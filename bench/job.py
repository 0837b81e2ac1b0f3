"""Benchmark a whole job, and its download/validate/zip stage alone, against the local engine and image server.

Run: ``.venv/bin/python bench/job.py [--count 500] [--runs 3]``

Targets (core issue): 500 images of 50 to 400 KB, from the job's start to the "done" email, in at most 20 s;
the download, validation and zip stage alone in at most 3 s. The image server runs in its own process; the fixture
Bing, a real SMTP server (aiosmtpd) and the app (SQLite, scheduler on) run here. The image server's cache is
warmed first, so its own image generation is not counted.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from db import get_store  # noqa: E402
from downloader import DownloadOptions, download_images, write_zip  # noqa: E402
from scraper import Collector  # noqa: E402
from tests.fixtures.engines import start_engines  # noqa: E402
from tests.fixtures.smtp import SMTPServer  # noqa: E402

QUERY = "red panda"
CONFIRM = "Confirm your email address"  # the subject of the consent email a job's address gets first


def start_image_process() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.images"], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def stop_process(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # the image server stops when its stdin closes
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def shut_down(app, servers: tuple, image_proc: subprocess.Popen) -> None:
    """Stop the app's scheduler, then the benchmark's servers, then the image server process."""
    scheduler = app.extensions.get("scheduler")
    if scheduler is not None:
        scheduler.shutdown(wait=False)
    for server in servers:
        server.stop()
    stop_process(image_proc)


def collect_candidates(config: dict, want: int) -> list:
    with Collector.from_config(QUERY, config) as collector:
        return collector.collect(want)


def warm(candidates: list) -> int:
    """Fetch every candidate once so the image server has generated and cached it."""
    total = 0
    with requests.Session() as session:
        for candidate in candidates:
            total += len(session.get(candidate.image_url, timeout=30).content)
    return total


def time_stage(config: dict, candidates: list, count: int) -> tuple[float, int]:
    pool = list(candidates)

    def more(k: int) -> list:
        batch, pool[:] = pool[:k], pool[k:]
        return batch

    with tempfile.TemporaryDirectory(prefix="aid-bench-") as work:
        started = time.perf_counter()
        result = download_images(more, count, Path(work) / "job", DownloadOptions.from_config(config))
        write_zip(result, Path(work) / "job", Path(work) / "images.zip")
        return time.perf_counter() - started, len(result.images)


def done_email_arrival(smtp: SMTPServer, email: str, job_id: str, timeout: float) -> datetime:
    """When the job's 'done' email reached the SMTP server (polled every 50 ms, at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m["To"] == email and "are ready" in m["Subject"] for m in smtp.messages):
            return datetime.now(UTC)
        time.sleep(0.05)
    raise SystemExit(f"job {job_id} sent no 'done' email within {timeout:g} s")


def confirm_address(client, smtp: SMTPServer, email: str) -> None:
    """Open the emailed confirmation link and press its button, as the address's owner does: no job of an address
    runs before that (see README, Consent before any email)."""
    messages = smtp.wait_for(lambda msgs: any(m["To"] == email and m["Subject"] == CONFIRM for m in msgs), 30)
    message = [m for m in messages if m["To"] == email and m["Subject"] == CONFIRM][-1]
    path = re.search(r"http://[^/\s]+(/confirm/\S+)", message.get_body(("plain",)).get_content())[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))[1]
    confirmed = client.post(path, data={"csrf_token": token})
    if confirmed.status_code != 200:
        raise SystemExit(f"confirming {email} failed: HTTP {confirmed.status_code}")


def time_job(app, smtp: SMTPServer, count: int, index: int) -> tuple[float, int]:
    """Submit a job due now and confirm its address; time from its start (claim) to the 'done' email arriving at
    the SMTP server."""
    email = f"bench{index}@example.com"
    now = datetime.now(UTC)
    client = app.test_client()
    response = client.post("/api/jobs", json={
        "search-query": QUERY, "email": email, "images": count, "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H:%M:%S")})
    job_id = response.get_json()["id"]
    confirm_address(client, smtp, email)
    arrived = done_email_arrival(smtp, email, job_id, 180)
    with app.app_context():
        job = get_store(app).get_job(job_id)
    return (arrived - job.started_at).total_seconds(), job.delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    image_proc, image_base = start_image_process()
    engines = start_engines(image_base, image_kb=(50, 400))
    smtp = SMTPServer().start()
    with tempfile.TemporaryDirectory(prefix="aid-bench-app-") as tmp:
        app = create_app({
            "SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DATA_DIR": f"{tmp}/data",
            "SCHEDULER_START": True, "BING_URL": engines.bing_url, "IMAGE_SOURCES": ["bing"],
            "ALLOW_PRIVATE_URLS": True, "LOG_LEVEL": "WARNING", **smtp.settings()})
        try:
            candidates = collect_candidates(app.config, int(args.count * 1.6))
            warmed = warm(candidates)
            sizes = sorted(len(requests.get(c.image_url, timeout=30).content) for c in candidates[:args.count])
            print(f"{len(candidates)} candidates warmed ({warmed / 1e6:.0f} MB); the first {args.count}: "
                  f"{sizes[0] // 1024}-{sizes[-1] // 1024} KB, median {statistics.median(sizes) / 1024:.0f} KB")
            stage, jobs = [], []
            for run in range(args.runs):
                seconds, delivered = time_stage(app.config, candidates, args.count)
                stage.append(seconds)
                print(f"stage run {run + 1}: {delivered} images downloaded, validated, de-duplicated and zipped "
                      f"in {seconds:.2f} s ({delivered / seconds:.0f} images/s)")
            for run in range(args.runs):
                seconds, delivered = time_job(app, smtp, args.count, run)
                jobs.append(seconds)
                print(f"job run {run + 1}: {delivered} images, from the job's start to the 'done' email in "
                      f"{seconds:.2f} s")
            print(f"download+validate+zip stage: best {min(stage):.2f} s, worst {max(stage):.2f} s (target <= 3 s)")
            print(f"whole job, start to 'done' email: best {min(jobs):.2f} s, worst {max(jobs):.2f} s "
                  f"(target <= 20 s)")
        finally:
            shut_down(app, (smtp, engines), image_proc)


if __name__ == "__main__":
    main()
