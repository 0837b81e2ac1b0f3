"""What one page yields: its image candidates with their metadata, the links to follow, its title and tags.

Images: ``img[src]``, the largest ``srcset`` candidate (``picture > source`` too), the lazy attributes
(``data-src``, ``data-srcset``, ``data-lazy-src``, ``data-original``: preferred over ``src``, which is then
usually a placeholder), links whose target is an image file, ``og:image`` and ``background-image`` in inline
styles. The same parser reads a page fetched over HTTP and the DOM a browser built after scripts and scrolling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from .urls import is_image_file

LAZY_SRC = ("data-src", "data-lazy-src", "data-original")
_BACKGROUND = re.compile(r"background(?:-image)?\s*:[^;]*?url\(\s*(['\"]?)(.*?)\1\s*\)", re.I)
_MAX_TEXT = 500  # alt, title and caption are cut here: a page cannot make one record huge


@dataclass(frozen=True)
class FoundImage:
    """An image candidate and what the page says about it."""

    url: str
    alt: str | None = None
    title: str | None = None
    caption: str | None = None
    widths: tuple[tuple[int, str], ...] = ()  # the srcset candidates with a width descriptor, (width, url)


@dataclass
class PageYield:
    """Everything read from one page."""

    url: str
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    images: list[FoundImage] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())[:_MAX_TEXT]
    return value or None


def _absolute(base: str, href: str | None) -> str | None:
    if not href:
        return None
    href = href.strip()
    if not href or href.startswith(("data:", "javascript:", "mailto:", "#")):
        return None
    url = urljoin(base, href)
    return url.split("#", 1)[0] if urlsplit(url).scheme in ("http", "https") else None


def parse_srcset(value: str) -> list[tuple[float, bool, str]]:
    """Return the candidates of a srcset as (size, is_width, url); a candidate without a descriptor counts as 1x."""
    found = []
    for item in value.split(","):
        bits = item.strip().split()
        if not bits:
            continue
        size, is_width = 1.0, False
        if len(bits) > 1:
            descriptor = bits[1].lower()
            try:
                if descriptor.endswith("w"):
                    size, is_width = float(descriptor[:-1]), True
                elif descriptor.endswith("x"):
                    size = float(descriptor[:-1])
            except ValueError:
                continue
        found.append((size, is_width, bits[0]))
    return found


def _caption(node: LexborNode) -> str | None:
    parent = node.parent
    for _ in range(6):  # the nearest figure, a few levels up at most
        if parent is None:
            return None
        if parent.tag == "figure":
            caption = parent.css_first("figcaption")
            return _text(caption.text()) if caption is not None else None
        parent = parent.parent
    return None


class _Images:
    def __init__(self, base: str) -> None:
        self.base = base
        self.found: dict[str, FoundImage] = {}

    def add(self, href: str | None, node: LexborNode | None = None, widths: tuple[tuple[int, str], ...] = (),
            title: str | None = None) -> None:
        url = _absolute(self.base, href)
        if url is None or url in self.found:
            return
        attrs = node.attributes if node is not None else {}
        self.found[url] = FoundImage(url, _text(attrs.get("alt")), _text(attrs.get("title") or title),
                                     _caption(node) if node is not None else None, widths)

    def add_img(self, img: LexborNode) -> None:
        attrs = img.attributes
        candidates = []
        for name in ("data-srcset", "srcset"):
            candidates += parse_srcset(attrs.get(name) or "")
        if img.parent is not None and img.parent.tag == "picture":
            for source in img.parent.css("source"):
                for name in ("data-srcset", "srcset"):
                    candidates += parse_srcset(source.attributes.get(name) or "")
        if candidates:
            widths = tuple(sorted({(int(s), _absolute(self.base, u) or "") for s, w, u in candidates if w}))
            best = max(candidates, key=lambda c: (c[1], c[0]))  # width descriptors first, then the largest
            self.add(best[2], img, widths=tuple(w for w in widths if w[1]))
            return
        for name in (*LAZY_SRC, "src"):
            if attrs.get(name):
                self.add(attrs[name], img)
                return


def extract(html: str, url: str) -> PageYield:
    """Read the page at ``url`` (its final URL, after redirects) from its HTML."""
    tree = LexborHTMLParser(html)
    base_node = tree.css_first("base[href]")
    base = _absolute(url, base_node.attributes.get("href")) if base_node is not None else None
    base = base or url
    title_node = tree.css_first("title")
    page = PageYield(url=url, title=_text(title_node.text()) if title_node is not None else None)
    images = _Images(base)
    for meta in tree.css("meta[property='og:image'], meta[property='og:image:url']"):
        images.add(meta.attributes.get("content"))
    for img in tree.css("img"):
        images.add_img(img)
    for node in tree.css("[style]"):
        for match in _BACKGROUND.finditer(node.attributes.get("style") or ""):
            images.add(match.group(2), node)
    links: dict[str, None] = {}
    for anchor in tree.css("a[href]"):
        target = _absolute(base, anchor.attributes.get("href"))
        if target is None:
            continue
        if is_image_file(target):
            images.add(target, anchor, title=anchor.text())
        else:
            links[target] = None
        if "tag" in (anchor.attributes.get("rel") or "").lower().split():
            tag = _text(anchor.text())
            if tag and tag not in page.tags:
                page.tags.append(tag)
    page.images = list(images.found.values())
    page.links = list(links)
    return page
