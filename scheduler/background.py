"""The scheduler of one process: APScheduler's BackgroundScheduler with the app's jobs, poll and upkeep.

Imported only by a process that runs jobs (``scheduler.init_app``): commands such as ``flask fetch`` never load
APScheduler.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from db import StoreError, get_store
from scheduler import tasks

log = logging.getLogger(__name__)


class JobScheduler:
    """One BackgroundScheduler per app and process."""

    def __init__(self, app: Flask):
        self.app = app
        self.key = tasks.register(app)
        self.stopping = threading.Event()  # set on shutdown: running jobs stop at a safe point
        # Ids of date jobs handed to the thread pool and not yet finished: APScheduler has already dropped them
        # from its job store, so without this the poll would add them again while they wait for a thread.
        # Counted, not a set: APScheduler reports a submission only after its job-store pass, so a job that fails
        # at once (the database is down) can report its end first; a set would then keep its id for good, and the
        # poll would never add the job again.
        self._in_flight: Counter[str] = Counter()
        self._in_flight_lock = threading.Lock()
        config = app.config
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={
                "default": ThreadPoolExecutor(int(config["JOB_WORKERS"])),
                "upkeep": ThreadPoolExecutor(1),
            },
            # A late job still runs (misfire_grace_time=None), and at most one copy of it at a time.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    @property
    def running(self) -> bool:
        return self.scheduler.running

    def _track(self, event) -> None:
        with self._in_flight_lock:
            self._in_flight[event.job_id] += 1 if event.code == EVENT_JOB_SUBMITTED else -1
            if self._in_flight[event.job_id] == 0:
                del self._in_flight[event.job_id]

    def start(self) -> None:
        config = self.app.config
        self.scheduler.add_listener(self._track, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
                                    | EVENT_JOB_MISSED)
        self.scheduler.start()
        now = datetime.now(UTC)
        self.scheduler.add_job(tasks.maintain, "interval", args=[self.key], id="upkeep", executor="upkeep",
                               seconds=int(config["CLEANUP_INTERVAL_SECONDS"]), next_run_time=now,
                               replace_existing=True)
        self.scheduler.add_job(tasks.sync, "interval", args=[self.key], id="sync", executor="upkeep",
                               seconds=int(config["POLL_INTERVAL_SECONDS"]), next_run_time=now,
                               replace_existing=True)
        log.info("scheduler started in process %d", os.getpid())

    def schedule(self, job_id: str, run_at: datetime) -> None:
        """Run the job at ``run_at`` (at once if that has passed)."""
        if not self.scheduler.running:
            return
        when = max(run_at, datetime.now(UTC))
        self.scheduler.add_job(tasks.run_job, "date", run_date=when, args=[self.key, job_id], id=f"job:{job_id}",
                               replace_existing=True)

    def sync(self) -> int:
        """Register every queued job this process does not know yet; return how many were added."""
        try:
            queued = get_store(self.app).queued_jobs()
        except StoreError as exc:  # a database outage (or a refused read) is retried at the next poll
            log.warning("could not read queued jobs: %s", exc)
            return 0
        added = 0
        with self._in_flight_lock:
            in_flight = {job_id for job_id, count in self._in_flight.items() if count > 0}
        for job in queued:
            key = f"job:{job.id}"
            if key not in in_flight and self.scheduler.get_job(key) is None:
                self.schedule(job.id, job.run_at)
                added += 1
        return added

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def stop(self, grace: float | None = None) -> bool:
        """Stop taking jobs and give running ones ``grace`` seconds to reach a safe point; True if they did."""
        if not self.scheduler.running:
            return True
        grace = float(self.app.config["SHUTDOWN_GRACE_SECONDS"] if grace is None else grace)
        log.info("scheduler stopping: running jobs have %.0f s to reach a safe point", grace)
        self.stopping.set()
        waiter = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        waiter.start()
        waiter.join(grace)
        if waiter.is_alive():
            log.warning("a job did not stop within %.0f s; it will be recovered as interrupted", grace)
            return False
        return True
