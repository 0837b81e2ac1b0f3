"""One crawl's persistent state (frontier, pages visited, image URLs seen, images saved): the interface and its records.

Implemented by ``db.sqlite_crawl.SQLiteCrawlState`` (the CLI's file in OUT_DIR, and the crawl jobs of the SQLite
store) and ``db.cassandra.crawl.CassandraCrawlState``; a web crawl job gets its own from ``Store.crawl_state``.
The crawler's coordinator uses only this interface.

The model, the same on every backend: rows are keyed by canonical URL and never deleted while the crawl lives; a
page goes ``queued`` -> ``visited`` (or ``failed``), an image ``pending`` -> ``saved`` (or ``failed``,
``duplicate``); each row has a sequence number, and the frontier is read forward from a cursor over it. Every
change is written as it happens, so a crawl killed at any moment resumes where it was. One crawl has one writer
(its coordinator, from several threads): implementations are thread-safe within a process.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

PAGE_STATUSES = ("queued", "visited", "failed")
IMAGE_STATUSES = ("pending", "saved", "failed", "duplicate")
# (canonical URL, URL to fetch, depth) of a page; (canonical URL, URL to fetch, metadata) of an image
PageLink = tuple[str, str, int]
ImageFind = tuple[str, str, dict]
# (canonical URL, status "failed" or "duplicate", kind, reason) of an image the download stage or the Keeper refused
Refusal = tuple[str, str, str, str]


@dataclass(frozen=True)
class QueuedPage:
    url: str  # canonical
    fetch_url: str
    depth: int
    seq: int


@dataclass(frozen=True)
class PendingImage:
    url: str  # canonical
    fetch_url: str
    seq: int
    info: dict  # page URL, page title, alt, title, caption, tags, depth, discovered at, srcset widths


@dataclass(frozen=True)
class SavedImage:
    url: str
    seq: int
    file: str
    width: int
    height: int
    bytes: int
    sha256: str
    phash: str
    info: dict


class CrawlState(abc.ABC):
    """What the coordinator needs from a crawl's state."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what this object holds (the state itself stays)."""

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None:
        """The crawl's own value for ``key`` (e.g. its start URL), or None."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Set the crawl's value for ``key``."""

    @abc.abstractmethod
    def add_pages(self, pages: Iterable[PageLink]) -> int:
        """Queue the pages not seen before; return how many were new."""

    @abc.abstractmethod
    def queued(self, after: int, limit: int) -> list[QueuedPage]:
        """The next ``limit`` queued pages with a sequence number above ``after``, oldest first."""

    @abc.abstractmethod
    def page_visited(self, url: str, links: Iterable[PageLink], images: Iterable[ImageFind]) -> tuple[int, int]:
        """Queue what the page ``url`` yielded (what is new), then mark it visited; return (new pages, new images)."""

    @abc.abstractmethod
    def page_failed(self, url: str, reason: str) -> None:
        """Mark the page ``url`` failed, with why."""

    @abc.abstractmethod
    def pending(self, after: int, limit: int) -> list[PendingImage]:
        """The next ``limit`` pending images with a sequence number above ``after``, oldest first."""

    @abc.abstractmethod
    def images_done(self, saved: Iterable[SavedImage], refused: Iterable[Refusal]) -> None:
        """Record saved images and refused ones."""

    @abc.abstractmethod
    def saved(self) -> list[SavedImage]:
        """Every saved image, oldest first."""

    @abc.abstractmethod
    def saved_image(self, seq: int) -> SavedImage | None:
        """The saved image of sequence number ``seq``, or None."""

    @abc.abstractmethod
    def kept_hashes(self) -> Iterator[tuple[int, str, str, str, int]]:
        """(seq, url, sha256, phash, pixel area) of every saved image, oldest first."""

    @abc.abstractmethod
    def failures(self) -> list[tuple[str, str, str]]:
        """(URL, reason, kind) of every refused image, then of every failed page (kind "page")."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """Pages by status and images by status, e.g. {"pages_visited": 10, "images_saved": 4, ...}."""
