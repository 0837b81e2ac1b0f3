"""Helpers of the scraper tests: a Collector on the fixture engines and a census of browser processes."""

from __future__ import annotations

import psutil
import pytest

from scraper import Collector
from scraper.browser import TEMP_PREFIX

BROWSER_NAMES = ("chromium", "chrome", "chromedriver")


def browser_processes() -> list[psutil.Process]:
    """Chromium and chromedriver processes that are children of this test process or use one of our profiles."""
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if any(name in proc.name().lower() for name in BROWSER_NAMES) and proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = proc
        except psutil.Error:
            continue
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if TEMP_PREFIX in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found[proc.pid] = proc
    return list(found.values())


@pytest.fixture
def fixture_engines(engines):
    """The session's fixture engines, put back to "ok" after the test."""
    engines.reset()
    yield engines
    engines.reset()


@pytest.fixture
def make_collector(fixture_engines):
    """Build Collectors on the fixture engines; every one is closed after the test, and no browser may survive."""
    made: list[Collector] = []

    def make(sources=("bing", "duckduckgo", "google"), *, timeout=60, safe_search=True, query="red panda", log=None):
        collector = Collector(
            query,
            sources=list(sources),
            base_urls=fixture_engines.urls,
            safe_search=safe_search,
            chrome_bin="/usr/bin/chromium",
            chromedriver="/usr/bin/chromedriver",
            timeout=timeout,
            log=log,
        )
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.close()
    assert browser_processes() == []
