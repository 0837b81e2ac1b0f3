"""The settings of one download stage, built from the app config and the user's filters."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

FORMAT_NAMES = ("jpeg", "png", "webp", "gif")  # the order forms and messages list them in
FORMATS = frozenset(FORMAT_NAMES)
_ALIASES = {"jpg": "jpeg"}


def normalize_formats(formats: Iterable[str] | None) -> frozenset[str]:
    """Return the set of accepted format names; ``None`` or empty means all of them."""
    if not formats:
        return FORMATS
    chosen = frozenset(_ALIASES.get(name.strip().lower(), name.strip().lower()) for name in formats)
    unknown = chosen - FORMATS
    if unknown:
        raise ValueError(f"unknown image formats: {', '.join(sorted(unknown))} (choose from jpeg, png, webp, gif)")
    return chosen


def user_agent(contact: str | None) -> str:
    """The User-Agent of image downloads: with CONTACT_EMAIL in it when set, as Wikimedia's policy asks of every
    request to its servers (upload.wikimedia.org included), not only of API calls."""
    if not contact:
        return DownloadOptions.user_agent
    return f"Mozilla/5.0 (compatible; AdvancedImageDownloader/1.0; +{contact})"


def check_workers(setting: int | str) -> int:
    """DOWNLOAD_CHECK_WORKERS as a number: ``auto`` is one per CPU, at most 4 (34–38 MB each)."""
    if setting == "auto":
        return min(os.cpu_count() or 1, 4)
    return int(setting)


@dataclass(frozen=True)
class DownloadOptions:
    """Limits, politeness and filters of one download stage."""

    threads: int = 64
    per_host: int = 4  # downloads at once per host to start with
    per_host_max: int = 16  # the most the per-host limit may grow to while a host answers quickly
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    deadline: float = 300.0
    max_bytes: int = 20 * 1024 * 1024
    min_side: int = 32
    min_width: int = 0
    min_height: int = 0
    formats: frozenset[str] = FORMATS
    near_distance: int = 6
    allow_private: bool = False
    respect_noai: bool = True  # refuse images served with X-Robots-Tag: noai or noimageai
    max_redirects: int = 5
    retries: int = 2  # extra attempts after a 429 or 503 (a 500, 502 or 504 is retried once)
    max_retry_wait: float = 30.0  # a longer Retry-After gives up on that URL
    retry_pause: float = 0.1  # before the one retry of a URL that answered 500, 502 or 504
    max_pixels: int = 50_000_000  # larger images are refused as decompression bombs
    image_time_limit: float = 60.0  # one image may not trickle in for longer than this
    # Host names exempt from the address guard (tests, an intranet mirror); never taken from user input.
    trusted_hosts: frozenset[str] = frozenset()
    # Seam for tests: host -> IP address strings. Default: the system resolver.
    resolver: Callable[[str, int], list[str]] | None = field(default=None, compare=False)
    user_agent: str = "Mozilla/5.0 (compatible; AdvancedImageDownloader/1.0)"  # see user_agent()
    thumbnails: int = 0  # the first this many images also get a small JPEG preview in out_dir/thumbnails
    check_workers: int = 0  # processes that decode and hash downloaded files; 0: threads of the stage do it

    def __post_init__(self) -> None:
        if self.threads < 1 or self.per_host < 1:
            raise ValueError("threads and per_host must be at least 1")
        if self.check_workers < 0:
            raise ValueError("check_workers must be 0 or more")
        if self.per_host_max < self.per_host:
            raise ValueError(f"per_host_max ({self.per_host_max}) must be at least per_host ({self.per_host})")
        object.__setattr__(self, "formats", normalize_formats(self.formats))

    @property
    def min_size(self) -> tuple[int, int]:
        """Return the smallest accepted (width, height): the user's filter, never below MIN_IMAGE_SIDE."""
        return max(self.min_side, self.min_width), max(self.min_side, self.min_height)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        formats: Iterable[str] | None = None,
        min_width: int = 0,
        min_height: int = 0,
        **overrides: Any,
    ) -> DownloadOptions:
        """Build options from the app config (``app.config`` or ``config.load()``) and the user's filters."""
        base = cls()
        options = cls(
            threads=int(config.get("DOWNLOAD_THREADS", base.threads)),
            per_host=int(config.get("DOWNLOAD_PER_HOST", base.per_host)),
            per_host_max=max(
                int(config.get("DOWNLOAD_PER_HOST", base.per_host)),
                int(config.get("DOWNLOAD_PER_HOST_MAX", base.per_host_max)),
            ),
            connect_timeout=float(config.get("DOWNLOAD_CONNECT_TIMEOUT", base.connect_timeout)),
            read_timeout=float(config.get("DOWNLOAD_READ_TIMEOUT", base.read_timeout)),
            deadline=float(config.get("DOWNLOAD_DEADLINE_SECONDS", base.deadline)),
            max_bytes=int(config.get("MAX_IMAGE_BYTES", base.max_bytes)),
            min_side=int(config.get("MIN_IMAGE_SIDE", base.min_side)),
            near_distance=int(config.get("NEAR_DUPLICATE_DISTANCE", base.near_distance)),
            allow_private=bool(config.get("ALLOW_PRIVATE_URLS", base.allow_private)),
            respect_noai=bool(config.get("RESPECT_NOAI", base.respect_noai)),
            min_width=int(min_width or 0),
            min_height=int(min_height or 0),
            formats=normalize_formats(formats),
            check_workers=check_workers(config.get("DOWNLOAD_CHECK_WORKERS", "auto")),
            user_agent=user_agent(config.get("CONTACT_EMAIL")),
        )
        return replace(options, **overrides) if overrides else options
