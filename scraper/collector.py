"""Run the engines in order of preference on one shared browser and hand out new, unique candidates."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from selenium.common.exceptions import TimeoutException, WebDriverException

from . import bing, browser, duckduckgo, google, licences, openverse, urls, wikimedia
from .api import ApiSearch, new_session
from .candidate import Candidate
from .engine import EngineRun, Search
from .errors import EngineBlocked, EngineFailed, EnginesUnavailable, EngineTimeout

log = logging.getLogger(__name__)

ENGINES: dict[str, Callable[[Search], EngineRun]] = {
    bing.NAME: bing.results,
    duckduckgo.NAME: duckduckgo.results,
    google.NAME: google.results,
}
BASE_URL_SETTINGS = {bing.NAME: "BING_URL", duckduckgo.NAME: "DUCKDUCKGO_URL", google.NAME: "GOOGLE_URL",
                     urls.NAME: "URL_LIST", openverse.NAME: openverse.BASE_URL_SETTING,
                     wikimedia.NAME: wikimedia.BASE_URL_SETTING}
# JSON-API engines (requests, no browser) that give each image's licence: the only ones a licence filter uses.
API_ENGINES: dict[str, Callable[[ApiSearch], EngineRun]] = {
    openverse.NAME: openverse.results,
    wikimedia.NAME: wikimedia.results,
}
API_SETTINGS = ("CONTACT_EMAIL", "OPENVERSE_CLIENT_ID", "OPENVERSE_CLIENT_SECRET")
SOURCES = (*ENGINES, urls.NAME, *API_ENGINES)  # urls reads a list of image URLs: no browser


@dataclass(frozen=True)
class EngineReport:
    """How many candidates one engine gave and why it stopped ("ran dry after 3 pages", "blocked: ...")."""

    engine: str
    count: int
    stopped: str


def normalise(url: str) -> str:
    """The form of a URL used to spot duplicates: case-folded scheme and host, no default port, no fragment."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port if parts.port and (scheme, parts.port) not in {("http", 80), ("https", 443)} else None
    netloc = f"{host}:{port}" if port else host
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~") or "/"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


class _Run:
    """One engine's state within a job."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.generator: EngineRun | None = None
        self.count = 0
        self.stopped = "not used"
        self.done = False
        self.failed = False


class Collector:
    """Collect candidates for one query from the engines in order, on one browser started on first use."""

    def __init__(
        self,
        query: str,
        *,
        sources: Iterable[str],
        base_urls: Mapping[str, str],
        safe_search: bool,
        chrome_bin: str,
        chromedriver: str,
        timeout: float,
        log: Callable[[str], None] | None = None,
        licence: str = "any",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        sources = [s.strip().lower() for s in sources if s.strip()]
        unknown = [s for s in sources if s not in SOURCES]
        if unknown or not sources:
            raise ValueError(f"unknown or no image sources: {unknown or sources}; known: {', '.join(SOURCES)}")
        self.licence = licences.check_filter(licence)
        if self.licence != "any":  # IMAGE_SOURCES' licence-aware engines in its order, else all of them
            sources = [s for s in sources if s in API_ENGINES] or list(API_ENGINES)
        self.settings = dict(settings or {})  # the API engines' settings: API_SETTINGS
        self.query = query
        self.base_urls = dict(base_urls)
        self.safe_search = safe_search
        self.chrome_bin, self.chromedriver = chrome_bin, chromedriver
        self.timeout = float(timeout)
        # One slow engine may use at most a quarter of a round per page, so the next engines still get their turn.
        self.page_timeout = max(2.0, min(20.0, self.timeout / 4))
        self._log = log
        self._runs = [_Run(name) for name in sources]
        self._seen: set[str] = set()
        self._browser: browser.Browser | None = None
        self._session: requests.Session | None = None
        self._deadline = 0.0
        self._collected = 0

    @classmethod
    def from_config(
        cls, query: str, config: Mapping[str, Any], log: Callable[[str], None] | None = None, licence: str = "any"
    ) -> Collector:
        """Build a Collector from the app's settings (IMAGE_SOURCES, *_URL, SAFE_SEARCH, CHROME_*, COLLECT_...).

        `licence` is the job's licence filter (scraper.licences.FILTERS); ValueError names it when unknown.
        """
        sources = config["IMAGE_SOURCES"]
        if isinstance(sources, str):
            sources = sources.split(",")
        return cls(
            query,
            sources=sources,
            base_urls={name: config[setting] for name, setting in BASE_URL_SETTINGS.items()},
            safe_search=bool(config["SAFE_SEARCH"]),
            chrome_bin=config["CHROME_BIN"],
            chromedriver=config["CHROMEDRIVER"],
            timeout=config["COLLECT_TIMEOUT_SECONDS"],
            log=log,
            licence=licence,
            settings={name: config.get(name) for name in API_SETTINGS},
        )

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def reports(self) -> list[EngineReport]:
        return [EngineReport(run.name, run.count, run.stopped) for run in self._runs]

    @property
    def browser_pids(self) -> set[int]:
        """The live processes of this job's browser (empty before it starts and after close())."""
        return self._browser.pids if self._browser else set()

    def collect(self, want: int) -> list[Candidate]:
        """Return up to `want` candidates never returned before; fewer once every engine ran dry.

        Each call is one round with its own deadline (`timeout` seconds); engines not finished when it passes
        continue in the next call. Raises EnginesUnavailable (after closing the browser) when nothing was ever
        collected and the engines failed, were blocked or did not answer before the deadline.
        """
        if want <= 0:
            return []
        self._deadline = time.monotonic() + self.timeout
        batch: list[Candidate] = []
        for run in self._runs:
            if len(batch) >= want or time.monotonic() >= self._deadline:
                break
            if not run.done:
                self._pull(run, want, batch)
        self._collected += len(batch)
        if not batch and self._collected == 0:
            if all(run.done for run in self._runs) and not all(run.failed for run in self._runs):
                return batch  # the engines answered, with nothing: not an outage
            detail = "; ".join(f"{r.name}: {r.stopped}" for r in self._runs)
            self.close()
            raise EnginesUnavailable(detail)
        return batch

    def close(self) -> None:
        """Stop every engine and quit the browser; safe to call twice."""
        for run in self._runs:
            if run.generator is not None:
                run.generator.close()
                run.generator = None
        if self._browser is not None:
            self._browser.quit()
            self._browser = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def _pull(self, run: _Run, want: int, batch: list[Candidate]) -> None:
        before = run.count
        try:
            if run.generator is None:
                run.generator = self._start(run.name)
                run.stopped = "running"
            while len(batch) < want:
                if time.monotonic() >= self._deadline:
                    self._finish(run, "paused: deadline of this round", done=False)
                    return
                found = next(run.generator)
                if not licences.passes(found.license, self.licence):
                    continue
                key = normalise(found.image_url)
                if key in self._seen:
                    continue
                self._seen.add(key)
                run.count += 1
                batch.append(found)
            run.stopped = "paused: enough for now"
        except StopIteration as stop:
            self._finish(run, stop.value or "ran dry")
        except EngineBlocked as exc:
            self._finish(run, f"blocked: {exc}", failed=True)
        except (EngineTimeout, TimeoutException):
            self._finish(run, "failed: timeout", failed=True)
        except browser.BrowserUnavailable as exc:
            for each in self._runs:
                self._finish(each, f"failed: {exc}", failed=True)
        except EngineFailed as exc:
            self._finish(run, f"failed: {exc}", failed=True)
        except (WebDriverException, OSError, ValueError, KeyError, TypeError) as exc:
            # An engine changed its markup or the browser misbehaved: one line in the log, the traceback at DEBUG.
            message = (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).splitlines()[0][:200]
            log.debug("%s failed", run.name, exc_info=True)
            self._finish(run, f"failed: {message}", failed=True)
        finally:
            if run.count != before or run.done:
                self._emit(f"{run.name}: {run.count} images, {run.stopped}")

    def _finish(self, run: _Run, reason: str, *, failed: bool = False, done: bool = True) -> None:
        if run.done:
            return
        run.stopped = reason
        if done:
            run.done, run.failed = True, failed
            if run.generator is not None:
                run.generator.close()
                run.generator = None

    def _start(self, name: str) -> EngineRun:
        if name == urls.NAME:
            location = self.base_urls.get(name) or ""
            return urls.results(location, page_timeout=self.page_timeout, deadline=lambda: self._deadline)
        if name in API_ENGINES:
            return API_ENGINES[name](self._api_search(name))
        return ENGINES[name](self._search(name))

    def _api_search(self, name: str) -> ApiSearch:
        if self._session is None:
            self._session = new_session(self.settings.get("CONTACT_EMAIL"))
        return ApiSearch(
            query=self.query,
            base_url=self.base_urls[name],
            safe_search=self.safe_search,
            deadline=lambda: self._deadline,
            session=self._session,
            licence=self.licence,
            settings=self.settings,
            page_timeout=self.page_timeout,
        )

    def _search(self, name: str) -> Search:
        if self._browser is None:
            self._browser = browser.start(self.chrome_bin, self.chromedriver, page_timeout=self.page_timeout)
        return Search(
            driver=self._browser.driver,
            query=self.query,
            base_url=self.base_urls[name],
            safe_search=self.safe_search,
            deadline=lambda: self._deadline,
            page_timeout=self.page_timeout,
        )

    def _emit(self, message: str) -> None:
        log.info("%s", message)
        if self._log is not None:
            self._log(message)
