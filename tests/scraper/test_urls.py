"""The `urls` source: a list of image URLs from a file or over HTTP, through the Collector, with no browser."""

from __future__ import annotations

import time

import pytest

from scraper import EnginesUnavailable, urls
from scraper.collector import normalise
from scraper.errors import EngineTimeout

from .conftest import browser_processes


def test_parse_keeps_http_urls_in_order_and_counts_what_it_skipped():
    text = "# my list\n\nhttps://a.example/1.jpg\n  http://b.example/2.png  \nftp://c.example/3.jpg\nnot a url\n" \
           "https://a.example/1.jpg\nhttp:///no-host.jpg\n"
    found, skipped = urls.parse(text)
    assert [c.image_url for c in found] == ["https://a.example/1.jpg", "http://b.example/2.png",
                                            "https://a.example/1.jpg"]
    assert {c.source for c in found} == {"urls"}
    assert skipped == 3


def test_the_list_over_http_gives_originals_without_a_browser(make_collector, fixture_engines):
    collector = make_collector(["urls"])
    first, second = collector.collect(300), collector.collect(300)
    assert len(first) == 300 and len(second) == 300
    everything = first + second
    assert all(c.image_url.startswith(f"{fixture_engines.image_base}/img/urls-list-") for c in everything)
    assert len({normalise(c.image_url) for c in everything}) == 600
    assert {c.source for c in everything} == {"urls"}
    assert collector.browser_pids == set() and browser_processes() == []  # no Chromium for a list
    lists = [r for r in fixture_engines.requests if r[0] == "urls"]
    assert len(lists) == 1  # read once, then continued where the first round stopped
    rest = collector.collect(500)
    assert len(rest) == 100 and rest[-1].image_url.startswith(f"{fixture_engines.image_base}/img/urls-list-699.")
    assert collector.collect(5) == []
    assert collector.reports[0].stopped == "ran dry after 700 URLs of the list"


@pytest.mark.parametrize("as_url", [False, True])
def test_the_list_from_a_file(fixture_engines, make_collector, tmp_path, as_url):
    listing = tmp_path / "images.txt"
    listing.write_text("# two images\nhttp://127.0.0.1:9/img/a.jpg\nhttp://127.0.0.1:9/img/b.png\n"
                       "http://127.0.0.1:9/img/a.jpg#again\n", encoding="utf-8")
    collector = make_collector(["urls"])
    collector.base_urls["urls"] = listing.as_uri() if as_url else str(listing)
    batch = collector.collect(10)
    assert [c.image_url for c in batch] == ["http://127.0.0.1:9/img/a.jpg", "http://127.0.0.1:9/img/b.png"]
    assert collector.reports[0].count == 2  # the repeat (same URL but the fragment) is dropped


def test_an_empty_list_is_not_an_outage(make_collector, fixture_engines):
    fixture_engines.set_mode("urls", "empty")
    collector = make_collector(["urls"])
    assert collector.collect(10) == []
    assert collector.reports[0].stopped == "ran dry: the list has no image URLs"


@pytest.mark.parametrize(("mode", "reason"), [("block", "blocked: HTTP 403 on the URL list"),
                                              ("dead", "failed: could not load the URL list from 127.0.0.1:"),
                                              ("slow", "failed: timeout")])
def test_a_list_that_cannot_be_read_makes_the_source_unavailable(make_collector, fixture_engines, mode, reason):
    fixture_engines.set_mode("urls", mode)
    collector = make_collector(["urls"], timeout=8)  # 2 s for the list: shorter than the slow server's wait
    with pytest.raises(EnginesUnavailable):
        collector.collect(10)
    assert collector.reports[0].stopped.startswith(reason)


def test_no_setting_a_missing_file_and_an_oversized_list_are_named(make_collector, tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_bytes(b"http://127.0.0.1:9/img/x.jpg\n" * 40)
    monkeypatch.setattr(urls, "MAX_LIST_BYTES", 1000)
    expected = {"": "URL_LIST is not set", str(tmp_path / "missing.txt"): "No such file",
                str(big): "URL_LIST is larger than 1000 bytes"}
    for location, message in expected.items():
        collector = make_collector(["urls"])
        collector.base_urls["urls"] = location
        with pytest.raises(EnginesUnavailable):
            collector.collect(5)
        assert message in collector.reports[0].stopped


def test_the_list_is_not_read_after_the_deadline():
    run = urls.results("http://127.0.0.1:9/never.txt", page_timeout=5, deadline=lambda: time.monotonic() - 1)
    with pytest.raises(EngineTimeout):
        next(run)
