"""What every engine module gets to work with: the shared browser, the query, the settings and the deadline."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from selenium.common.exceptions import TimeoutException, WebDriverException

from .candidate import Candidate
from .errors import EngineBlocked, EngineFailed, EngineTimeout

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

log = logging.getLogger(__name__)

# An engine is a generator function: it yields Candidates (original image URLs only) and returns the reason it
# stopped ("ran dry after 3 pages"); it raises EngineBlocked, EngineTimeout or any other exception when it fails.
EngineRun = Generator[Candidate, None, str]

BLOCK_STATUSES = frozenset({403, 418, 429})  # the engine refuses us; any other error status is a failure
THUMBNAIL_MARKERS = ("encrypted-tbn", "gstatic.com/images", ".mm.bing.net/th", "external-content.duckduckgo.com")
POLL_SECONDS = 0.05

_FETCH_JS = """
const [url, headers, done] = arguments;
fetch(url, {credentials: 'include', headers: headers})
  .then(r => r.text().then(t => done([r.status, t])))
  .catch(e => done([0, String(e)]));
"""
_STATUS_JS = "const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus || 0 : 0;"
# Chromium's own error page ("This page isn't working", ERR_EMPTY_RESPONSE) keeps the URL that was asked for.
_ERROR_PAGE_JS = """
if (!document.getElementById('main-frame-error')) return null;
const code = document.querySelector('.error-code');
return (code && code.textContent.trim()) || 'Chromium error page';
"""
_NET_ERROR = re.compile(r"net::(ERR_[A-Z0-9_]+)")


@dataclass
class Search:
    """One engine's view of a job: the browser, the query, the engine's base URL, SafeSearch and the deadline."""

    driver: WebDriver
    query: str
    base_url: str
    safe_search: bool
    deadline: Callable[[], float]  # time.monotonic() value by which the current collect() round must end
    page_timeout: float = 20.0

    def remaining(self) -> float:
        return self.deadline() - time.monotonic()

    def check_deadline(self) -> None:
        if self.remaining() <= 0:
            raise EngineTimeout("timeout")

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def open(self, url: str) -> int:
        """Load a page and return its HTTP status (0 when unknown).

        Raises EngineFailed when there is no page (a network error), Chromium shows its own error page, or the
        status is an HTTP error other than the blocking ones (403, 418, 429), which the engine judges itself.
        """
        self.check_deadline()
        self.driver.set_page_load_timeout(max(1.0, min(self.page_timeout, self.remaining())))
        host = urlsplit(url).netloc
        try:
            self.driver.get(url)
        except TimeoutException:
            raise
        except WebDriverException as exc:
            found = _NET_ERROR.search(exc.msg or "")
            if found is None:
                raise
            raise EngineFailed(f"could not load {host} ({found.group(1)})") from exc
        error_page = self.driver.execute_script(_ERROR_PAGE_JS)
        if error_page or self.driver.current_url.startswith("chrome-error://"):
            raise EngineFailed(f"could not load {host} ({error_page or 'Chromium error page'})")
        status = int(self.driver.execute_script(_STATUS_JS) or 0)
        if status >= 400 and status not in BLOCK_STATUSES:
            raise EngineFailed(f"HTTP {status} from {host}")
        return status

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """GET a URL with fetch() inside the page: same origin, the page's cookies and the browser's fingerprint."""
        self.check_deadline()
        self.driver.set_script_timeout(max(1.0, min(self.page_timeout, self.remaining())))
        status, text = self.driver.execute_async_script(_FETCH_JS, url, headers or {})
        return int(status), text

    def wait_for(self, condition: Callable[[], Any], seconds: float) -> Any:
        """Poll `condition` until it is truthy or `seconds` (capped by the deadline) pass; return its last value."""
        end = time.monotonic() + max(0.0, min(seconds, self.remaining()))
        while True:
            value = condition()
            if value or time.monotonic() >= end:
                return value
            time.sleep(POLL_SECONDS)

    def raise_if_blocked_status(self, status: int, what: str) -> None:
        if status in BLOCK_STATUSES:
            raise EngineBlocked(f"HTTP {status} on {what}")


def is_original(image_url: str | None, thumbnail_url: str | None = None) -> bool:
    """True for an http(s) URL that is not the engine's own thumbnail of the image."""
    if not image_url or urlsplit(image_url).scheme not in ("http", "https"):
        return False
    if thumbnail_url and image_url == thumbnail_url:
        return False
    return not any(marker in image_url for marker in THUMBNAIL_MARKERS)


def to_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
