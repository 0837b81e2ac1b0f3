"""Helpers of the scraper tests: a Collector on the fixture engines and a census of browser processes."""

from __future__ import annotations

import tempfile

import psutil
import pytest

from scraper import Collector
from scraper.browser import TEMP_PREFIX

BROWSER_NAMES = ("chromium", "chrome", "chromedriver")


def browser_processes(marker: str | None = None) -> list[psutil.Process]:
    """Live Chromium and chromedriver processes that are children of this test process or whose command line
    names a profile folder under `marker` (the test's temporary folder: other sessions' browsers don't count)."""
    marker = marker or _current_marker[0]
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if any(name in proc.name().lower() for name in BROWSER_NAMES) and proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = proc
        except psutil.Error:
            continue
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker and marker in cmdline and TEMP_PREFIX in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found[proc.pid] = proc
    return list(found.values())


_current_marker: list[str | None] = [None]


@pytest.fixture(autouse=True)
def no_browser_left_behind(tmp_path, monkeypatch):
    """Put this test's browser profiles under its tmp_path, and check no browser process outlives the test."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _current_marker[0] = str(tmp_path)
    yield
    assert browser_processes(str(tmp_path)) == []
    _current_marker[0] = None


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

    def make(sources=("bing", "duckduckgo", "google"), *, timeout=90, safe_search=True, query="red panda", log=None):
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
