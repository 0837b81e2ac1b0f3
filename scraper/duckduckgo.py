"""DuckDuckGo Images: read the `vqd` token from the results page, then follow the `i.js` JSON pages."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote_plus

from .candidate import Candidate
from .engine import EngineRun, Search, is_original, to_int
from .errors import EngineBlocked

log = logging.getLogger(__name__)

NAME = "duckduckgo"

# --- DuckDuckGo's pages and JSON; last checked 2026-11 against docs/engines.md (SearXNG, ddgs, better_bing 2026) ---
PAGE_PATH = "/?q={q}&iax=images&ia=images&kp={kp}"
FIRST_JSON_PATH = "/i.js?o=json&q={q}&l=us-en&vqd={vqd}&p={p}&s=0&u=bing&f=,,,,,&bpia=1&a=h_&ct=EN"
SAFE = {True: ("1", "1"), False: ("-2", "-1")}  # (kp= on the page, p= on i.js)
VQD_PATTERNS = (r'vqd="([^"]+)"', r"vqd=([\d-]+)&", r"vqd='([^']+)'")
BLOCK_MARKERS = ("ops@duckduckgo.com", "Ratelimit")
RESULTS, NEXT = "results", "next"
R_ORIGINAL, R_PAGE, R_TITLE, R_THUMB, R_WIDTH, R_HEIGHT = "image", "url", "title", "thumbnail", "width", "height"
JSON_HEADERS = {"Accept": "application/json, text/javascript, */*; q=0.01", "X-Requested-With": "XMLHttpRequest"}
# ---
MAX_PAGES = 50  # a bound in case `next` never ends


def find_vqd(html: str) -> str | None:
    """The query's vqd token from the results page, in any of the forms DuckDuckGo has used."""
    for pattern in VQD_PATTERNS:
        match = re.search(pattern, html)
        if match:
            return match.group(1)
    return None


def parse(payload: dict[str, Any]) -> list[Candidate]:
    """Candidates of one i.js JSON page."""
    found = []
    for item in payload.get(RESULTS) or []:
        image_url, thumb = item.get(R_ORIGINAL), item.get(R_THUMB)
        if is_original(image_url, thumb):
            found.append(
                Candidate(
                    image_url=image_url,
                    page_url=item.get(R_PAGE),
                    title=item.get(R_TITLE),
                    thumbnail_url=thumb,
                    width=to_int(item.get(R_WIDTH)),
                    height=to_int(item.get(R_HEIGHT)),
                    source=NAME,
                )
            )
    return found


def results(search: Search) -> EngineRun:
    """Yield DuckDuckGo's image results for the query, page after page of i.js."""
    q = quote_plus(search.query)
    kp, p = SAFE[search.safe_search]
    status = search.open(search.url(PAGE_PATH.format(q=q, kp=kp)))
    html = search.driver.page_source
    if any(marker in html for marker in BLOCK_MARKERS):
        raise EngineBlocked("block page instead of results")
    search.raise_if_blocked_status(status, "the results page")
    vqd = find_vqd(html)
    if not vqd:
        raise ValueError("no vqd token on the results page")
    path, pages = FIRST_JSON_PATH.format(q=q, vqd=vqd, p=p), 0
    while pages < MAX_PAGES:
        status, text = search.fetch(search.url(path), JSON_HEADERS)
        not_json = not text.lstrip().startswith("{")
        if status in (403, 418, 429) or (not_json and any(marker in text for marker in BLOCK_MARKERS)):
            raise EngineBlocked(f"HTTP {status} on i.js")
        if status != 200:
            raise ValueError(f"i.js answered HTTP {status}")
        payload = json.loads(text)
        pages += 1
        page = parse(payload)
        yield from page
        following = payload.get(NEXT)
        if not page or not following:
            return f"ran dry after {pages} pages"
        path = following if "vqd=" in following else f"{following}&vqd={quote_plus(vqd)}"
    return f"stopped after {MAX_PAGES} pages"
