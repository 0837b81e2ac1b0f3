"""Crawl one website for its images: seed 004's coordinator, discovery workers and download workers.

Public surface::

    from crawler import Coordinator, CrawlOptions, open_file

    options = CrawlOptions.from_config(app.config, max_images=500, render="http", scope="host")
    coordinator = Coordinator(start_url, out_dir, options, progress=None)
    problem = coordinator.problem()                     # a sentence when the crawl cannot start, else None
    state = open_file(out_dir)                          # out_dir/crawl-state.sqlite3, created or resumed
                                                        # (a web job: store.crawl_state(job_id), same interface)
    summary = coordinator.run(state)

- The *coordinator* owns the state (``db.crawl_state.CrawlState``, SQLite or Cassandra: frontier, pages visited,
  image URLs seen, images saved; written as it changes, so a killed crawl resumes) and hands out work.
  *Discovery workers* open pages (``http``: requests and selectolax; ``browser``: one headless Chromium each,
  behind a filtering proxy that applies the address guard to every request) and return what a page yields
  (``extract``). The *download worker* is ``downloader``'s stage,
  run on batches of pending images.
- Scope: the start URL's host (or registrable domain), --include/--exclude, --depth, --max-pages, URL length;
  robots.txt (protego) with Crawl-delay; per-host politeness (CRAWL_PER_HOST, CRAWL_DELAY_SECONDS) and back-off
  on 429/503 honouring Retry-After.
- Output in ``out_dir``: ``images/<name>.<ext>``, ``metadata/<name>.json``, ``images/<width>/`` per --widths,
  ``manifest.csv`` and ``failures.csv``.

Errors: one page's or image's problem is data (failures.csv); ``Coordinator.problem()`` says why a crawl cannot begin;
anything else is a bug and propagates from ``run()`` after every worker and browser has stopped.
"""

from typing import TYPE_CHECKING, Any

from .options import CrawlOptions

if TYPE_CHECKING:
    from .coordinator import Coordinator, Progress, Summary
    from .state import CrawlState, open_file

_LAZY = {"Coordinator": "coordinator", "Progress": "coordinator", "Summary": "coordinator", "CrawlState": "state",
         "open_file": "state"}


def __getattr__(name: str) -> Any:
    # The coordinator pulls in the download stage (Pillow, NumPy), requests, Selenium and the state's databases:
    # imported on first use, so the web forms' crawl-field checks (``crawler.options``) and `flask fetch` start
    # without them.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Coordinator", "CrawlOptions", "CrawlState", "Progress", "Summary", "open_file"]
