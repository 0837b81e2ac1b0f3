"""The engines and the Collector against the fixture engines, in the real headless Chromium."""

from __future__ import annotations

import time

import pytest

from scraper import Collector, EngineReport, EnginesUnavailable, bing, browser
from scraper.collector import normalise
from scraper.engine import Search

from .conftest import browser_processes

pytestmark = pytest.mark.browser


def assert_originals(batch, image_base):
    urls = [c.image_url for c in batch]
    assert all(url.startswith(f"{image_base}/img/") for url in urls), [u for u in urls if "/img/" not in u][:3]
    assert not any("/thumb/" in url for url in urls)
    assert len({normalise(url) for url in urls}) == len(urls)


@pytest.mark.parametrize("engine", ["bing", "duckduckgo", "google"])
def test_each_engine_gives_500_originals(make_collector, fixture_engines, engine):
    collector = make_collector([engine])
    batch = collector.collect(500)
    assert len(batch) == 500
    assert_originals(batch, fixture_engines.image_base)
    assert {c.source for c in batch} == {engine}
    assert all(c.page_url and c.title for c in batch)


def test_second_collect_continues_where_the_first_stopped(make_collector, fixture_engines):
    collector = make_collector(["bing"])
    first, second = collector.collect(100), collector.collect(100)
    assert len(first) == len(second) == 100
    assert not {c.image_url for c in first} & {c.image_url for c in second}
    searches = [r for r in fixture_engines.requests if r[1] == "/images/search"]
    assert len(searches) == 1  # resumed, not restarted


def test_bing_scrolls_and_presses_see_more(fixture_engines):
    started = browser.start()
    try:
        search = Search(started.driver, "red panda", fixture_engines.bing_url, True, lambda: time.monotonic() + 60)
        run = bing.results(search, strategy="scroll")
        found = [next(run) for _ in range(250)]  # beyond the 175 after which only the button loads more
    finally:
        started.quit()
    assert len({c.image_url for c in found}) == 250
    assert_originals(found, fixture_engines.image_base)
    assert any(path == "/images/async" for _, path, _ in fixture_engines.requests)


@pytest.mark.parametrize("mode", ["empty", "block", "dead", "slow", "unavailable", "hangup"])
def test_other_engines_fill_in_when_bing_fails(make_collector, fixture_engines, mode):
    fixture_engines.set_mode("bing", mode)
    lines = []
    # A quarter of the timeout per page: 10 s makes the slow engine (30 s) time out; the others get 15 s, since
    # 10 s was once not enough for Bing's 503 page on a loaded machine (reported as a timeout).
    collector = make_collector(timeout=40 if mode == "slow" else 60, log=lines.append)
    batch = collector.collect(500)
    assert len(batch) == 500
    assert_originals(batch, fixture_engines.image_base)
    reports = {r.engine: r for r in collector.reports}
    assert reports["bing"].count == 0
    expected = {
        "empty": "ran dry",
        "block": "blocked: HTTP 403",
        "dead": "failed: could not load 127.0.0.1:",  # a refused port
        "slow": "failed: timeout",
        "unavailable": "failed: HTTP 503 from 127.0.0.1:",
        "hangup": "failed: could not load 127.0.0.1:",  # Chromium's own error page
    }[mode]
    assert reports["bing"].stopped.startswith(expected)
    assert reports["duckduckgo"].count + reports["google"].count == 500
    assert any(line.startswith("bing: 0 images") for line in lines)


def test_duplicates_across_engines_are_dropped(make_collector, fixture_engines):
    collector = make_collector(["bing", "duckduckgo"])
    batch = collector.collect(2000)
    assert_originals(batch, fixture_engines.image_base)
    reports = {r.engine: r for r in collector.reports}
    assert reports["bing"].count == 700
    assert 0 < reports["duckduckgo"].count < 700  # a third of its results are Bing's
    assert len(batch) == reports["bing"].count + reports["duckduckgo"].count
    assert collector.collect(10) == []  # every engine ran dry: fewer, not an error
    assert all(r.stopped.startswith("ran dry") for r in collector.reports)


def test_every_engine_dead_raises_engines_unavailable(make_collector, fixture_engines):
    for engine in ("bing", "duckduckgo", "google"):
        fixture_engines.set_mode(engine, "dead")
    collector = make_collector(timeout=40)
    with pytest.raises(EnginesUnavailable) as caught:
        collector.collect(10)
    assert str(caught.value) == "the image search engines did not answer; try again later"
    assert all(r.stopped.startswith("failed") for r in collector.reports)
    assert browser_processes() == []  # raised after the browser was taken down


def test_every_engine_blocked_or_empty_is_told_apart(make_collector, fixture_engines):
    for engine in ("bing", "duckduckgo", "google"):
        fixture_engines.set_mode(engine, "empty")
    assert make_collector(timeout=40).collect(10) == []  # the engines answered: nothing found is not an outage


def test_google_consent_page_is_passed(make_collector, fixture_engines):
    collector = make_collector(["google"])
    batch = collector.collect(50)
    assert len(batch) == 50
    assert fixture_engines.consent_clicks == 1
    assert any(path == "/save" for engine, path, _ in fixture_engines.requests if engine == "google")


@pytest.mark.parametrize(
    ("mode", "reason"), [("sorry", "blocked: /sorry/ page"), ("jswall", "blocked: JavaScript wall")]
)
def test_google_block_is_detected_and_google_dropped(make_collector, fixture_engines, mode, reason):
    fixture_engines.set_mode("google", mode)
    collector = make_collector(["google", "bing"])
    batch = collector.collect(100)
    assert len(batch) == 100 and {c.source for c in batch} == {"bing"}
    assert collector.reports[0] == EngineReport("google", 0, reason)
    collector.collect(50)
    google_searches = [p for e, p, _ in fixture_engines.requests if e == "google" and p == "/search"]
    assert len(google_searches) == 1  # dropped for the rest of the job


def test_google_viewer_gives_originals_when_the_data_is_missing(make_collector, fixture_engines):
    fixture_engines.set_mode("google", "nojson")
    collector = make_collector(["google"])
    batch = collector.collect(12)
    assert len(batch) == 12
    assert_originals(batch, fixture_engines.image_base)


@pytest.mark.parametrize(("safe", "expected"), [(True, ("strict", "1", "active")), (False, ("off", "-1", "off"))])
def test_safe_search_reaches_each_engine(make_collector, fixture_engines, safe, expected):
    for engine in ("bing", "duckduckgo", "google"):
        make_collector([engine], safe_search=safe).collect(5)
    seen = {
        engine: query.get({"bing": "adlt", "duckduckgo": "p", "google": "safe"}[engine])
        for engine, path, query in fixture_engines.requests
        if path in ("/images/search", "/i.js", "/search")
    }
    assert (seen["bing"], seen["duckduckgo"], seen["google"]) == expected


def test_no_browser_process_survives_a_job(make_collector, tmp_path):
    collector = make_collector(["bing"])
    collector.collect(10)
    assert collector.browser_pids  # the browser runs
    assert browser_processes()  # and the census sees it
    collector.close()
    assert browser_processes() == []
    assert list(tmp_path.glob("aid-chromium-*")) == []  # its temporary profile is gone too


def test_no_browser_process_survives_an_error_in_the_caller(make_collector):
    with pytest.raises(RuntimeError), make_collector(["bing"]) as collector:
        collector.collect(5)
        raise RuntimeError("the download stage broke")
    assert browser_processes() == []


def test_a_browser_that_cannot_start_makes_every_engine_unavailable(fixture_engines, tmp_path):
    collector = Collector(
        "red panda",
        sources=["bing", "duckduckgo"],
        base_urls=fixture_engines.urls,
        safe_search=True,
        chrome_bin="/usr/bin/chromium",
        chromedriver=str(tmp_path / "no-such-chromedriver"),
        timeout=30,
    )
    with pytest.raises(EnginesUnavailable) as caught:
        collector.collect(5)
    assert "could not start Chromium" in caught.value.detail
    assert [r.count for r in collector.reports] == [0, 0]


def test_no_browser_process_survives_a_timeout(make_collector, fixture_engines):
    for engine in ("bing", "duckduckgo", "google"):
        fixture_engines.set_mode(engine, "slow")
    collector = make_collector(timeout=3)
    with pytest.raises(EnginesUnavailable):
        collector.collect(10)
    assert browser_processes() == []


def test_no_browser_process_survives_a_crashed_driver(make_collector):
    collector = make_collector(["bing"])
    collector.collect(5)
    driver_pid = collector._browser._service.process.pid
    import os
    import signal

    os.kill(driver_pid, signal.SIGKILL)  # chromedriver dies: quit() fails and the cleanup must kill Chromium
    collector.close()
    assert browser_processes() == []
