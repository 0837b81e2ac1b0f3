"""The exceptions of the scraper package."""

from __future__ import annotations


class ScraperError(Exception):
    """Base of every error the scraper raises on purpose."""


class EnginesUnavailable(ScraperError):
    """Every search engine failed or was blocked before a single image URL was collected."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("the image search engines did not answer; try again later")
        self.detail = detail  # per-engine reasons, for the log; str() stays the user-facing sentence


class EngineBlocked(ScraperError):
    """An engine answered with a CAPTCHA, a rate limit or a wall instead of results."""


class EngineFailed(ScraperError):
    """An engine's page did not load: a network error, Chromium's own error page, or an HTTP error status."""


class EngineTimeout(ScraperError):
    """An engine did not give results before the deadline."""
