"""The record every search engine returns for one image result."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Candidate:
    """One image found by a search engine: the original image URL and where it came from."""

    image_url: str
    page_url: str | None = None
    title: str | None = None
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None
    source: str = ""  # engine name: bing, duckduckgo, google

    def to_dict(self) -> dict:
        return asdict(self)
