"""Per-host politeness: at most ``per_host`` requests at a time, ``delay`` seconds between starts, and holds.

A host's delay is the larger of CRAWL_DELAY_SECONDS and its robots.txt Crawl-delay (capped at MAX_DELAY); a 429
or 503 holds the host until the time its Retry-After asked for.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

MAX_DELAY = 60.0  # a robots.txt asking for more is taken at this


class Stopped(Exception):
    """The crawl is ending: no new request starts."""


class Manners:
    """Turns for requests to each host; used from every discovery thread."""

    def __init__(self, per_host: int, delay: float, stop: threading.Event) -> None:
        if per_host < 1:
            raise ValueError("per_host must be at least 1")
        self.per_host, self.delay, self.stop = per_host, max(0.0, delay), stop
        self._busy: Counter[str] = Counter()
        self._next: dict[str, float] = {}
        self._delays: dict[str, float] = {}
        self._changed = threading.Condition()

    def set_delay(self, host: str, seconds: float) -> None:
        with self._changed:
            self._delays[host] = min(MAX_DELAY, max(self.delay, seconds))

    def hold(self, host: str, until: float) -> None:
        """No new request to ``host`` before ``until`` (``time.monotonic()``)."""
        with self._changed:
            self._next[host] = max(self._next.get(host, 0.0), until)

    @contextmanager
    def turn(self, host: str) -> Iterator[None]:
        """Wait for a free slot of ``host`` and its delay, hold the slot for the block; raise Stopped if ending."""
        with self._changed:
            while True:
                if self.stop.is_set():
                    raise Stopped()
                now = time.monotonic()
                start = self._next.get(host, 0.0)
                if self._busy[host] < self.per_host and start <= now:
                    break
                self._changed.wait(timeout=min(0.2, max(0.005, start - now)))
            self._busy[host] += 1
            self._next[host] = now + self._delays.get(host, self.delay)
        try:
            yield
        finally:
            with self._changed:
                self._busy[host] -= 1
                self._changed.notify_all()
