"""robots.txt for each host of a crawl, parsed with protego (Google's rules: wildcards, longest match, Crawl-delay).

A missing robots.txt (4xx) allows everything; one that cannot be read (5xx, a timeout) forbids the host for this
crawl, as Google does; a file over 500 KB is read up to that size.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from protego import Protego

logger = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 500 * 1024
# fetch(url) -> (HTTP status, text); a status of 0 means the file could not be fetched at all.
Fetch = Callable[[str], tuple[int, str]]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Robots:
    """The robots.txt rules of every host met, fetched once per host, shared by the crawl's threads."""

    def __init__(self, fetch: Fetch, user_agent: str) -> None:
        self.fetch = fetch
        self.user_agent = user_agent
        self._rules: dict[str, Protego | None] = {}  # None: the host forbids everything (unreadable robots.txt)
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self.statuses: dict[str, int] = {}  # origin -> the status robots.txt was answered with (0: no answer)

    def rules(self, url: str) -> Protego | None:
        key = origin(url)
        with self._lock:
            one = self._fetching.setdefault(key, threading.Lock())
        with one:
            if key not in self._rules:
                self._rules[key] = self._load(key)
            return self._rules[key]

    def _load(self, key: str) -> Protego | None:
        status, text = self.fetch(f"{key}/robots.txt")
        self.statuses[key] = status
        if 400 <= status < 500:
            return Protego.parse("")
        if status != 200:
            logger.warning("robots.txt of %s could not be read (status %s): the host is not crawled", key, status)
            return None
        return Protego.parse(text[:MAX_ROBOTS_BYTES])

    def why_not(self, url: str) -> str:
        """Why ``url`` is not allowed, in words for the user."""
        status = self.statuses.get(origin(url))
        if status == 0:
            return "the site did not answer"
        if status is not None and status >= 500:
            return f"its robots.txt could not be read (HTTP {status})"
        return "robots.txt of the site forbids it"

    def allowed(self, url: str) -> bool:
        rules = self.rules(url)
        return rules is not None and rules.can_fetch(url, self.user_agent)

    def delay(self, url: str) -> float:
        """The host's Crawl-delay in seconds (0 when it names none)."""
        rules = self.rules(url)
        value = rules.crawl_delay(self.user_agent) if rules is not None else None
        return float(value or 0.0)

    def sitemaps(self, url: str) -> list[str]:
        rules = self.rules(url)
        return list(rules.sitemaps) if rules is not None else []
