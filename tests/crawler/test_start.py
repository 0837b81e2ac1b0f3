"""A crawl that cannot start says why in one line and exits non-zero; a crawl that fails leaves no browser."""

from __future__ import annotations

import os

import pytest

from crawler.output import Keeper
from tests.crawler.conftest import DEPTH, browsers_of


@pytest.fixture
def crawl(make_app, fresh_site, tmp_path):
    def run(start_url, *args, trusted=True):
        app = make_app(ALLOW_PRIVATE_URLS=False,
                       GUARD_TRUSTED_HOSTS=[fresh_site.trusted, "127.0.0.1:9"] if trusted else [],
                       CRAWL_DELAY_SECONDS=0.0)
        return app.test_cli_runner().invoke(args=["crawl", start_url, str(tmp_path / "out"), *args])

    return run


@pytest.mark.parametrize(("where", "trusted", "words"), [
    ("ftp://127.0.0.1/", True, "only http and https URLs are fetched"),
    ("{site}", False, "resolves to 127.0.0.1, a loopback address"),
    ("{site}private/", True, "robots.txt of the site forbids it"),
    ("http://127.0.0.1:9/", True, "the site did not answer"),  # trusted below, but nothing listens there
])
def test_cannot_start(crawl, fresh_site, where, trusted, words):
    result = crawl(where.format(site=fresh_site.url), trusted=trusted)
    assert result.exit_code == 1
    assert words in result.output and len(result.output.strip().splitlines()) == 1
    assert not [p for p in fresh_site.paths() if p != "/robots.txt"]  # not one page was opened


def test_bad_options_name_the_option(crawl, fresh_site):
    result = crawl(fresh_site.url, "--widths", "wide")
    assert result.exit_code == 2 and "--widths" in result.output
    result = crawl(fresh_site.url, "--include", "(")
    assert result.exit_code == 2 and "--include" in result.output


@pytest.mark.browser
def test_no_browser_survives_a_failed_crawl(crawl, fresh_site, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(Keeper, "take", broken)
    result = crawl(fresh_site.url, "--render", "browser", "--depth", str(DEPTH))
    assert isinstance(result.exception, RuntimeError)
    assert browsers_of(os.getpid()) == []


def test_the_crawl_stops_at_n_images_and_at_p_pages(crawl, fresh_site, tmp_path):
    result = crawl(fresh_site.url, "-n", "5", "--depth", str(DEPTH))
    assert result.exit_code == 0 and "stopped at 5 images" in result.output
    assert len(list((tmp_path / "out" / "images").glob("*.jpg"))) == 5
    fresh_site.clear_requests()
    result = crawl(fresh_site.url, "--max-pages", "4", "--depth", str(DEPTH), "--resume")
    assert result.exit_code == 0 and "stopped at 4 pages" in result.output
    assert [p for p in fresh_site.paths() if not p.startswith(("/images/", "/robots.txt"))] == []  # 5 pages were
