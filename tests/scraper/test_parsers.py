"""The engines' parsers on fixture markup, without a browser."""

from __future__ import annotations

import pytest

from scraper import bing, duckduckgo, google
from scraper.collector import normalise
from scraper.engine import is_original
from tests.fixtures import engines as fx

BASE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def fixture() -> fx.FixtureEngines:
    # Only the page builders are used; the servers are not needed, so stop them at once.
    handle = fx.start_engines(BASE)
    handle.stop()
    return handle


def test_bing_reads_m_json_and_size_from_href(fixture):
    found = bing.parse(fx._bing_page(fixture, "red panda", 1, 35))
    assert len(found) == 35
    first = found[0]
    assert first.image_url == f"{BASE}/img/bing-red-panda-0.jpg"
    assert first.thumbnail_url == f"{BASE}/thumb/bing-red-panda-0.jpg"
    assert first.page_url == "https://site0.example/red-panda/0.html"
    assert first.title == "red panda picture 0 & friends"
    assert (first.width, first.height) == (400, 300)
    assert first.source == "bing"


def test_bing_falls_back_to_mediaurl_when_m_is_broken():
    href = "/images/search?view=detailV2&mediaurl=https%3A%2F%2Fa.example%2Fx.png&exph=10&expw=20"
    found = bing.candidate("{not json", href)
    assert found is not None and found.image_url == "https://a.example/x.png" and found.width == 20


def test_bing_empty_async_page_has_no_results():
    assert bing.parse("") == []


def test_duckduckgo_vqd_forms():
    assert duckduckgo.find_vqd('<script>var vqd="4-123-456";</script>') == "4-123-456"
    assert duckduckgo.find_vqd("nrj('/d.js?q=x&vqd=4-987&x=1')") == "4-987"
    assert duckduckgo.find_vqd("vqd='4-55'") == "4-55"
    assert duckduckgo.find_vqd("<html>nothing</html>") is None


def test_duckduckgo_results_are_originals(fixture):
    payload = {"results": [fx._ddg_result(fixture.image("duckduckgo", "q", i)) for i in range(5)]}
    found = duckduckgo.parse(payload)
    assert [c.image_url for c in found] == [fixture.image("duckduckgo", "q", i)["image"] for i in range(5)]
    assert all("/thumb/" not in c.image_url and c.width for c in found)


def test_google_key_walk_finds_every_embedded_result(fixture):
    page = fx._google_page(fixture, "red panda", 100, 700, "active", True)
    found = google.parse_data(page)
    assert len(found) == 100
    assert found[0].image_url == f"{BASE}/img/google-red-panda-0.jpg"
    assert found[0].page_url == "https://site0.example/red-panda/0.html"
    assert found[0].title == "red panda picture 0 & friends"


def test_google_tuple_fallback_reads_arc_batches(fixture):
    arc = fx._google_arc(fixture, "red panda", 100, 200, True)
    assert google.parse_data(arc) == []  # no AF_initDataCallback in a batch
    found = google.parse_tuples(arc)
    assert [c.image_url for c in found] == [fixture.image("google", "red panda", i)["image"] for i in range(100, 200)]
    assert found[0].title == "red panda picture 100 & friends"


def test_google_ignores_google_hosted_and_sizeless_tuples():
    page = '["https://x.example/t.jpg",10,10],["https://lh3.googleusercontent.google.com/a.jpg",5,5]'
    page += ',["https://x.example/t2.jpg",10,10],["https://img.example/b.jpg",0,0]'
    assert google.parse_tuples(page) == []


@pytest.mark.parametrize(
    ("url", "html", "kind"),
    [
        ("https://www.google.com/sorry/index?continue=x", "", "sorry"),
        ("https://www.google.com/search?q=x", fx._SORRY_PAGE, "sorry"),
        ("https://www.google.com/search?q=x", fx._JS_WALL_PAGE, "jswall"),
        ("https://www.google.com/httpservice/retry/enablejs?sei=1", "", "jswall"),
        ("https://consent.google.com/ml?continue=x", "", "consent"),
        ("https://www.google.com/search?q=x", fx._consent_page("/search?q=x"), "consent"),
        ("https://www.google.com/search?q=x", "<div jsname=dTDiAc></div>", "results"),
    ],
)
def test_google_page_kind(url, html, kind):
    assert google.page_kind(url, html) == kind


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTP://Example.COM:80/a%20b.jpg#x", "http://example.com/a b.jpg"),
        ("https://example.com:443/x.png?s=1", "https://EXAMPLE.com/x.png?s=1"),
    ],
)
def test_normalise_makes_equivalent_urls_equal(a, b):
    assert normalise(a) == normalise(b)


def test_normalise_keeps_different_queries_apart():
    assert normalise("https://e.com/x.jpg?a=1") != normalise("https://e.com/x.jpg?a=2")


def test_thumbnails_are_not_originals():
    assert not is_original("https://tse2.mm.bing.net/th?id=OIP.x")
    assert not is_original("https://encrypted-tbn0.gstatic.com/images?q=tbn:x")
    assert not is_original("data:image/gif;base64,R0lG")
    assert not is_original("https://a.example/x.jpg", "https://a.example/x.jpg")
    assert is_original("https://a.example/x.jpg", "https://a.example/t.jpg")
