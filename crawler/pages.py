"""Fetch pages, robots.txt and sitemaps over HTTP through the address guard, politely, with back-off on 429/503."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from downloader.errors import DownloadError
from downloader.fetch import HOST_BUSY, retry_after
from downloader.guard import Guard, check_url

from .manners import Manners, Stopped

logger = logging.getLogger(__name__)

MAX_PAGE_BYTES = 5 * 1024 * 1024  # a page (or sitemap) larger than this is read up to here
MAX_REDIRECTS = 5
BUSY_RETRIES = 3  # a page answered 429 or 503 is tried this many more times
MAX_RETRY_WAIT = 120.0
_REDIRECTS = {301, 302, 303, 307, 308}
_TEXT_TYPES = ("text/html", "application/xhtml", "text/plain", "application/xml", "text/xml")


class _GuardedConnection:
    """Mixin for urllib3 connections: connect through the crawl's Guard instead of a fresh DNS lookup."""

    guard: Guard
    # Set by urllib3's HTTPConnection, which every class this mixin goes into derives from.
    _dns_host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        return self.guard.connect(self._dns_host, self.port, self.timeout, self.socket_options)


def guarded_pool_classes(guard: Guard) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes (by scheme) whose every connection goes through ``guard``: a pool per host and port,
    keyed by the host name (so TLS sends it as SNI and checks the certificate against it), each connection opened
    to the checked address."""
    conn = type("GuardedHTTPConnection", (_GuardedConnection, HTTPConnection), {"guard": guard})
    tls = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), {"guard": guard})
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": conn}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through ``guard`` (the crawler's page fetcher uses it)."""

    def __init__(self, guard: Guard, pool_maxsize: int, pool_connections: int = 100) -> None:
        self._pool_classes = guarded_pool_classes(guard)
        super().__init__(pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


@dataclass(frozen=True)
class Page:
    """A fetched page: its final URL, status, content type and text (empty when not text)."""

    url: str
    status: int
    content_type: str
    text: str
    error: str | None = None  # why there is no answer (refused by the guard, timeout, ...)


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or ''}"


class PageFetcher:
    """Fetch text over HTTP for the crawl; one per crawl, used from many threads."""

    def __init__(self, guard: Guard, manners: Manners, user_agent: str, stop: threading.Event,
                 timeout: float = 15.0, pool: int = 16) -> None:
        self.guard, self.manners, self.user_agent, self.stop, self.timeout = guard, manners, user_agent, stop, timeout
        self.adapter = GuardedAdapter(guard, pool_maxsize=pool)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # an environment proxy would connect for us, past the address guard
            session.mount("http://", self.adapter)
            session.mount("https://", self.adapter)
            session.headers.update({"User-Agent": self.user_agent, "Accept": "text/html,application/xhtml+xml,*/*"})
            self._local.session = session
        return session

    def get(self, url: str) -> Page:
        """GET ``url`` following redirects (each hop guarded), waiting for the host's turn; never raises for the URL."""
        current = url
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                check_url(current)
                status, headers, body = self._polite_get(current)
                if status in _REDIRECTS and headers.get("Location"):
                    current = urljoin(current, headers["Location"])
                    continue
                ctype = headers.get("Content-Type", "").lower()
                text = body.decode(_charset(ctype), errors="replace") if ctype.startswith(_TEXT_TYPES) else ""
                return Page(current, status, ctype, text)
            return Page(current, 0, "", "", f"more than {MAX_REDIRECTS} redirects")
        except DownloadError as exc:
            return Page(current, 0, "", "", exc.reason)

    def text(self, url: str) -> tuple[int, str]:
        """(status, text) of ``url``, 0 when it could not be fetched: the shape robots and sitemaps read."""
        page = self.get(url)
        return page.status, page.text

    def _polite_get(self, url: str) -> tuple[int, requests.structures.CaseInsensitiveDict, bytes]:
        host = host_of(url)
        for attempt in range(BUSY_RETRIES + 1):
            with self.manners.turn(host):
                try:
                    with self._session().get(url, stream=True, allow_redirects=False,
                                             timeout=(5.0, self.timeout)) as response:
                        body = _read(response)
                except requests.RequestException as exc:  # the guard's BlockedURL passes through unwrapped
                    raise DownloadError(f"could not fetch the page ({type(exc).__name__})") from exc
            if response.status_code not in HOST_BUSY or attempt == BUSY_RETRIES:
                return response.status_code, response.headers, body
            wait = retry_after(response, attempt)
            if wait > MAX_RETRY_WAIT:
                return response.status_code, response.headers, body
            logger.info("HTTP %s from %s: holding %s for %.1f s", response.status_code, url, host, wait)
            self.manners.hold(host, time.monotonic() + wait)
        raise Stopped()  # not reached: the loop returns on its last attempt

    def close(self) -> None:
        self.adapter.close()


def _read(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_PAGE_BYTES:
            break
    return b"".join(chunks)[:MAX_PAGE_BYTES]


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name == "charset" and value:
            try:
                "".encode(value.strip("\"'"))
                return value.strip("\"'")
            except LookupError:
                break
    return "utf-8"
