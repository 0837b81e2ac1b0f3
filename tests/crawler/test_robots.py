"""robots.txt and sitemaps of the fixture site, read through the guarded page fetcher."""

from __future__ import annotations

import threading

import pytest

from crawler.manners import Manners
from crawler.pages import PageFetcher
from crawler.robots import Robots
from crawler.sitemaps import page_urls, parse
from downloader.guard import Guard


@pytest.fixture
def fetcher(site):
    stop = threading.Event()
    handle = PageFetcher(Guard(False, frozenset({site.trusted})), Manners(2, 0.0, stop), "AID-test", stop)
    yield handle
    handle.close()


def test_robots_rules_delay_and_sitemaps(fetcher, fresh_site):
    robots = Robots(fetcher.text, "AID-test")
    base = fresh_site.url
    assert robots.allowed(base + "photo/3") and robots.allowed(base + "images/photo/3.jpg")
    assert not robots.allowed(base + "private/x") and not robots.allowed(base + "images/hidden/1.jpg")
    assert not robots.allowed(base + "photo/8?print=1")  # a wildcard rule
    assert robots.delay(base) == pytest.approx(0.01)
    assert robots.sitemaps(base) == [base + "sitemap.xml"]
    assert fresh_site.paths().count("/robots.txt") == 1  # once per host


def test_an_unreachable_robots_txt_forbids_the_host(fetcher, fresh_site):
    robots = Robots(fetcher.text, "AID-test")
    assert not robots.allowed(fresh_site.other_url + "anything")  # the guard refuses the other port
    assert [hit for hit in fresh_site.requests if hit.port == fresh_site.other_port] == []


def test_sitemap_index_and_urlset(fetcher, fresh_site):
    found = list(page_urls([fresh_site.url + "sitemap.xml"], fetcher.text))
    state = fresh_site.state
    assert len(found) == len(set(found)) == state.galleries + state.photos + state.orphans
    assert list(page_urls([fresh_site.url + "sitemap.xml"], fetcher.text, limit=5)) == found[:5]


def test_sitemap_parsing_refuses_entities():
    bomb = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://s/&b;</loc></url>'
            '</urlset>')
    pages, nested = parse(bomb)
    assert nested == [] and all("aaaaa" not in page for page in pages)
    assert parse("http://s/a\nnot a url\nhttp://s/b\n") == (["http://s/a", "http://s/b"], [])
