"""One job's work, without web, database or email: collect candidates, download and check them, zip them.

Used by the scheduled job (jobs.runner) and by ``flask run-job``. Stages pass plain data: candidates from
``scraper``, images and failures from ``downloader``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from downloader import DownloadOptions, download_images, write_zip
from scraper import Candidate, Collector

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """The job cannot deliver anything; the message is written for the user."""


class JobInterrupted(Exception):
    """The process is shutting down: the job stopped at a safe point and can run again from the start."""


@dataclass
class Outcome:
    delivered: int
    candidates: int
    zip_path: Path
    zip_bytes: int
    note: str | None = None
    engines: list = field(default_factory=list)


def build_dataset(
    query: str,
    count: int,
    options: Mapping,
    config: Mapping,
    work: Path,
    zip_file: Path,
    *,
    event: Callable[[str], None] = lambda message: None,
    on_candidates: Callable[[list[Candidate]], None] = lambda batch: None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Outcome:
    """Collect, download, validate and de-duplicate ``count`` images of ``query`` into ``zip_file``."""
    shutil.rmtree(work, ignore_errors=True)  # a job run again starts from a clean folder
    work.mkdir(parents=True)
    zip_file.parent.mkdir(parents=True, exist_ok=True)
    download_options = DownloadOptions.from_config(
        config,
        formats=set(options.get("formats") or []) or None,
        min_width=int(options.get("min_width") or 0),
        min_height=int(options.get("min_height") or 0),
    )
    collected = 0

    with Collector.from_config(query, config, log=event) as collector:
        def more(k: int) -> list[Candidate]:
            nonlocal collected
            if should_stop is not None and should_stop():
                return []
            event(f"collecting up to {k} image links")
            batch = collector.collect(k)
            collected += len(batch)
            on_candidates(batch)
            event(f"{len(batch)} new image links ({collected} in all)")
            return batch

        result = download_images(more, count, work, download_options, progress=progress, should_stop=should_stop)
        engines = [(r.engine, r.count, r.stopped) for r in collector.reports]

    if should_stop is not None and should_stop():
        raise JobInterrupted("the process is shutting down")

    if not result.images:
        reason = result.shortfall_reason or "no usable image was found"
        raise JobFailed(f"no images could be delivered for “{query}”: {reason}")
    size = write_zip(result, work, zip_file)
    note = result.shortfall_reason if result.shortfall else None
    event(f"zip written: {len(result.images)} images, {size} bytes")
    return Outcome(delivered=len(result.images), candidates=collected, zip_path=zip_file, zip_bytes=size, note=note,
                   engines=engines)
