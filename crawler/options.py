"""The settings of one crawl: what the user asked for and what the operator configured."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RENDERS = ("http", "browser")
SCOPES = ("host", "domain")


def trusted_hosts(config: Mapping[str, Any]) -> frozenset[str]:
    """GUARD_TRUSTED_HOSTS as a set of ``host:port`` (or ``host``) strings."""
    value = config.get("GUARD_TRUSTED_HOSTS") or []
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(item.strip().lower() for item in items if item.strip())


@dataclass(frozen=True)
class CrawlOptions:
    """One crawl's limits, scope and manners."""

    max_images: int = 1000
    max_pages: int = 10_000
    depth: int = 20
    render: str = "http"
    scope: str = "host"
    include: Sequence[re.Pattern[str]] = ()
    exclude: Sequence[re.Pattern[str]] = ()
    widths: tuple[int, ...] = ()
    per_host: int = 2
    delay: float = 0.25
    user_agent: str = "AdvancedImageDownloader-crawler/1.0"
    max_url_length: int = 2000
    http_workers: int = 4
    browser_workers: int = 2
    page_timeout: float = 20.0
    allow_private: bool = False
    trusted_hosts: frozenset[str] = frozenset()
    chrome_bin: str = "/usr/bin/chromium"
    chromedriver: str = "/usr/bin/chromedriver"
    batch: int = 64  # images handed to the download stage at once
    download: Mapping[str, Any] = field(default_factory=dict)  # the app config the download stage is built from

    def __post_init__(self) -> None:
        if self.render not in RENDERS:
            raise ValueError(f"render must be one of {', '.join(RENDERS)}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        if self.max_images < 1 or self.max_pages < 1 or self.depth < 0:
            raise ValueError("max_images and max_pages must be at least 1, depth at least 0")

    @property
    def workers(self) -> int:
        return self.browser_workers if self.render == "browser" else self.http_workers

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **chosen: Any) -> CrawlOptions:
        """Options from the app config (CRAWL_*, GUARD_TRUSTED_HOSTS, ALLOW_PRIVATE_URLS) and the user's choices."""
        base = cls()
        per_host = int(config.get("CRAWL_PER_HOST", base.per_host))
        return cls(
            per_host=per_host,
            delay=float(config.get("CRAWL_DELAY_SECONDS", base.delay)),
            user_agent=str(config.get("CRAWL_USER_AGENT") or base.user_agent),
            max_url_length=int(config.get("CRAWL_MAX_URL_LENGTH", base.max_url_length)),
            http_workers=max(2, 2 * per_host),
            browser_workers=int(config.get("CRAWL_BROWSER_WORKERS", base.browser_workers)),
            allow_private=bool(config.get("ALLOW_PRIVATE_URLS", False)),
            trusted_hosts=trusted_hosts(config),
            chrome_bin=str(config.get("CHROME_BIN", base.chrome_bin)),
            chromedriver=str(config.get("CHROMEDRIVER", base.chromedriver)),
            download=dict(config),
            **chosen,
        )
