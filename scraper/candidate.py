"""The record every search engine returns for one image result."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Candidate:
    """One image found by a search engine: the original image URL, where it came from and, from the licence-aware
    sources, its licence (None from the search engines, which give none)."""

    image_url: str
    page_url: str | None = None
    title: str | None = None
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None
    source: str = ""  # engine name: bing, duckduckgo, google, openverse, wikimedia
    license: str | None = None  # lower-case code: by, by-sa, cc0, pdm ... (see scraper.licences)
    license_version: str | None = None  # "4.0"
    license_url: str | None = None
    creator: str | None = None  # plain text
    attribution: str | None = None  # the source's own credit text, plain

    def to_dict(self) -> dict:
        return asdict(self)
