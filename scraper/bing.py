"""Bing Images: the `m` JSON of every `a.iusc`, first from the results page, then page after page from /images/async."""

from __future__ import annotations

import functools
import json
import logging
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote_plus, urlsplit

from selenium.webdriver.common.by import By

from .candidate import Candidate
from .engine import EngineRun, Search, is_original, to_int

log = logging.getLogger(__name__)

NAME = "bing"

# --- Bing's markup and endpoints; last checked 2026-11 against docs/engines.md (SearXNG, ddgs, better_bing 2026) ---
SEARCH_PATH = "/images/search?q={q}&form=HDRSC2&first=1&adlt={safe}"
ASYNC_PATH = "/images/async?q={q}&first={first}&count={count}&adlt={safe}&mmasync=1"
PAGE_SIZE = 35
SAFE = {True: "strict", False: "off"}  # adlt=
RESULT_SELECTOR = "a.iusc"  # every one, not only those inside ul.dgControl_list: hits also live in .imgpt
RESULT_CLASS = "iusc"
M_ORIGINAL, M_PAGE, M_TITLE, M_THUMB = "murl", "purl", "t", "turl"  # keys of the `m` attribute's JSON
HREF_ORIGINAL, HREF_WIDTH, HREF_HEIGHT = "mediaurl", "expw", "exph"  # query of a.iusc@href (view=detailV2)
SEE_MORE_SELECTOR = "div.mm_seemore a.btn_seemore"
CONSENT_SELECTOR = "#bnp_btn_accept"
# ---
STALL_SECONDS = 3.0  # scrolling: how long to wait for new results before counting a stall
MAX_STALLS = 2
MAX_EMPTY_PAGES = 2  # async pages that only repeat what we have, before we call Bing dry

_READ_DOM_JS = (
    "return Array.from(document.querySelectorAll(arguments[0])).slice(arguments[1])"
    ".map(a => [a.getAttribute('m'), a.getAttribute('href')]);"
)
_COUNT_JS = "return document.querySelectorAll(arguments[0]).length;"


def candidate(m: str | None, href: str | None) -> Candidate | None:
    """Build a Candidate from one `a.iusc`'s `m` attribute (already unescaped) and its href."""
    try:
        data = json.loads(m) if m else {}
    except ValueError:
        data = {}
    query = parse_qs(urlsplit(href or "").query)

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    image_url = data.get(M_ORIGINAL) or first(HREF_ORIGINAL)
    thumb = data.get(M_THUMB)
    if not image_url or not is_original(image_url, thumb):
        return None
    return Candidate(
        image_url=image_url,
        page_url=data.get(M_PAGE),
        title=data.get(M_TITLE),
        thumbnail_url=thumb,
        width=to_int(first(HREF_WIDTH)),
        height=to_int(first(HREF_HEIGHT)),
        source=NAME,
    )


class _ResultParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str | None, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        attributes = dict(attrs)
        if RESULT_CLASS in (attributes.get("class") or "").split():
            self.found.append((attributes.get("m"), attributes.get("href")))


def parse(html: str) -> list[Candidate]:
    """Every result of a Bing results page or /images/async fragment, in page order."""
    parser = _ResultParser()
    parser.feed(html)
    return [c for c in (candidate(m, href) for m, href in parser.found) if c is not None]


def results(search: Search, *, strategy: str = "fetch") -> EngineRun:
    """Yield Bing's results for the query; `strategy` "fetch" reads /images/async, "scroll" lets the page load more."""
    q = quote_plus(search.query)
    safe = SAFE[search.safe_search]
    status = search.open(search.url(SEARCH_PATH.format(q=q, safe=safe)))
    search.raise_if_blocked_status(status, "the results page")
    for button in search.driver.find_elements(By.CSS_SELECTOR, CONSENT_SELECTOR):
        if button.is_displayed():
            button.click()
    read = search.driver.execute_script(_READ_DOM_JS, RESULT_SELECTOR, 0)
    found = [c for c in (candidate(m, href) for m, href in read) if c is not None]
    if not read:
        return "ran dry: no results"
    yield from found
    if strategy == "scroll":
        return (yield from _scroll(search, len(read)))
    pages, first, repeats = 1, len(read) + 1, 0
    seen = {c.image_url for c in found}
    while True:
        status, text = search.fetch(search.url(ASYNC_PATH.format(q=q, first=first, count=PAGE_SIZE, safe=safe)))
        search.raise_if_blocked_status(status, "/images/async")
        if status != 200:
            log.info("bing: /images/async answered %s, scrolling instead", status)
            return (yield from _scroll(search, len(search.driver.execute_script(_READ_DOM_JS, RESULT_SELECTOR, 0))))
        page = parse(text)
        if not page:  # an empty async response is Bing's end of results
            return f"ran dry after {pages} pages"
        pages += 1
        first += len(page)
        new = [c for c in page if c.image_url not in seen]
        repeats = 0 if new else repeats + 1
        if repeats >= MAX_EMPTY_PAGES:
            return f"ran dry after {pages} pages (only repeats)"
        seen.update(c.image_url for c in new)
        yield from new


def _scroll(search: Search, known: int) -> EngineRun:
    driver, stalls, rounds = search.driver, 0, 0
    while stalls < MAX_STALLS:
        search.check_deadline()
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        for button in driver.find_elements(By.CSS_SELECTOR, SEE_MORE_SELECTOR):
            if button.is_displayed():
                button.click()
        count = search.wait_for(functools.partial(_grew, search, known), STALL_SECONDS)
        if not count:
            stalls += 1
            continue
        stalls, rounds = 0, rounds + 1
        read = driver.execute_script(_READ_DOM_JS, RESULT_SELECTOR, known)
        known += len(read)  # the page may have grown again since `count` was taken
        for m, href in read:
            found = candidate(m, href)
            if found is not None:
                yield found
    return f"ran dry after {rounds} scrolls"


def _grew(search: Search, known: int) -> int:
    count = search.driver.execute_script(_COUNT_JS, RESULT_SELECTOR)
    return count if count > known else 0
