"""Fetch one image URL to a file (asyncio, ``client``): redirects re-checked, back-off by cause, a size cap while
streaming.

Back-off by cause: a 429 or 503, or a 5xx with ``Retry-After``, speaks for the whole host, which is held for as
long as it asked (or an exponential back-off) before this URL is tried again; a 500, 502 or 504 is that file's
problem and is retried once after a short pause, other hosts' and this host's other URLs going on meanwhile;
404, 410 and every other 4xx fail at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Protocol
from urllib.parse import urljoin, urlsplit

from .client import Client, ConnectionTrouble, Response
from .errors import FetchError, NotForAI, TooLarge
from .guard import check_url
from .hosts import Hosts
from .options import DownloadOptions

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024  # the most read from a connection at once
_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = "image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"
_DRAIN_BYTES = 64 * 1024  # an unwanted body up to this size is read to the end, so its connection is reused
HOST_BUSY = frozenset({429, 503})  # the host asks every client to slow down
RETRY_ONCE = frozenset({500, 502, 504})  # this URL failed on the server; one more try may work
OVERLOAD = frozenset({429, 502, 503, 504})  # answers that lower the host's limit
ROBOTS_TOKEN = "advancedimagedownloader"  # the user-agent token X-Robots-Tag directives may be addressed to
NOAI_DIRECTIVES = frozenset({"noai", "noimageai"})
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})


@dataclass(frozen=True)
class Fetched:
    """What came over the wire: the final URL, the byte count and its SHA-256."""

    final_url: str
    bytes: int
    sha256: str


def host_key(url: str) -> str:
    """Return the host (and port) that per-host limits count against."""
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or ''}"


class _Answer(Protocol):
    """An HTTP answer with headers: a ``client.Response`` (here) or a requests one (the crawler's pages)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


def retry_after(response: _Answer, attempt: int) -> float:
    """Return how long to wait before retrying: the server's Retry-After, else exponential backoff with jitter."""
    header = response.headers.get("Retry-After", "").strip()
    if header.isdigit():
        return float(header)
    if header:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    backoff = 0.5 * 2**attempt
    return backoff + random.uniform(0, backoff / 4)


def ai_refusal(values: list[str], token: str = ROBOTS_TOKEN) -> str | None:
    """Return the ``noai``/``noimageai`` directive of X-Robots-Tag header ``values`` meant for us, or None.

    A value is ``directive, directive`` (for every robot) or ``token: directive, ...`` (for the robot ``token``).
    """
    for value in values:
        head, colon, rest = value.partition(":")
        addressed = colon and "," not in head and head.strip().lower() not in _VALUED_DIRECTIVES
        if addressed and head.strip().lower() != token:
            continue
        for directive in (rest if addressed else value).split(","):
            if directive.strip().lower() in NOAI_DIRECTIVES:
                return directive.strip().lower()
    return None


class Fetcher:
    """Fetch URLs through one stage's guarded client; its coroutines run on the stage's event loop.

    A stage that ends cancels them: there is no stop flag to poll.
    """

    def __init__(self, client: Client, options: DownloadOptions, deadline_at: float, hosts: Hosts) -> None:
        self.client = client
        self.options = options
        self.deadline_at = deadline_at
        self.hosts = hosts
        self.headers = {"User-Agent": options.user_agent, "Accept": _ACCEPT}

    async def fetch(self, url: str, out: BinaryIO, referer: str | None = None) -> Fetched:
        """Stream ``url`` into ``out``; raise a DownloadError saying why when that fails."""
        current = url
        for _hop in range(self.options.max_redirects + 1):
            check_url(current)
            response = await self._get(current, referer)
            try:
                status = response.status
                location = response.headers.get("Location")
                if status in _REDIRECTS and location:
                    await response.discard(_DRAIN_BYTES)
                    current = urljoin(current, location)
                    continue
                if status != 200:
                    await response.discard(_DRAIN_BYTES)
                    raise FetchError(f"HTTP {status}")
                if self.options.respect_noai and (directive := ai_refusal(response.headers.getlist("X-Robots-Tag"))):
                    await response.discard(_DRAIN_BYTES)
                    raise NotForAI(f"the site asks that this image not be used for AI (X-Robots-Tag: {directive})")
                return await self._stream(response, current, out)
            finally:
                response.close()  # a no-op once the body was read or discarded
        raise FetchError(f"more than {self.options.max_redirects} redirects")

    async def _get(self, url: str, referer: str | None) -> Response:
        """GET ``url`` (headers only), backing off by cause; return an answer under 400 or raise why not."""
        options = self.options
        host = host_key(url)
        headers = {**self.headers, "Referer": referer} if referer else self.headers
        waits = 0  # times the host asked us to wait
        retried = False  # the one retry of a 500, 502 or 504 is used
        for _attempt in range(options.retries + 3):
            started = time.monotonic()
            try:
                response = await self.client.get(url, headers, options.connect_timeout, options.read_timeout)
            except ConnectionTrouble:
                self.hosts.overloaded(host)
                raise
            status = response.status
            if status < 400:
                self.hosts.answered(host, time.monotonic() - started)
                return response
            await response.discard(_DRAIN_BYTES)
            if status in OVERLOAD:
                self.hosts.overloaded(host)
            asked = bool((response.headers.get("Retry-After") or "").strip())
            if status in HOST_BUSY or (asked and status >= 500):
                if waits == options.retries:
                    raise FetchError(f"HTTP {status}, still after {waits + 1} attempts")
                wait = retry_after(response, waits)
                waits += 1
                if wait > options.max_retry_wait or time.monotonic() + wait > self.deadline_at:
                    raise FetchError(f"HTTP {status}: the server asked to wait {wait:.0f} s, longer than we can")
                self.hosts.hold(host, time.monotonic() + wait)
                logger.debug("HTTP %s from %s; holding %s for %.1f s", status, url, host, wait)
            elif status in RETRY_ONCE and not retried:
                retried = True
                wait = options.retry_pause + random.uniform(0, options.retry_pause / 4)
                logger.debug("HTTP %s from %s; retrying this URL once in %.1f s", status, url, wait)
            elif status in RETRY_ONCE:
                raise FetchError(f"HTTP {status}, still after 2 attempts")
            else:
                raise FetchError(f"HTTP {status}")
            await asyncio.sleep(wait)
        raise FetchError("the server kept asking to try again")

    async def _stream(self, response: Response, url: str, out: BinaryIO) -> Fetched:
        limit = self.options.max_bytes
        declared = response.headers.get("Content-Length") or ""
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"larger than the {limit // (1024 * 1024)} MB limit ({int(declared):,} bytes announced)")
        digest = hashlib.sha256()
        size = 0
        started = time.monotonic()
        time_limit = self.options.image_time_limit

        def sink(piece: memoryview) -> None:  # called as each piece arrives, by the connection itself
            nonlocal size
            size += len(piece)
            if size > limit:
                raise TooLarge(f"larger than the {limit // (1024 * 1024)} MB limit")
            if time.monotonic() - started > time_limit:
                raise FetchError(f"still arriving after {time_limit:.0f} s")
            digest.update(piece)
            out.write(piece)

        await response.save(sink, CHUNK)
        return Fetched(url, size, digest.hexdigest())
