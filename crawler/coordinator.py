"""The coordinator: owns the crawl's state and hands out work; discovery and download workers return plain data.

Threads: ``workers`` discovery threads (each with its own discovery: HTTP, or one browser each) take pages with
``next_page`` and hand back a ``Visit``; one download thread takes batches of pending images with
``next_images``, runs the download stage on each and gives the checked images to the Keeper. Every change goes to
the state (SQLite) at once; the coordinator keeps in memory only the pages and images in flight.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from downloader import DownloadOptions, DownloadResult, download_images
from downloader.candidates import CandidateLike, ListedURL
from downloader.errors import DownloadError
from downloader.guard import Guard, check_url

from .discovery import BrowserDiscovery, HttpDiscovery, Visit
from .manners import Manners, Stopped
from .options import CrawlOptions
from .output import Keeper, now_text, write_outputs
from .pages import PageFetcher, host_of
from .proxy import FilteringProxy
from .robots import Robots
from .sitemaps import page_urls
from .state import CrawlState, PendingImage, QueuedPage
from .urls import Scope, canonical

logger = logging.getLogger(__name__)

BATCH_DIR = ".batch"
STOP_SECONDS = 45  # how long a worker may take to finish its page and quit its browser when the crawl stops
BUSY_REQUEUES = 5  # a page answered 429/503 (after the fetcher's own retries) goes back this many times


@dataclass
class Progress:
    """What the progress bar shows."""

    pages_visited: int = 0
    queued: int = 0
    images_kept: int = 0
    images_pending: int = 0
    pages_failed: int = 0


@dataclass
class Summary:
    """How a crawl ended."""

    pages_visited: int
    pages_failed: int
    images_kept: int
    images_refused: int
    stopped: str | None  # "images" (N reached), "pages" (--max-pages reached), "interrupted", or None: all done


class Coordinator:
    """One crawl from a start URL into ``out_dir``: ``problem()`` says whether it can start, ``run(state)`` blocks
    until it ends."""

    state: CrawlState  # given to run()

    def __init__(self, start_url: str, out_dir: Path, options: CrawlOptions,
                 progress: Callable[[Progress], None] | None = None) -> None:
        self.start_url, self.out_dir, self.options = start_url, Path(out_dir), options
        self.progress = progress
        self.stop = threading.Event()
        self.interrupted = threading.Event()  # interrupt() was called: run() raises KeyboardInterrupt once stopped
        self.scope = Scope(start_url, options.scope, options.include, options.exclude, options.max_url_length)
        self.guard = Guard(options.allow_private, options.trusted_hosts)
        self.manners = Manners(options.per_host, options.delay, self.stop)
        self.fetcher = PageFetcher(self.guard, self.manners, options.user_agent, self.stop,
                                   pool=max(16, options.workers))
        self.robots = Robots(self.fetcher.text, options.user_agent)
        self._lock = threading.Condition()
        self._pages: list[QueuedPage] = []  # taken from the state, not yet handed out
        self._page_cursor = 0
        self._in_flight: dict[str, QueuedPage] = {}
        self._requeues: dict[str, int] = {}
        self._images_in_flight = 0
        self._discovery_done = False
        self.visited = self.kept = 0
        self.stopped: str | None = None
        self._errors: list[BaseException] = []
        self._browsers: list[BrowserDiscovery] = []  # started and not yet closed

    def interrupt(self) -> None:
        """Ask the crawl to stop, from a signal handler: the workers finish their page and quit their browsers,
        then ``run`` raises KeyboardInterrupt. A second call raises it at once.

        The handler only asks because in CPython 3.11 a KeyboardInterrupt raised while ``run`` waits in
        ``Thread.join`` marks the running thread as stopped (``_wait_for_tstate_lock`` releases the live thread's
        lock): the crawl then left without waiting for that worker, whose chromedriver outlived it (5 of 26 runs
        of the SIGTERM test beside two busy loops)."""
        if self.interrupted.is_set():
            raise KeyboardInterrupt
        self.interrupted.set()
        self.stop.set()

    # -- what the discovery workers call ----------------------------------------------------------------------------

    def next_page(self) -> QueuedPage | None:
        """The next page to open, waiting while others are in flight; None when discovery is over."""
        with self._lock:
            while True:
                if self.stop.is_set() or self.kept >= self.options.max_images:
                    return None
                if self.visited + len(self._in_flight) >= self.options.max_pages:
                    if not self._in_flight:
                        return None
                    self._lock.wait(0.2)
                    continue
                if not self._pages:
                    self._pages = self.state.queued(self._page_cursor, 200)
                    self._pages = [p for p in self._pages if p.url not in self._in_flight]
                    if self._pages:
                        self._page_cursor = self._pages[-1].seq
                if self._pages:
                    page = self._pages.pop(0)
                    self._in_flight[page.url] = page
                    return page
                if not self._in_flight:
                    return None
                self._lock.wait(0.2)

    def page_done(self, page: QueuedPage, visit: Visit) -> None:
        """Record what one page yielded (or why it failed), in one transaction."""
        if visit.retry and self._requeues.get(page.url, 0) < BUSY_REQUEUES and not self.stop.is_set():
            self._requeues[page.url] = self._requeues.get(page.url, 0) + 1
            with self._lock:
                del self._in_flight[page.url]
                self._pages.append(page)
                self._lock.notify_all()
            return
        if visit.page is None:
            self.state.page_failed(page.url, visit.error or "no answer")
        else:
            links, images = self._judge(page, visit)
            self.state.page_visited(page.url, links, images)
        with self._lock:
            del self._in_flight[page.url]
            self.visited += 1
            self._lock.notify_all()

    def _judge(self, page: QueuedPage, visit: Visit) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, dict]]]:
        """The page's links and images that are in scope and allowed by robots.txt (plain data for the state)."""
        found = visit.page
        assert found is not None
        links = []
        if page.depth < self.options.depth:
            for link in found.links:
                if self.scope.follows(link) and self.robots.allowed(link):
                    links.append((canonical(link), link, page.depth + 1))
        images = []
        when = now_text()
        for image in found.images:
            if not (self.scope.on_site(image.url) and self.robots.allowed(image.url)):
                continue
            info = {"page_url": found.url, "page_title": found.title, "alt": image.alt, "title": image.title,
                    "caption": image.caption, "tags": found.tags, "depth": page.depth, "discovered_at": when,
                    "widths": list(image.widths)}
            images.append((canonical(image.url), image.url, info))
        return links, images

    # -- what the download thread calls -----------------------------------------------------------------------------

    def next_images(self, limit: int) -> list[PendingImage]:
        """Up to ``limit`` pending images, waiting for discovery to find some; [] when there will be no more."""
        with self._lock:
            while True:
                want = self.options.max_images - self.kept
                if self.stop.is_set() or want <= 0:
                    return []
                # From the start each time: one download thread takes batches one after another, and what a batch
                # left untried (N was reached first) is still pending.
                batch = self.state.pending(0, min(limit, want + want // 2 + 4))
                if batch:
                    return batch
                if self._discovery_done:
                    return []
                self._lock.wait(0.1)

    def images_kept(self, count: int) -> None:
        with self._lock:
            self.kept += count
            if self.kept >= self.options.max_images:
                self._lock.notify_all()

    # -- running ----------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """First run only: queue the start URL and the pages of the site's sitemaps."""
        if self.state.get_meta("start_url") is not None:
            return
        self.state.add_pages([(canonical(self.start_url), self.start_url, 0)])
        sitemaps = self.robots.sitemaps(self.start_url)
        home = f"{self.start_url.split('/', 3)[0]}//{self.start_url.split('/', 3)[2]}/sitemap.xml"
        if home not in sitemaps:
            sitemaps.append(home)
        found = []
        for url in page_urls(sitemaps, self.fetcher.text, limit=self.options.max_pages):
            if self.scope.follows(url) and self.robots.allowed(url) and self.options.depth >= 1:
                found.append((canonical(url), url, 1))
            if len(found) >= 1000:
                self.state.add_pages(found)
                found = []
        self.state.add_pages(found)
        self.state.set_meta("start_url", self.start_url)
        logger.info("crawl of %s: %s pages queued from the start URL and the sitemaps", self.start_url,
                    self.state.counts().get("pages_queued", 0))

    def problem(self) -> str | None:
        """Why the crawl cannot start (a bad URL, a blocked address, robots.txt forbids it), or None."""
        try:
            check_url(self.start_url)
            parts = urlsplit(self.start_url)
            self.guard.addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except DownloadError as exc:
            return f"cannot crawl {self.start_url}: {exc.reason}"
        except ValueError as exc:
            return f"cannot crawl {self.start_url}: {exc}"
        if not self.robots.allowed(self.start_url):  # read once: the crawl goes on with the same rules
            return f"cannot crawl {self.start_url}: {self.robots.why_not(self.start_url)}"
        return None

    def close(self) -> None:
        """Release the page fetcher's connections (``run`` does it at its end)."""
        self.fetcher.close()

    def run(self, state: CrawlState) -> Summary:
        self.state = state
        counts = state.counts()
        self.visited = counts.get("pages_visited", 0) + counts.get("pages_failed", 0)
        self.kept = counts.get("images_saved", 0)
        proxy = FilteringProxy(self.guard).start() if self.options.render == "browser" else None
        batch_dir = self.out_dir / BATCH_DIR
        keeper = Keeper(self.out_dir, self.state, int(self.options.download.get("NEAR_DUPLICATE_DISTANCE", 6)),
                        self.options.widths, download=self._download_few)
        threads = [threading.Thread(target=self._discover, args=(proxy,), name=f"discover-{n}", daemon=True)
                   for n in range(self.options.workers)]
        downloads = threading.Thread(target=self._download, args=(keeper, batch_dir), name="download", daemon=True)
        try:
            self.prepare()
            for thread in threads:
                thread.start()
            downloads.start()
            while any(t.is_alive() for t in threads):
                self._report()
                for thread in threads:
                    thread.join(timeout=0.5 / len(threads))
            with self._lock:
                self._discovery_done = True
                self._lock.notify_all()
            while downloads.is_alive():
                self._report()
                downloads.join(timeout=0.5)
            if self.interrupted.is_set():
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.stopped = "interrupted"
            raise
        finally:
            self.stop.set()
            for thread in [*threads, downloads]:
                if thread.is_alive():
                    thread.join(timeout=STOP_SECONDS)
                if thread.is_alive():
                    logger.error("%s did not stop within %d s", thread.name, STOP_SECONDS)
            with self._lock:
                left, self._browsers = self._browsers, []
            for discovery in left:  # a worker stuck past the wait: its browser is taken down from here
                discovery.close()
            if proxy is not None:
                proxy.stop()
            self.close()
            shutil.rmtree(batch_dir, ignore_errors=True)
        if self._errors:
            raise self._errors[0]
        write_outputs(self.state, self.out_dir)
        self._report()
        return self.summary()

    def summary(self) -> Summary:
        counts = self.state.counts()
        queued = counts.get("pages_queued", 0)
        stopped = self.stopped
        if stopped is None and self.kept >= self.options.max_images:
            stopped = "images"
        elif stopped is None and queued:
            stopped = "pages"
        return Summary(counts.get("pages_visited", 0), counts.get("pages_failed", 0), counts.get("images_saved", 0),
                       counts.get("images_failed", 0) + counts.get("images_duplicate", 0), stopped)

    def _report(self) -> None:
        if self.progress is None:
            return
        counts = self.state.counts()
        self.progress(Progress(counts.get("pages_visited", 0), counts.get("pages_queued", 0),
                               counts.get("images_saved", 0), counts.get("images_pending", 0),
                               counts.get("pages_failed", 0)))

    def _discover(self, proxy: FilteringProxy | None) -> None:
        discovery: HttpDiscovery | BrowserDiscovery | None = None
        try:
            if proxy is not None:
                discovery = BrowserDiscovery(proxy, self.manners, self.options.chrome_bin, self.options.chromedriver,
                                             self.options.page_timeout)
                with self._lock:
                    self._browsers.append(discovery)
            else:
                discovery = HttpDiscovery(self.fetcher)
            while (page := self.next_page()) is not None:
                try:
                    if not self.robots.allowed(page.fetch_url):  # robots.txt may have changed since it was queued
                        visit = Visit(page.fetch_url, error="disallowed by robots.txt")
                    else:
                        self.manners.set_delay(host_of(page.fetch_url), self.robots.delay(page.fetch_url))
                        visit = discovery.visit(page.fetch_url)
                    if visit.page is not None and visit.page.url != page.fetch_url \
                            and not self.scope.on_site(visit.page.url):
                        visit = Visit(page.fetch_url, error=f"redirected off the site to {visit.page.url}")
                except Stopped:
                    with self._lock:
                        self._in_flight.pop(page.url, None)
                    return
                self.page_done(page, visit)
        except Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinator's thread, which raises it
            logger.exception("discovery worker failed")
            self._errors.append(exc)
            self.stop.set()
        finally:
            if isinstance(discovery, BrowserDiscovery):
                with self._lock:  # the coordinator may have taken it down already (see run)
                    mine = discovery in self._browsers
                    if mine:
                        self._browsers.remove(discovery)
                if mine:
                    discovery.close()

    def _download_options(self) -> DownloadOptions:
        return DownloadOptions.from_config(self.options.download, per_host=self.options.per_host,
                                           per_host_max=self.options.per_host,
                                           trusted_hosts=self.options.trusted_hosts,
                                           user_agent=self.options.user_agent)

    def _download_few(self, candidates: list[ListedURL], folder: Path) -> DownloadResult:
        return download_images(_once(candidates), len(candidates), folder, self._download_options(),
                               should_stop=self.stop.is_set)

    def _download(self, keeper: Keeper, batch_dir: Path) -> None:
        options = self._download_options()
        try:
            while (batch := self.next_images(self.options.batch)):
                candidates = [_Candidate(image) for image in batch]
                want = min(len(candidates), self.options.max_images - self.kept)  # never more than N in all
                result = download_images(_once(candidates), want, batch_dir, options, should_stop=self.stop.is_set)
                self.images_kept(keeper.take(batch_dir, result, batch))
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinator's thread, which raises it
            logger.exception("download worker failed")
            self._errors.append(exc)
            self.stop.set()


def _once(candidates: Sequence[CandidateLike]) -> Callable[[int], Sequence[CandidateLike]]:
    """The ``more`` of one batch: every candidate on the first call, none after."""
    given = iter([candidates])
    return lambda _count: next(given, [])


@dataclass(frozen=True)
class _Candidate:
    """A pending image as the download stage sees it (downloader.CandidateLike)."""

    pending: PendingImage

    @property
    def image_url(self) -> str:
        return self.pending.fetch_url

    @property
    def page_url(self) -> str | None:
        return self.pending.info.get("page_url")

    @property
    def title(self) -> str | None:
        return self.pending.info.get("page_title")

    @property
    def source(self) -> str:
        return "crawl"
