"""Where the CLI keeps a crawl's state: an SQLite file in OUT_DIR (``db.sqlite_crawl``, the same code as the
SQLite store's crawl jobs). The records and the interface the coordinator uses are ``db.crawl_state``'s."""

from __future__ import annotations

from pathlib import Path

from db.crawl_state import CrawlState, PendingImage, QueuedPage, SavedImage
from db.sqlite_crawl import SQLiteCrawlState

STATE_FILE = "crawl-state.sqlite3"

__all__ = ["STATE_FILE", "CrawlState", "PendingImage", "QueuedPage", "SavedImage", "exists", "open_file"]


def open_file(out_dir: Path) -> SQLiteCrawlState:
    """The state file in ``out_dir``: created, or the one a stopped crawl left."""
    return SQLiteCrawlState(Path(out_dir) / STATE_FILE)


def exists(out_dir: Path) -> bool:
    return (Path(out_dir) / STATE_FILE).exists()
