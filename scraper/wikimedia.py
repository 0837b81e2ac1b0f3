"""Wikimedia Commons: the MediaWiki Action API's file search with image info, one request at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from . import licences
from .api import ApiSearch, raise_if_rate_limited
from .candidate import Candidate
from .engine import EngineRun, is_original, to_int
from .errors import EngineBlocked

log = logging.getLogger(__name__)

NAME = "wikimedia"
BASE_URL_SETTING = "WIKIMEDIA_URL"

# --- MediaWiki Action API on Commons; last checked 2026-11 against ../shared/reference/open-licence-apis.md ---
API_PATH = "/w/api.php"
META_KEYS = ("Artist", "Attribution", "ImageDescription", "License", "LicenseShortName", "LicenseUrl")
SEARCH_PARAMS = {
    "action": "query",
    "format": "json",
    "generator": "search",
    "gsrnamespace": "6",  # File:
    "gsrlimit": "50",
    "prop": "imageinfo",
    "iiprop": "url|size|mime|extmetadata",
    "iiextmetadatafilter": "|".join(META_KEYS),
    "iiextmetadatalanguage": "en",
}
SEARCH_SUFFIX = " filetype:bitmap"  # CirrusSearch keyword: raster files only (no SVG, PDF or video)
CONTINUE, QUERY, PAGES, INDEX, TITLE, IMAGEINFO = "continue", "query", "pages", "index", "title", "imageinfo"
I_ORIGINAL, I_PAGE, I_MIME, I_META = "url", "descriptionurl", "mime", "extmetadata"  # of imageinfo[0]
I_WIDTH, I_HEIGHT = "width", "height"
M_ARTIST, M_ATTRIBUTION, M_LICENSE, M_SHORT_NAME, M_LICENSE_URL = (
    "Artist", "Attribution", "License", "LicenseShortName", "LicenseUrl"
)
META_VALUE = "value"  # each extmetadata key is {"value": <HTML>, "source": ..., "hidden": ...}
ERROR, ERROR_CODE, ERROR_INFO = "error", "code", "info"
BACK_OFF_CODES = ("ratelimited", "maxlag")  # errors that mean: ask less often
TITLE_PREFIX = "File:"
MIMES = ("image/jpeg", "image/png", "image/webp", "image/gif")  # what the download stage accepts
# ---
MAX_PAGES = 40  # 40 x 50 = 2,000 files per query: a bound in case `continue` never ends

# Wikimedia asks for requests one at a time, not in parallel: every job of this process takes turns.
_one_at_a_time = threading.Lock()


class _PlainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(html: Any) -> str | None:
    """The text of an extmetadata value (HTML): tags dropped, entities decoded, white space collapsed."""
    if html is None:
        return None
    parser = _PlainText()
    parser.feed(str(html))
    parser.close()
    return " ".join("".join(parser.parts).split()) or None


def _meta(meta: Mapping[str, Any], key: str) -> str | None:
    entry = meta.get(key)
    return plain_text(entry.get(META_VALUE)) if isinstance(entry, Mapping) else None


def candidate(page: Mapping[str, Any]) -> Candidate | None:
    """A Candidate from one entry of `query.pages`, or None for a file that is not a raster image."""
    info = (page.get(IMAGEINFO) or [{}])[0]
    image_url = info.get(I_ORIGINAL)
    if info.get(I_MIME) not in MIMES or not is_original(image_url):
        return None
    meta = info.get(I_META) or {}
    code, version = licences.parse(_meta(meta, M_LICENSE) or _meta(meta, M_SHORT_NAME))
    title = str(page.get(TITLE) or "").removeprefix(TITLE_PREFIX).rsplit(".", 1)[0] or None
    return Candidate(
        image_url=image_url,
        page_url=info.get(I_PAGE),
        title=title,
        width=to_int(info.get(I_WIDTH)),
        height=to_int(info.get(I_HEIGHT)),
        source=NAME,
        license=code,
        license_version=version,
        license_url=_meta(meta, M_LICENSE_URL),
        creator=_meta(meta, M_ARTIST),
        attribution=_meta(meta, M_ATTRIBUTION),
    )


def parse(payload: Mapping[str, Any]) -> list[Candidate]:
    """Candidates of one answer, in search-rank order (`pages` is keyed by page id; `index` is the rank)."""
    pages = list(((payload.get(QUERY) or {}).get(PAGES) or {}).values())
    pages.sort(key=lambda page: to_int(page.get(INDEX)) or 0)
    return [c for c in (candidate(page) for page in pages) if c is not None]


def results(api: ApiSearch) -> EngineRun:
    """Yield Commons' files for the query, following the answer's `continue` object page after page."""
    if not api.settings.get("CONTACT_EMAIL"):
        raise ValueError("CONTACT_EMAIL is not set: Wikimedia asks every client for a contact in its User-Agent")
    params: dict[str, Any] = SEARCH_PARAMS | {"gsrsearch": api.query + SEARCH_SUFFIX}
    for pages in range(1, MAX_PAGES + 1):
        response = api.request("GET", API_PATH, params=params, one_at_a_time=_one_at_a_time)
        raise_if_rate_limited(response, API_PATH)
        if response.status_code == 403:
            raise EngineBlocked(f"HTTP 403 on {API_PATH}: {response.text[:120]}")
        if response.status_code != 200:
            raise ValueError(f"{API_PATH} answered HTTP {response.status_code}")
        payload = response.json()
        error = payload.get(ERROR)
        if error:
            code, info = error.get(ERROR_CODE), error.get(ERROR_INFO, "")
            if code in BACK_OFF_CODES:
                raise EngineBlocked(f"rate-limited: {code} ({info})")
            raise ValueError(f"{API_PATH} error {code}: {info}")
        yield from parse(payload)
        following = payload.get(CONTINUE)
        if not following:
            return f"ran dry after {pages} pages"
        params = SEARCH_PARAMS | {"gsrsearch": api.query + SEARCH_SUFFIX} | following
    return f"stopped after {MAX_PAGES} pages"
