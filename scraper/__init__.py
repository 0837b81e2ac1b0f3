"""Turn a search query into image URLs, collected with headless Chromium from image search engines.

Interface used by the rest of the app::

    from scraper import Candidate, Collector, EngineReport, ScraperError, EnginesUnavailable

    with Collector.from_config(query, app.config, log=job_log, licence="any") as collector:  # browser on first use
        batch = collector.collect(want)   # up to `want` new unique Candidates; fewer, even [], once all ran dry
        collector.reports                 # [EngineReport(engine, count, stopped), ...], in IMAGE_SOURCES order

    from scraper import licences    # FILTERS, CODES, passes(code, filter), credit_line(record), parse(name)

    reap_orphans()   # kill the Chromium of processes that died without quitting it (periodic upkeep)

Engines (``bing``, ``duckduckgo``, ``google``; one module each, selectors in a dated constants block) are tried in
IMAGE_SOURCES order; when one is blocked, fails or runs dry, the next fills the remainder. Each engine is a
generator, so a second ``collect()`` continues where the first stopped. Duplicates across engines are removed by
normalised URL. Only original image URLs are returned, never the engines' thumbnails. ``openverse`` and
``wikimedia`` call JSON APIs with requests (``scraper/api.py``; no browser) and fill the Candidates' licence fields
(``license``, ``license_version``, ``license_url``, ``creator``, ``attribution``); a ``licence`` filter other than
``any`` uses only them and keeps only the candidates whose licence passes it. ``urls`` (``scraper/urls.py``; no
browser) hands out the image URLs of the list that URL_LIST names, a text file or an http(s) URL.

Exceptions::

    ScraperError               base of everything raised on purpose
    ├── EnginesUnavailable     every engine failed and nothing was ever collected; str() is the user-facing
    │                          "the image search engines did not answer; try again later", .detail the reasons
    ├── EngineBlocked          (inside the package) an engine answered with a CAPTCHA, rate limit or wall
    ├── EngineTimeout          (inside the package) an engine missed the round's deadline
    └── BrowserUnavailable     (inside the package) Chromium or chromedriver would not start
"""

from typing import TYPE_CHECKING, Any

from .candidate import Candidate
from .errors import EnginesUnavailable, ScraperError

if TYPE_CHECKING:
    from .browser import reap_orphans
    from .collector import Collector, EngineReport

_LAZY = {"Collector": ".collector", "EngineReport": ".collector", "reap_orphans": ".browser"}


def __getattr__(name: str) -> Any:
    # The collector and the browser pull in Selenium: imported on first use, so `flask fetch` and the web forms
    # (which only need the candidate record, the errors and the licence filters) start without it.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Candidate", "Collector", "EngineReport", "EnginesUnavailable", "ScraperError", "reap_orphans"]
