"""What every browserless engine gets: one requests session, the query, its settings, the licence filter, the deadline.

The JSON-API engines (``openverse``, ``wikimedia``) use this instead of the browser's ``Search``: every request is
bounded by the round's deadline and ``page_timeout``, and sends a User-Agent that names this app and its contact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import EngineBlocked, EngineTimeout

log = logging.getLogger(__name__)

CLIENT = "AdvancedImageDownloader/1.0"
CONNECT_SECONDS = 5.0


def user_agent(contact: str | None) -> str:
    """`<client>/<version> (<contact>) <library>/<version>`, the form Wikimedia's User-Agent policy asks for."""
    contact_part = f" ({contact})" if contact else ""
    return f"{CLIENT}{contact_part} python-requests/{requests.__version__}"


def new_session(contact: str | None) -> requests.Session:
    session = requests.Session()
    session.headers.update({"User-Agent": user_agent(contact), "Accept": "application/json"})
    return session


@dataclass
class ApiSearch:
    """One browserless engine's view of a job: the query, its base URL, its settings and the round's deadline."""

    query: str
    base_url: str
    safe_search: bool
    deadline: Callable[[], float]  # time.monotonic() value by which the current collect() round must end
    session: requests.Session
    licence: str = "any"  # the job's licence filter (scraper.licences.FILTERS)
    settings: Mapping[str, Any] = field(default_factory=dict)  # the app's settings (OPENVERSE_CLIENT_ID, ...)
    page_timeout: float = 20.0

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        one_at_a_time: threading.Lock | None = None,
    ) -> requests.Response:
        """Send one request to the engine's base URL within the deadline (holding `one_at_a_time` when given)."""
        seconds = min(self.page_timeout, self.deadline() - time.monotonic())
        if seconds <= 0:
            raise EngineTimeout("timeout")
        if one_at_a_time is not None and not one_at_a_time.acquire(timeout=seconds):
            raise EngineTimeout("timeout waiting for our other request to this service")
        try:
            seconds = min(self.page_timeout, self.deadline() - time.monotonic())
            if seconds <= 0:
                raise EngineTimeout("timeout")
            return self.session.request(
                method,
                self.base_url.rstrip("/") + "/" + path.lstrip("/"),
                params=params,
                data=data,
                headers=dict(headers or {}),
                timeout=(min(CONNECT_SECONDS, seconds), seconds),
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise EngineTimeout("timeout") from exc
        except requests.ConnectionError as exc:
            raise ConnectionError(f"could not connect to {urlsplit(self.base_url).netloc}") from exc
        finally:
            if one_at_a_time is not None:
                one_at_a_time.release()


def raise_if_rate_limited(response: requests.Response, what: str) -> None:
    """A 429 stops the engine for this job, with the wait the service asked for when it said one."""
    if response.status_code == 429:
        wait = response.headers.get("Retry-After")
        raise EngineBlocked(f"rate-limited: HTTP 429 on {what}" + (f" (retry after {wait} s)" if wait else ""))
