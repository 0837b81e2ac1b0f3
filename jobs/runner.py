"""Run one scheduled job exactly once: claim it, email, build the dataset, finish it, email again."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask

from crawler import Progress
from db import CANCELLED, DONE, FAILED, ImageUrl, Job, get_store
from jobs import files
from jobs.classes import job_queries
from jobs.crawl_job import build_crawl
from jobs.notify import notify
from jobs.pipeline import JobFailed, JobInterrupted, build_dataset
from scraper import ScraperError
from storage import StorageError, get_storage

log = logging.getLogger(__name__)
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
UNEXPECTED = "an unexpected error stopped the job (it has been logged for us to fix)"
PROGRESS_SECONDS = 1.0  # a running job's progress reaches the database this often at most (and at least)
PREVIEWS = 8  # thumbnails of the first images on the finished job's page


def _now() -> datetime:
    return datetime.now(UTC)


class Heartbeat:
    """Tell the database, every few seconds, that this worker still runs the job; write its progress within
    PROGRESS_SECONDS of each change (one write per tick at most, not one per image); notice a cancellation."""

    def __init__(self, store, job_id: str, worker: str, interval: float, tick: float = PROGRESS_SECONDS):
        self.store, self.job_id, self.worker = store, job_id, worker
        self.interval, self.tick = interval, tick
        self.progress: dict = {}
        self.cancelled = threading.Event()  # set once the job was cancelled (or deleted) in the database
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def update(self, **progress) -> None:
        self.progress.update(progress)

    def _beat(self) -> None:
        written: dict = {}
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            progress = dict(self.progress)
            try:
                if progress != written or time.monotonic() - last >= self.interval:
                    self.store.heartbeat(self.job_id, self.worker, _now(), **progress)
                    written, last = progress, time.monotonic()
                job = self.store.get_job(self.job_id)
                if job is None or job.status == CANCELLED:
                    self.cancelled.set()
            except Exception as exc:  # noqa: BLE001 - a missed beat is logged; the next one may succeed
                log.warning("heartbeat of job %s failed: %s", self.job_id, exc)


class _Recorder:
    """Write down what a running job does: its event log, the URLs it collected, its heartbeat's progress."""

    def __init__(self, store, job: Job, beat: Heartbeat):
        self.store, self.job, self.beat = store, job, beat
        self.stored = len(store.image_urls(job.id))  # a job run again appends after what it stored before

    def event(self, message: str) -> None:
        self.store.log_event(self.job.id, message)

    def candidates(self, batch) -> None:
        self.store.add_image_urls([
            ImageUrl(job_id=self.job.id, email=self.job.email, url=c.image_url, page_url=c.page_url, title=c.title,
                     source=c.source, position=self.stored + i)
            for i, c in enumerate(batch)
        ])
        self.stored += len(batch)
        self.beat.update(phase="downloading", candidates=self.stored)

    def progress(self, delivered: int, want: int) -> None:
        self.beat.update(delivered=delivered)

    def crawled(self, progress: Progress) -> None:
        """A crawl's progress: image URLs found so far as the candidates, images kept as delivered."""
        self.beat.update(phase="downloading", candidates=progress.images_kept + progress.images_pending,
                         delivered=progress.images_kept)


def _was_cancelled(store, job_id: str) -> bool:
    job = store.get_job(job_id)
    return job is None or job.status == CANCELLED


def _build(app: Flask, store, job: Job, beat: Heartbeat, should_stop) -> tuple[str | None, dict]:
    """Run the pipeline; return the job's final status (None: put it back in the queue) and its result fields."""
    recorder = _Recorder(store, job, beat)
    crawl = job.options.get("mode") == "crawl"
    keep_work = False  # an interrupted crawl keeps its folder: run again here, it continues from the Store's state
    try:
        if crawl:
            outcome = build_crawl(
                store, job.id, job.count, job.options, app.config, files.work_dir(app, job.id),
                files.zip_path(app, job.id), site=job.query, event=recorder.event, progress=recorder.crawled,
                should_stop=should_stop, thumbnails=PREVIEWS,
            )
        else:
            outcome = build_dataset(
                job_queries(job.query, job.options), job.count, job.options, app.config,
                files.work_dir(app, job.id), files.zip_path(app, job.id),
                event=recorder.event, on_candidates=recorder.candidates, progress=recorder.progress,
                should_stop=should_stop, thumbnails=PREVIEWS,
            )
        if beat.cancelled.is_set():
            return CANCELLED, {}
        get_storage(app).save(job.id, outcome.zip_path)
        files.keep_thumbnails(app, job.id, outcome.thumbnails)
    except JobInterrupted:
        keep_work = crawl and not beat.cancelled.is_set()
        return (CANCELLED if beat.cancelled.is_set() else None), {}
    except Exception as exc:
        if beat.cancelled.is_set() or _was_cancelled(store, job.id):  # e.g. its folder went with the cancellation
            log.info("job %s stopped after it was cancelled: %s", job.id, exc)
            return CANCELLED, {}
        if should_stop():
            # Whatever broke while the process was shutting down is not the job's fault: run it again.
            log.info("job %s stopped during shutdown: %s", job.id, exc)
            return None, {}
        if isinstance(exc, JobFailed | ScraperError | StorageError):
            store.log_event(job.id, f"job failed: {exc}", "error")
            return FAILED, {"error": str(exc)}
        log.exception("job %s failed unexpectedly", job.id)
        store.log_event(job.id, "job failed: unexpected error", "error")
        return FAILED, {"error": UNEXPECTED}
    finally:
        if not keep_work:
            shutil.rmtree(files.work_dir(app, job.id), ignore_errors=True)
    store.log_event(job.id, f"job done: {outcome.delivered} of {outcome.wanted} images")
    return DONE, {"delivered": outcome.delivered, "candidates": outcome.candidates,
                  "zip_name": outcome.zip_path.name, "zip_bytes": outcome.zip_bytes, "note": outcome.note}


def run_job(app: Flask, job_id: str, worker: str = WORKER_ID,
            should_stop: Callable[[], bool] | None = None) -> str | None:
    """Run the job if this worker wins the claim; return its final status, or None when not claimed.

    ``should_stop`` tells a job that the process is shutting down: the job stops at the next safe point and is
    put back in the queue, to run again (once) in this or another process.
    """
    should_stop = should_stop or (lambda: False)
    with app.app_context():
        store = get_store(app)
        if should_stop() or not store.claim_job(job_id, worker, _now()):
            log.info("job %s was claimed elsewhere or is no longer queued", job_id)
            return None
        job = store.get_job(job_id)
        if job is None:  # deleted since the claim
            return None
        store.log_event(job_id, "job started" if job.attempts <= 1 else f"job started again (attempt {job.attempts})")
        notify(store, job, "started")
        store.heartbeat(job_id, worker, _now(), phase="collecting")
        interval = max(1.0, int(app.config["STALE_JOB_SECONDS"]) / 4)
        with Heartbeat(store, job_id, worker, interval) as beat:
            beat.update(phase="collecting")
            status, fields = _build(app, store, job, beat, lambda: should_stop() or beat.cancelled.is_set())
        if status == CANCELLED:
            files.delete_all(app, job_id)
            log.info("job %s stopped: it was cancelled", job_id)
            return CANCELLED
        if status is None:
            released = store.release_job(job_id, worker, _now())
            store.log_event(job_id, "the job was stopped by a restart; it will run again", "warning")
            log.info("job %s interrupted by shutdown; released to the queue: %s", job_id, released)
            return None
        if not store.finish_job(job_id, worker, status, _now(), **fields):
            current = store.get_job(job_id)
            if current is None or current.status == CANCELLED:  # cancelled after the last beat: nothing is kept
                files.delete_all(app, job_id)
                return CANCELLED
            log.warning("job %s was taken from worker %s before it finished; its result is dropped", job_id, worker)
            return None
        finished = store.get_job(job_id)
        if finished is not None:
            notify(store, finished, "done" if status == DONE else "failed")
        return status
