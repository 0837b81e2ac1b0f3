"""Fetch one image URL to a file: redirects re-checked, retries that honour Retry-After, a size cap while streaming."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from .errors import FetchError, Stopped, TooLarge
from .guard import check_url
from .options import DownloadOptions

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
_ACCEPT = "image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"


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


def retry_after(response: requests.Response, attempt: int) -> float:
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


def _describe(exc: requests.RequestException) -> str:
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, requests.ReadTimeout) or "timed out" in text.lower():
        return "timed out waiting for data"
    if "IncompleteRead" in text:
        return "truncated: the connection closed before the whole body arrived"
    if "reset" in text.lower():
        return "the connection was reset mid-download"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return f"request failed ({type(exc).__name__})"


class Fetcher:
    """Fetch URLs with a shared connection pool; one per stage, used from many threads."""

    def __init__(self, adapter, options: DownloadOptions, stop: threading.Event, deadline_at: float) -> None:
        self.adapter = adapter
        self.options = options
        self.stop = stop
        self.deadline_at = deadline_at
        self.host_not_before: dict[str, float] = {}  # hosts that asked us to wait (Retry-After)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # an environment proxy would connect for us, past the address guard
            session.mount("http://", self.adapter)
            session.mount("https://", self.adapter)
            session.headers.update({"User-Agent": self.options.user_agent, "Accept": _ACCEPT})
            self._local.session = session
        return session

    def fetch(self, url: str, out: BinaryIO, referer: str | None = None) -> Fetched:
        """Stream ``url`` into ``out``; raise a DownloadError saying why when that fails."""
        current = url
        for _hop in range(self.options.max_redirects + 1):
            check_url(current)
            response = self._get(current, referer)
            with response:
                if response.status_code in _REDIRECTS and response.headers.get("Location"):
                    current = urljoin(current, response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code}")
                return self._stream(response, current, out)
        raise FetchError(f"more than {self.options.max_redirects} redirects")

    def _get(self, url: str, referer: str | None) -> requests.Response:
        options = self.options
        headers = {"Referer": referer} if referer else None
        for attempt in range(options.retries + 1):
            if self.stop.is_set():
                raise Stopped("the download stage ended")
            try:
                response = self._session().get(
                    url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=(options.connect_timeout, options.read_timeout),
                )
            except requests.RequestException as exc:
                raise FetchError(_describe(exc)) from exc
            status = response.status_code
            if status != 429 and status < 500:
                return response
            response.close()
            wait = retry_after(response, attempt)
            if attempt == options.retries:
                raise FetchError(f"HTTP {status}, still after {attempt + 1} attempts")
            if wait > options.max_retry_wait or time.monotonic() + wait > self.deadline_at:
                raise FetchError(f"HTTP {status}: the server asked to wait {wait:.0f} s, longer than we can")
            host = host_key(url)
            self.host_not_before[host] = max(self.host_not_before.get(host, 0.0), time.monotonic() + wait)
            logger.debug("HTTP %s from %s; retrying in %.1f s", status, url, wait)
            if self.stop.wait(wait):
                raise Stopped("the download stage ended")
        raise AssertionError("unreachable")

    def _stream(self, response: requests.Response, url: str, out: BinaryIO) -> Fetched:
        limit = self.options.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"larger than the {limit // (1024 * 1024)} MB limit ({int(declared):,} bytes announced)")
        digest = hashlib.sha256()
        size = 0
        started = time.monotonic()
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"larger than the {limit // (1024 * 1024)} MB limit")
                if self.stop.is_set():
                    raise Stopped("the download stage ended")
                if time.monotonic() - started > self.options.image_time_limit:
                    raise FetchError(f"still arriving after {self.options.image_time_limit:.0f} s")
                digest.update(chunk)
                out.write(chunk)
        except requests.RequestException as exc:
            if self.stop.is_set():
                raise Stopped("the download stage ended") from exc
            raise FetchError(_describe(exc)) from exc
        return Fetched(url, size, digest.hexdigest())
