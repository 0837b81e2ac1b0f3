"""Read sitemaps (urlset and sitemapindex XML, or plain text) into page URLs, bounded in files, size and URLs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from lxml import etree

logger = logging.getLogger(__name__)

MAX_SITEMAPS = 50
MAX_URLS = 1_000_000

Fetch = Callable[[str], tuple[int, str]]


def parse(text: str) -> tuple[list[str], list[str]]:
    """Return (page URLs, nested sitemap URLs) of one sitemap document."""
    stripped = text.lstrip()
    if not stripped.startswith("<"):
        return [line.strip() for line in stripped.splitlines() if line.strip().startswith("http")], []
    # No entities, no network, no huge trees: a sitemap is data from a stranger.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=True)
    try:
        root = etree.fromstring(stripped.encode("utf-8"), parser)
    except etree.XMLSyntaxError:
        return [], []
    if root is None:
        return [], []
    locs = [(node.text or "").strip() for node in root.iter("{*}loc") if (node.text or "").strip()]
    if etree.QName(root).localname == "sitemapindex":
        return [], locs
    return locs, []


def page_urls(first: list[str], fetch: Fetch, limit: int = MAX_URLS) -> Iterator[str]:
    """Yield the page URLs of the sitemaps ``first`` and the sitemaps they index, breadth first."""
    queue, seen, count = list(dict.fromkeys(first)), set(first), 0
    fetched = 0
    while queue and fetched < MAX_SITEMAPS and count < limit:
        url = queue.pop(0)
        fetched += 1
        status, text = fetch(url)
        if status != 200:
            logger.info("sitemap %s: status %s", url, status)
            continue
        pages, nested = parse(text)
        for page in pages[: limit - count]:
            count += 1
            yield page
        for child in nested:
            if child not in seen:
                seen.add(child)
                queue.append(child)
