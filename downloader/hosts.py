"""Per-host politeness of one download stage: how many downloads at once, and until when a host asked us to wait.

The limit starts at ``start`` (DOWNLOAD_PER_HOST) and adapts like Scrapy's AutoThrottle, additive increase and
multiplicative decrease: every answer that comes quickly and without error raises it by one, up to ``most``
(DOWNLOAD_PER_HOST_MAX); a sign of overload (429, 503, 502, 504, a timeout, a refused connection) halves it,
down to one. A 429 or 503, or an answer with Retry-After, also holds the whole host until the time it asked for.
A 404 or a 500 for one file says nothing about the host and changes nothing here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

FAST_ANSWER_SECONDS = 1.0  # headers within this long count as a quick answer


@dataclass
class _Host:
    limit: int
    not_before: float = 0.0


class Hosts:
    """The per-host limits and holds of one stage; workers report answers, the dispatcher asks ``ready``."""

    def __init__(self, start: int, most: int, fast: float = FAST_ANSWER_SECONDS) -> None:
        if not 1 <= start <= most:
            raise ValueError("the per-host limits must satisfy 1 <= start <= most")
        self.start, self.most, self.fast = start, most, fast
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    def _get(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(self.start)
        return state

    def limit(self, host: str) -> int:
        """Return how many downloads from ``host`` may run at once now."""
        with self._lock:
            return self._get(host).limit

    def not_before(self, host: str) -> float:
        """Return the ``time.monotonic()`` value before which ``host`` gets no new request (0 when none)."""
        with self._lock:
            return self._get(host).not_before

    def ready(self, host: str, busy: int, now: float) -> bool:
        """True when one more download from ``host`` may start, with ``busy`` already running."""
        with self._lock:
            state = self._get(host)
            return busy < state.limit and state.not_before <= now

    def answered(self, host: str, seconds: float) -> None:
        """A request to ``host`` got a good answer whose headers took ``seconds``: a quick one raises the limit."""
        if seconds <= self.fast:
            with self._lock:
                state = self._get(host)
                state.limit = min(self.most, state.limit + 1)

    def overloaded(self, host: str) -> None:
        """``host`` showed it is overloaded: halve its limit."""
        with self._lock:
            state = self._get(host)
            state.limit = max(1, state.limit // 2)

    def hold(self, host: str, until: float) -> None:
        """``host`` asked us to wait (429, 503, Retry-After): no new request to it before ``until``."""
        with self._lock:
            state = self._get(host)
            state.not_before = max(state.not_before, until)
