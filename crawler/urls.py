"""Canonical URLs and the crawl's scope: which pages may be followed and which images taken."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tldextract
from w3lib.url import canonicalize_url

# Query parameters that name a visitor or a campaign, not a page: dropped, so one page has one URL.
SESSION_PARAMS = frozenset({"sessionid", "session_id", "sid", "jsessionid", "phpsessid", "aspsessionid", "sessid",
                            "gclid", "fbclid"})
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")


def canonical(url: str) -> str:
    """Return ``url`` without fragment, session ids and ``utm_*``, with its query sorted (w3lib's canonical form)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in SESSION_PARAMS]
    path = re.sub(r";jsessionid=[^/?#]*", "", parts.path, flags=re.I)
    cleaned = urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))
    return canonicalize_url(cleaned, keep_fragments=False)


def is_image_file(url: str) -> bool:
    """True when the URL's path ends like an image file (a link to one is an image, not a page)."""
    return urlsplit(url).path.lower().endswith(IMAGE_EXTENSIONS)


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    # The public-suffix snapshot bundled with tldextract: never fetched at run time.
    return tldextract.TLDExtract(suffix_list_urls=())


def registrable_domain(host: str) -> str:
    """Return the registrable domain of ``host`` ("example.co.uk" for "a.b.example.co.uk"); an IP stays itself."""
    found = _extractor()(host)
    domain = found.top_domain_under_public_suffix if hasattr(found, "top_domain_under_public_suffix") else ""
    return (domain or found.registered_domain or host).lower()


@dataclass(frozen=True)
class Scope:
    """The pages a crawl may open and the images it may take, decided from the start URL and the user's filters."""

    start_url: str
    mode: str = "host"  # "host": the start URL's host name; "domain": its registrable domain
    include: Sequence[re.Pattern[str]] = ()
    exclude: Sequence[re.Pattern[str]] = ()
    max_url_length: int = 2000

    def __post_init__(self) -> None:
        if self.mode not in ("host", "domain"):
            raise ValueError(f"scope must be host or domain, not {self.mode!r}")

    @property
    def home(self) -> str:
        host = (urlsplit(self.start_url).hostname or "").lower()
        return registrable_domain(host) if self.mode == "domain" else host

    def on_site(self, url: str) -> bool:
        """True when ``url`` is http(s) on the crawl's host (or domain), whatever its port."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or len(url) > self.max_url_length:
            return False
        if self.mode == "host":
            return host == self.home
        return host == self.home or host.endswith("." + self.home)

    def follows(self, url: str) -> bool:
        """True when the page at ``url`` is in scope and passes --include and --exclude."""
        if not self.on_site(url):
            return False
        if self.include and not any(pattern.search(url) for pattern in self.include):
            return False
        return not any(pattern.search(url) for pattern in self.exclude)
