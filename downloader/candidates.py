"""What the download stage needs of a candidate: a Protocol, so any collector's records fit without an import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class CandidateLike(Protocol):
    """An image URL to fetch and where it came from (``scraper.Candidate`` is one; so is ``ListedURL``)."""

    @property
    def image_url(self) -> str: ...

    @property
    def page_url(self) -> str | None: ...

    @property
    def title(self) -> str | None: ...

    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class ListedURL:
    """A candidate read from a list of URLs (``flask fetch``) rather than found by a search engine."""

    image_url: str
    page_url: str | None = None
    title: str | None = None
    source: str = "file"
