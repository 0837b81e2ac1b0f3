"""Discovery workers: open a page (over HTTP, or in headless Chromium behind the filtering proxy) and say what it
yields. A worker knows nothing of the crawl's state; it takes a page and returns plain data."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from selenium.common.exceptions import TimeoutException, WebDriverException

from scraper.browser import Browser
from scraper.browser import start as start_browser

from .extract import PageYield, extract
from .manners import Manners
from .pages import PageFetcher, host_of
from .proxy import FilteringProxy

logger = logging.getLogger(__name__)

SCROLL_STEPS = 20  # at most this many screens down, so an endless page ends
SCROLL_PAUSE = 0.1  # seconds for scroll handlers and lazy loaders to insert their images
_HTML = ("text/html", "application/xhtml")


@dataclass
class Visit:
    """What opening one page gave: its yield, or why there is none (``retry``: the host asked us to come back)."""

    url: str
    page: PageYield | None = None
    error: str | None = None
    retry: bool = False


class HttpDiscovery:
    """Fetch with requests and read the HTML as it came (no scripts)."""

    def __init__(self, fetcher: PageFetcher) -> None:
        self.fetcher = fetcher

    def visit(self, url: str) -> Visit:
        page = self.fetcher.get(url)
        if page.error:
            return Visit(url, error=page.error)
        if page.status in (429, 503):
            return Visit(url, error=f"HTTP {page.status}", retry=True)
        if page.status != 200:
            return Visit(url, error=f"HTTP {page.status}")
        if not page.content_type.startswith(_HTML):
            return Visit(url, error=f"not an HTML page ({page.content_type or 'no content type'})")
        return Visit(url, page=extract(page.text, page.url))

    def close(self) -> None:
        """Nothing of its own to release: the fetcher is the crawl's."""


class BrowserDiscovery:
    """One headless Chromium, all its traffic through the crawl's filtering proxy; scrolls for lazy images."""

    def __init__(self, proxy: FilteringProxy, manners: Manners, chrome_bin: str, chromedriver: str,
                 page_timeout: float) -> None:
        self.proxy, self.manners = proxy, manners
        self.browser: Browser = start_browser(chrome_bin, chromedriver, page_timeout=page_timeout,
                                              arguments=proxy.browser_arguments)

    def visit(self, url: str) -> Visit:
        driver = self.browser.driver
        try:
            with self.manners.turn(host_of(url)):
                driver.get(url)
            status = self.proxy.status_of(url)
            if status in (429, 503):
                return Visit(url, error=f"HTTP {status}", retry=True)
            if status is not None and status != 200:
                return Visit(url, error=f"HTTP {status}")
            self._scroll()
            return Visit(url, page=extract(driver.page_source, driver.current_url))
        except TimeoutException:
            return Visit(url, error="the page did not finish loading in time")
        except WebDriverException as exc:
            return Visit(url, error=f"the browser could not open the page ({exc.msg or type(exc).__name__})")

    def _scroll(self) -> None:
        """Scroll to the bottom until the page stops growing (lazy loaders fire on the way), a bounded number of
        times."""
        driver = self.browser.driver
        script = ("var h = document.documentElement.scrollHeight; if (h <= window.innerHeight) return -1;"
                  " window.scrollTo(0, h); return h;")
        last = None
        for _ in range(SCROLL_STEPS):
            height = driver.execute_script(script)
            if height == -1 or height == last:
                return
            last = height
            time.sleep(SCROLL_PAUSE)

    def close(self) -> None:
        self.browser.quit()
