"""Google Images: the originals embedded in the page's data, the viewer panel as a second way, blocks detected."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote_plus, urlsplit

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from .candidate import Candidate
from .engine import EngineRun, Search, is_original, to_int
from .errors import EngineBlocked

log = logging.getLogger(__name__)

NAME = "google"

# --- Google's markup and data; last checked 2026-11 against docs/engines.md (2025 saved page, SearXNG 2026-08) ---
SEARCH_PATH = "/search?q={q}&udm=2&hl=en&safe={safe}"
SAFE = {True: "active", False: "off"}
CONSENT_COOKIES = {"SOCS": "CAISEwgBEgk0ODE3Nzk3MjQaAmVuIAEaBgiA_LyaBg", "CONSENT": "YES+cb"}
CONSENT_BUTTONS = ("#L2AGLb", "#W0wltc")  # "Accept all", then "Reject all"
CONSENT_HOST_PREFIX = "consent."
SORRY_MARKERS = ('id="captcha-form"', "g-recaptcha", "Our systems have detected unusual traffic")
JS_WALL_MARKERS = ("/httpservice/retry/enablejs", "Enable JavaScript and cookies to continue")
DATA_BLOCK = re.compile(r"AF_initDataCallback\(\{key:\s*'(ds:\d+)'.*?data:(.*?), sideChannel:", re.S)
DATA_KEY = "ds:1"
RESULT_KEY = "444383007"  # dict key whose value is [type, record]; type 1 = image
IMAGE_TYPE = 1
META_KEY = "2003"  # dict key whose value is [..., ..., page_url, title, ...]
META_PAGE, META_TITLE = 2, 3
TUPLE_PAIR = re.compile(r'\["(https?://[^"]+)",(\d+),(\d+)\],\["(https?://[^"]+)",(\d+),(\d+)\]')
META_AFTER = re.compile(r'"2003":\[[^\[\]]*?"(https?://[^"]+)","((?:[^"\\]|\\.)*)"')
TILE_SELECTOR = 'div[jsname="dTDiAc"][data-docid]'
TILE_CLICK = "div[data-viewer-entrypoint]"
TILE_THUMB = "g-img img"
VIEWER_IMAGE = 'img[jsname="kn3ccd"]'
MORE_RESULTS = "input.mye4qd"
NOT_ORIGINAL_HOSTS = ("gstatic.com", "google.com")
# ---
STALL_SECONDS = 3.0
MAX_STALLS = 2
VIEWER_SECONDS = 3.0
VIEWER_SWAP_SECONDS = 0.5  # how long an unrecognised preview may take to turn into the original


def page_kind(url: str, html: str) -> str:
    """"sorry", "jswall", "consent" or "results": what Google answered, decided before anything is parsed."""
    parts = urlsplit(url)
    if (parts.hostname or "").startswith("sorry.") or parts.path.startswith("/sorry") or any(
        marker in html for marker in SORRY_MARKERS
    ):
        return "sorry"
    if "enablejs" in parts.path or any(marker in html for marker in JS_WALL_MARKERS):
        return "jswall"
    if (parts.hostname or "").startswith(CONSENT_HOST_PREFIX) or any(f'id="{b[1:]}"' in html for b in CONSENT_BUTTONS):
        return "consent"
    return "results"


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _url_tuple(value: Any) -> tuple[str, int | None, int | None] | None:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[0].startswith("http"):
        return value[0], to_int(value[1]), to_int(value[2])
    return None


def _from_record(record: list) -> Candidate | None:
    tuples = [t for t in (_url_tuple(v) for v in record) if t]
    if len(tuples) < 2:
        return None
    (thumb, _, _), (image_url, height, width) = tuples[0], tuples[1]  # preview first, then the original
    page_url = title = None
    for node in _walk(record):
        if isinstance(node, dict) and isinstance(node.get(META_KEY), list):
            meta = node[META_KEY]
            page_url = meta[META_PAGE] if len(meta) > META_PAGE else None
            title = meta[META_TITLE] if len(meta) > META_TITLE else None
            break
    return _candidate(image_url, thumb, page_url, title, width, height)


def _candidate(
    image_url: str, thumb: str | None, page_url: str | None, title: str | None, width: int | None, height: int | None
) -> Candidate | None:
    host = urlsplit(image_url).hostname or ""
    if not is_original(image_url, thumb) or any(host.endswith(h) for h in NOT_ORIGINAL_HOSTS) or not (width and height):
        return None
    return Candidate(
        image_url, page_url=page_url, title=title, thumbnail_url=thumb, width=width, height=height, source=NAME
    )


def parse_data(html: str) -> list[Candidate]:
    """Approach A: walk the `ds:1` AF_initDataCallback data by key, not by position."""
    found = []
    for key, blob in DATA_BLOCK.findall(html):
        if key != DATA_KEY:
            continue
        try:
            data = json.loads(blob)
        except ValueError:
            log.info("google: %s data is not JSON", key)
            continue
        for node in _walk(data):
            if isinstance(node, dict) and isinstance(node.get(RESULT_KEY), list):
                entry = node[RESULT_KEY]
                if len(entry) > 1 and entry[0] == IMAGE_TYPE and isinstance(entry[1], list):
                    made = _from_record(entry[1])
                    if made:
                        found.append(made)
    return found


def _unescape(text: str) -> str:
    try:
        return json.loads(f'"{text}"')  # the page escapes = and & as \\u003d and \\u0026
    except ValueError:
        return text


def parse_tuples(html: str) -> list[Candidate]:
    """Approach A's fallback: every `["thumb",h,w],["original",h,w]` pair anywhere in the page's scripts."""
    found = []
    for match in TUPLE_PAIR.finditer(html):
        thumb, _, _, image_url, height, width = match.groups()
        meta = META_AFTER.search(html, match.end(), match.end() + 3000)
        page_url, title = (_unescape(meta.group(1)), _unescape(meta.group(2))) if meta else (None, None)
        made = _candidate(_unescape(image_url), _unescape(thumb), page_url, title, to_int(width), to_int(height))
        if made:
            found.append(made)
    return found


def parse(html: str) -> list[Candidate]:
    """Every original the page source holds: the key walk first, then the tuple pairs it missed."""
    found, seen = [], set()
    for made in parse_data(html) + parse_tuples(html):
        if made.image_url not in seen:
            seen.add(made.image_url)
            found.append(made)
    return found


def _check(search: Search) -> str:
    kind = page_kind(search.driver.current_url, search.driver.page_source)
    if kind == "sorry":
        raise EngineBlocked("/sorry/ page")
    if kind == "jswall":
        raise EngineBlocked("JavaScript wall")
    return kind


def _pass_consent(search: Search) -> None:
    driver = search.driver
    for selector in CONSENT_BUTTONS:
        buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, selector) if b.is_displayed()]
        if buttons:
            buttons[0].click()
            break
    else:
        raise ValueError("consent page without a known button")
    if not search.wait_for(lambda: page_kind(driver.current_url, driver.page_source) != "consent", STALL_SECONDS):
        raise ValueError("consent page did not go away")


def results(search: Search) -> EngineRun:
    """Yield Google's image results: embedded data page after page of scrolling, else the viewer panel."""
    driver, q = search.driver, quote_plus(search.query)
    search.open(search.url("/"))
    for name, value in CONSENT_COOKIES.items():  # cookies first; the consent page is the fallback
        try:
            driver.add_cookie({"name": name, "value": value, "path": "/"})
        except WebDriverException:
            log.debug("google: could not set cookie %s", name)
    search.open(search.url(SEARCH_PATH.format(q=q, safe=SAFE[search.safe_search])))
    if _check(search) == "consent":
        _pass_consent(search)
        _check(search)
    seen: set[str] = set()
    tiles = stalls = scrolls = 0
    use_viewer = False
    while True:
        count = len(driver.find_elements(By.CSS_SELECTOR, TILE_SELECTOR))
        new: Iterable[Candidate]
        if use_viewer:
            new = _viewer(search, tiles, count)
        else:
            new = [c for c in parse(driver.page_source) if c.image_url not in seen]
            if not new and not seen and count:
                log.info("google: no embedded image data, reading the viewer panel instead")
                use_viewer, new = True, _viewer(search, 0, count)
        for made in new:
            if made.image_url not in seen:
                seen.add(made.image_url)
                yield made
        if count == 0:
            return "ran dry: no results"
        stalls = 0 if count > tiles else stalls + 1
        if stalls >= MAX_STALLS:
            return f"ran dry after {scrolls} scrolls"
        tiles = count
        search.check_deadline()
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        for button in driver.find_elements(By.CSS_SELECTOR, MORE_RESULTS):
            if button.is_displayed():
                button.click()
        scrolls += 1
        search.wait_for(functools.partial(_more_tiles, driver, tiles), STALL_SECONDS)
        _check(search)


def _viewer(search: Search, start: int, stop: int) -> Iterator[Candidate]:
    """Approach B: click each tile and wait for the viewer's image to turn from the thumbnail into the original."""
    driver, previous = search.driver, None
    for tile in driver.find_elements(By.CSS_SELECTOR, TILE_SELECTOR)[start:stop]:
        search.check_deadline()
        thumbs = tile.find_elements(By.CSS_SELECTOR, TILE_THUMB)
        thumb = thumbs[0].get_attribute("src") if thumbs else None
        targets = tile.find_elements(By.CSS_SELECTOR, TILE_CLICK) or [tile]
        driver.execute_script("arguments[0].click();", targets[0])

        image_url = _viewer_original(search, thumb, previous)
        if not image_url:
            continue
        previous = image_url
        titles = tile.find_elements(By.CSS_SELECTOR, "div.toI8Rb")
        yield Candidate(
            image_url=image_url,
            page_url=tile.get_attribute("data-lpage"),
            title=titles[0].text if titles else None,
            thumbnail_url=thumb,
            source=NAME,
        )


def _viewer_original(search: Search, thumb: str | None, previous: str | None) -> str | None:
    """The viewer's image once Google swapped the preview for the original (or the preview if it never swaps)."""
    driver = search.driver

    def shown() -> str | None:
        for img in driver.find_elements(By.CSS_SELECTOR, VIEWER_IMAGE):
            src = img.get_attribute("src") or ""
            if src.startswith("http") and src not in (thumb, previous):
                return src
        return None

    preview = search.wait_for(shown, VIEWER_SECONDS)
    if not preview:
        return None
    # A recognised thumbnail (gstatic) must change; anything else may still be the preview: give it a moment.
    patience = VIEWER_SECONDS if not is_original(preview, thumb) else VIEWER_SWAP_SECONDS
    swapped = search.wait_for(lambda: (src := shown()) and src != preview and src, patience)
    image_url = swapped or preview
    return image_url if is_original(image_url, thumb) else None


def _more_tiles(driver: Any, known: int) -> bool:
    """True once the page holds more than ``known`` result tiles."""
    return len(driver.find_elements(By.CSS_SELECTOR, TILE_SELECTOR)) > known
