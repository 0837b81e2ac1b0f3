"""A crawl job's work: crawl its website through ``crawler`` with its state in the Store, then zip the result.

The zip holds ``<site>-<N>-images/`` with ``images/``, ``metadata/``, ``manifest.csv`` and ``failures.csv``, as
``flask crawl`` writes them. The crawl state lives in the Store (``Store.crawl_state``) while the job exists; a
job run again after its process was killed continues that crawl when its work folder is still there (the same
machine), else starts it over. A cancellation or shutdown stops the crawl at its next safe point (between pages,
between download batches).
"""

from __future__ import annotations

import logging
import os
import threading
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from crawler import Coordinator, CrawlOptions, CrawlState, Progress, Summary
from db import Store
from downloader.validate import thumbnail_of
from jobs.files import folder_name
from jobs.links import human_size
from jobs.pipeline import JobFailed, JobInterrupted, Outcome

log = logging.getLogger(__name__)

CRAWL_DIR = "crawl"  # inside the job's work folder: what the crawler writes
ZIPPED = ("images", "metadata")  # folders of the crawl that go into the zip, with manifest.csv and failures.csv
STOP_POLL_SECONDS = 0.5


def crawl_options(job_options: Mapping, count: int, config: Mapping) -> CrawlOptions:
    """The crawl's options: the job's choices within MAX_CRAWL_IMAGES and MAX_CRAWL_PAGES, the operator's manners."""
    most_pages = int(config["MAX_CRAWL_PAGES"])
    return CrawlOptions.from_config(
        config, max_images=min(count, int(config["MAX_CRAWL_IMAGES"])),
        max_pages=min(int(job_options.get("max_pages") or most_pages), most_pages),
        depth=int(job_options.get("depth", 20)), render=str(job_options.get("render") or "http"))


def build_crawl(store: Store, job_id: str, count: int, job_options: Mapping, config: Mapping, work: Path,
                zip_file: Path, *, site: str, event: Callable[[str], None],
                progress: Callable[[Progress], None], should_stop: Callable[[], bool],
                thumbnails: int = 0) -> Outcome:
    """Crawl ``job_options["start_url"]`` for ``count`` images into ``work``, zip them into ``zip_file``."""
    start_url = str(job_options["start_url"])
    out_dir = work / CRAWL_DIR
    state = store.crawl_state(job_id)
    if state.get_meta("start_url") is not None and not out_dir.is_dir():
        state.close()  # its files are gone (another machine, or removed): the crawl starts over
        store.delete_crawl_state(job_id)
        state = store.crawl_state(job_id)
    try:
        resumed = state.get_meta("start_url") is not None
        options = crawl_options(job_options, count, config)
        coordinator = Coordinator(start_url, out_dir, options, progress=progress)
        problem = coordinator.problem()
        if problem:
            coordinator.close()
            raise JobFailed(problem)
        out_dir.mkdir(parents=True, exist_ok=True)
        event(f"{'crawl continued' if resumed else 'crawl started'}: {options.render} mode, at most "
              f"{options.max_pages} pages and {options.max_images} images")
        summary = _run(coordinator, state, should_stop)
    finally:
        state.close()
    if should_stop():
        raise JobInterrupted("the crawl stopped at a safe point")
    event(f"crawl ended: {summary.pages_visited} pages visited ({summary.pages_failed} failed), "
          f"{summary.images_kept} images kept, {summary.images_refused} image URLs refused (failures.csv says why)")
    if not summary.images_kept:
        raise JobFailed(f"no images could be delivered from {site}: the crawl found no usable image")
    root = folder_name(site, summary.images_kept)
    size = _zip(out_dir, zip_file, root)
    event(f"zip written: {summary.images_kept} images, {human_size(size)}, in the folder {root}/")
    note = None if summary.images_kept >= count else (
        f"found {summary.images_kept} of {count} images"
        + {"pages": f" within {options.max_pages} pages", None: ": the site has no more pages in scope"}.get(
            summary.stopped, ""))
    found = summary.images_kept + summary.images_refused
    return Outcome(delivered=summary.images_kept, candidates=found, zip_path=zip_file, zip_bytes=size, note=note,
                   wanted=count, thumbnails=_previews(out_dir, work / "previews", thumbnails))


def _run(coordinator: Coordinator, state: CrawlState, should_stop: Callable[[], bool]) -> Summary:
    """Run the crawl; a watcher stops it at the next safe point once ``should_stop`` says so."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_SECONDS):
            if should_stop():
                coordinator.stop.set()
                return

    watcher = threading.Thread(target=watch, name="crawl-stop-watch", daemon=True)
    watcher.start()
    try:
        return coordinator.run(state)
    finally:
        done.set()
        watcher.join(timeout=5)


def _zip(out_dir: Path, zip_file: Path, root: str) -> int:
    """images/, metadata/, manifest.csv and failures.csv inside the folder ``root``, through a .partial file."""
    zip_file.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_file.with_name(zip_file.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for folder in ZIPPED:
            for path in sorted((out_dir / folder).rglob("*")):
                if path.is_file():
                    archive.write(path, f"{root}/{path.relative_to(out_dir).as_posix()}")
        for name in ("manifest.csv", "failures.csv"):
            archive.write(out_dir / name, f"{root}/{name}")
    os.replace(partial, zip_file)
    return zip_file.stat().st_size


def _previews(out_dir: Path, folder: Path, most: int) -> list[Path]:
    """Small JPEGs of the first ``most`` images kept, for the job's page."""
    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for path in sorted(p for p in (out_dir / "images").iterdir() if p.is_file())[:most]:
        try:
            with Image.open(path) as image:
                preview = thumbnail_of(image)
        except (OSError, UnidentifiedImageError) as exc:  # the file was checked when kept; say so and go on
            log.warning("no preview of %s: %s", path.name, exc)
            continue
        target = folder / f"{len(made) + 1}.jpg"
        target.write_bytes(preview)
        made.append(target)
    return made
