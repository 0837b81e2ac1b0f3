"""The fields of a crawl job (``"mode": "crawl"``): its start URL and limits, checked for the form and the API.

The start URL must be http or https, name a host, hold no user name or password and be at most
CRAWL_MAX_URL_LENGTH characters; its host must resolve to public addresses (the downloads' address guard), unless
the operator trusts it in GUARD_TRUSTED_HOSTS. The crawler checks again when the job runs (addresses can change).
The job's ``query`` is the site (host and port): pages and emails name the site, never show the URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crawler.options import RENDERS, trusted_hosts
from downloader.errors import BlockedURL, DownloadError
from downloader.guard import Guard

DEFAULT_DEPTH = 20
MAX_DEPTH = 50
# _whole_number of jobs.validation: (raw, label, errors, name, low, high, required) -> int | None
Number = Callable[[Any, str, dict, str, int, int, bool], "int | None"]


@dataclass(frozen=True)
class Limits:
    """What the operator allows a crawl job (MAX_CRAWL_IMAGES, MAX_CRAWL_PAGES, the guard's settings)."""

    max_images: int
    max_pages: int
    max_url_length: int
    allow_private: bool
    trusted_hosts: frozenset[str]


def limits(config: Mapping[str, Any]) -> Limits:
    return Limits(int(config["MAX_CRAWL_IMAGES"]), int(config["MAX_CRAWL_PAGES"]),
                  int(config["CRAWL_MAX_URL_LENGTH"]), bool(config.get("ALLOW_PRIVATE_URLS")), trusted_hosts(config))


@dataclass(frozen=True)
class CrawlFields:
    start_url: str
    max_pages: int
    depth: int
    render: str

    @property
    def site(self) -> str:
        parts = urlsplit(self.start_url)
        return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")

    def options(self) -> dict:
        return {"start_url": self.start_url, "max_pages": self.max_pages, "depth": self.depth, "render": self.render}


def start_url_problem(url: str, allowed: Limits) -> str | None:
    """Why ``url`` cannot start a crawl job, in a sentence, or None."""
    if not url:
        return "start URL is required"
    if len(url) > allowed.max_url_length:
        return f"start URL must be at most {allowed.max_url_length} characters"
    if any(ch.isspace() for ch in url):
        return "start URL cannot contain spaces"
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "start URL is not a valid web address"
    if parts.scheme.lower() not in ("http", "https"):
        return "start URL must begin with http:// or https://"
    if not parts.hostname:
        return "start URL must name a website, e.g. https://example.com/"
    if parts.username is not None or parts.password is not None:
        return "start URL cannot contain a user name or password"
    try:
        Guard(allowed.allow_private, allowed.trusted_hosts).addresses(parts.hostname, port)
    except BlockedURL as exc:
        return f"start URL is refused: {exc.reason}; only public websites are crawled"
    except DownloadError as exc:
        return f"start URL cannot be reached: {exc.reason}"
    return None


def check(data: Any, allowed: Limits, errors: dict, number: Number) -> CrawlFields | None:
    """The crawl fields of ``data`` (start-url; max-pages, depth and render optional), or None with ``errors``."""
    url = str(data.get("start-url") or "").strip()
    problem = start_url_problem(url, allowed)
    if problem:
        errors["start-url"] = problem
    max_pages = number(data.get("max-pages"), "most pages", errors, "max-pages", 1, allowed.max_pages, False)
    depth = number(data.get("depth"), "depth", errors, "depth", 0, MAX_DEPTH, False)
    render = str(data.get("render") or "http").strip().lower()
    if render not in RENDERS:
        errors["render"] = f"render must be one of {', '.join(RENDERS)}"
    if problem or {"max-pages", "depth", "render"} & set(errors):
        return None
    return CrawlFields(url, allowed.max_pages if max_pages is None else max_pages,
                       DEFAULT_DEPTH if depth is None else depth, render)
