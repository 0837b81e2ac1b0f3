"""Benchmark a ten-class dataset job (10 queries x 200 images) from its start to the "done" email, and its memory.

Run: ``.venv/bin/python bench/dataset.py [--classes 10] [--count 200] [--runs 2]``

Targets (issue 12): 2,000 images in ten classes on the local stand-ins, whole job under 30 s, peak memory under
250 MB, the zip written streaming (memory does not grow with the zip). The image server runs in its own process;
the candidates come from the Openverse stand-in (tests/fixtures/openlicence.py, no browser), which runs here with
a real SMTP server (aiosmtpd) and the app (SQLite, scheduler on, the job submitted through the API with a key).
A first run warms the image server's cache, so its own image generation is not counted. A sampler thread reads
this process's resident memory every 20 ms, and notes it while the zip's .partial file is being written.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import sys  # noqa: E402

sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from bench.job import done_email_arrival, shut_down, start_image_process  # noqa: E402
from db import get_store  # noqa: E402
from tests.fixtures.openlicence import start_open_apis  # noqa: E402
from tests.fixtures.smtp import SMTPServer  # noqa: E402

API_KEY = "bench-key"
QUERIES = ("red panda", "snow leopard", "fennec fox", "arctic hare", "barn owl", "sea otter", "koi carp",
           "monarch butterfly", "giant tortoise", "emperor penguin", "honey bee", "blue whale")
PAGE = 4096
MIB = 1024 * 1024


def rss_mb() -> float:
    """Resident memory of this process, in MiB (as ru_maxrss below)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / MIB


class Sampler:
    """This process's resident memory every 20 ms: the peak, and the values while a zip is being written."""

    def __init__(self, zips: Path) -> None:
        self.zips, self.peak, self.while_zipping = zips, 0.0, []

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.02):
            now = rss_mb()
            self.peak = max(self.peak, now)
            partial = next(self.zips.glob("*.partial"), None) if self.zips.exists() else None
            if partial is not None:
                try:
                    self.while_zipping.append((partial.stat().st_size / MIB, now))
                except FileNotFoundError:
                    pass


@contextmanager
def sampling(zips: Path) -> Iterator[Sampler]:
    """Sample memory in a thread while the block runs."""
    sampler, stop = Sampler(zips), threading.Event()
    thread = threading.Thread(target=sampler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield sampler
    finally:
        stop.set()
        thread.join(timeout=5)


def run_job(app, smtp: SMTPServer, queries: list[str], count: int, index: int) -> tuple[float, object]:
    email = f"dataset{index}@example.com"
    now = datetime.now(UTC)
    response = app.test_client().post("/api/jobs", headers={"Authorization": f"Bearer {API_KEY}"}, json={
        "search-query": queries, "email": email, "images": count, "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H:%M:%S")})
    if response.status_code != 201:
        raise SystemExit(f"submission refused: {response.get_json()}")
    job_id = response.get_json()["id"]
    arrived = done_email_arrival(smtp, email, job_id, 600)
    with app.app_context():
        job = get_store(app).get_job(job_id)
        events = get_store(app).events(job_id)
    marks = [(e.at, e.message) for e in events if e.message.startswith(("class ", "zip written", "job started"))]
    steps = [f"{message.split(':')[0]} +{(at - marks[0][0]).total_seconds():.1f} s" for at, message in marks[1:]]
    print("  each step's start after the job's: " + ", ".join(steps))
    return (arrived - job.started_at).total_seconds(), job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    queries = list(QUERIES[: args.classes])

    image_proc, image_base = start_image_process()
    apis = start_open_apis(image_base)
    smtp = SMTPServer().start()
    with tempfile.TemporaryDirectory(prefix="aid-bench-dataset-") as tmp:
        app = create_app({
            "SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "DATA_DIR": f"{tmp}/data",
            "SCHEDULER_START": True, "IMAGE_SOURCES": ["openverse"], "OPENVERSE_URL": apis.openverse_url,
            "ALLOW_PRIVATE_URLS": True, "LOG_LEVEL": "WARNING", "API_KEYS": [API_KEY], "MAX_CLASSES": args.classes,
            "RATELIMIT_ENABLED": False, **smtp.settings()})
        zips = Path(tmp) / "data" / "zips"
        try:
            print(f"baseline: {rss_mb():.0f} MiB resident before the first job")
            seconds, job = run_job(app, smtp, queries, args.count, 0)
            print(f"warm-up run (the image server generates every image): {job.delivered} images in {seconds:.1f} s")
            for run in range(1, args.runs + 1):
                with sampling(zips) as sampler:
                    seconds, job = run_job(app, smtp, queries, args.count, run)
                zip_path = zips / job.zip_name
                with zipfile.ZipFile(zip_path) as archive:
                    names = archive.namelist()
                # The class folders sit beside manifest.csv (inside the one folder named after the job, if any).
                root = next(n for n in names if n.endswith("manifest.csv"))[: -len("manifest.csv")]
                inside = [n[len(root):] for n in names if n.startswith(root)]
                folders = {n.split("/")[0] for n in inside if "/" in n}
                zipping = sampler.while_zipping
                print(f"run {run}: {job.delivered} of {args.classes * args.count} images in {len(folders)} class "
                      f"folders, start to 'done' email in {seconds:.2f} s; zip {job.zip_bytes / MIB:.0f} MiB")
                if zipping:
                    first, last = zipping[0], zipping[-1]
                    top = max(mb for _, mb in zipping)
                    print(f"  memory while the zip grew from {first[0]:.0f} MiB to {last[0]:.0f} MiB "
                          f"({len(zipping)} samples): {first[1]:.0f} MiB at its start, at most {top:.0f} MiB, "
                          f"{last[1]:.0f} MiB at its end")
                print(f"  peak resident memory of this process during the run: {sampler.peak:.0f} MiB")
        finally:
            shut_down(app, (smtp, apis), image_proc)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory over the whole benchmark (ru_maxrss; app, stand-in API, SMTP server, "
          f"warm-up included): {maxrss:.0f} MiB (target < 250 MB); the image server is another process")


if __name__ == "__main__":
    main()
