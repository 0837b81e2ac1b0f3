"""What a page yields: every form of image, its metadata, the links; and canonical URLs and scope."""

from __future__ import annotations

import re

import pytest

from crawler.extract import extract, parse_srcset
from crawler.urls import Scope, canonical, registrable_domain

PAGE = """<!DOCTYPE html><html><head><title>  A   page </title>
<meta property="og:image" content="https://example.com/og.jpg"></head><body>
<figure><img src="/a.jpg" alt="Alt A" title="Title A"><figcaption>Caption A</figcaption></figure>
<img src="/small.jpg" srcset="/small.jpg 300w, /big.jpg 1200w, /mid.jpg 600w" alt="set">
<picture><source srcset="/p-1x.webp 1x, /p-2x.webp 2x"><img src="/p-fallback.jpg"></picture>
<img src="/placeholder.gif" data-src="/lazy1.jpg"> <img src="/placeholder.gif" data-lazy-src="/lazy2.jpg">
<img src="/placeholder.gif" data-original="/lazy3.jpg"> <img data-srcset="/ds-1.jpg 100w, /ds-2.jpg 900w">
<a href="/full.png" title="Full">full size</a> <div style="color: red; background-image: url('/bg.jpg')"></div>
<a href="/next?page=2#top">next</a> <a rel="tag" href="/tag/cats">cats</a> <a href="mailto:x@y">mail</a>
<img src="data:image/gif;base64,R0lGOD"> <a href="javascript:void(0)">js</a>
</body></html>"""


def test_every_form_of_image_and_its_metadata():
    page = extract(PAGE, "https://example.com/gallery/")
    urls = [image.url for image in page.images]
    assert set(urls) == {f"https://example.com/{name}" for name in (
        "og.jpg", "a.jpg", "big.jpg", "p-2x.webp", "lazy1.jpg", "lazy2.jpg", "lazy3.jpg", "ds-2.jpg", "full.png",
        "bg.jpg")}
    first = next(image for image in page.images if image.url.endswith("/a.jpg"))
    assert (first.alt, first.title, first.caption) == ("Alt A", "Title A", "Caption A")
    big = next(image for image in page.images if image.url.endswith("/big.jpg"))
    assert [w for w, _ in big.widths] == [300, 600, 1200]
    assert page.title == "A page" and page.tags == ["cats"]
    assert page.links == ["https://example.com/next?page=2", "https://example.com/tag/cats"]


def test_srcset_descriptors():
    assert parse_srcset("a.jpg 300w, b.jpg 2x, c.jpg") == [(300.0, True, "a.jpg"), (2.0, False, "b.jpg"),
                                                           (1.0, False, "c.jpg")]


CANONICAL = {  # a URL as found on a page: its canonical form (fragment, query order, trackers, session ids)
    "http://Example.com/a?b=2&a=1#frag": "http://example.com/a?a=1&b=2",
    "http://example.com/a?utm_source=x&utm_medium=y&id=3": "http://example.com/a?id=3",
    "http://example.com/a?sessionid=abc&PHPSESSID=d&id=3": "http://example.com/a?id=3",
    "http://example.com/a;jsessionid=XYZ?id=3": "http://example.com/a?id=3",
}


@pytest.mark.parametrize("url", CANONICAL)
def test_canonical(url):
    assert canonical(url) == CANONICAL[url]


def test_scope_by_host_and_by_registrable_domain():
    host = Scope("https://www.example.co.uk/start")
    assert host.follows("https://www.example.co.uk:8443/x") and not host.follows("https://img.example.co.uk/x")
    domain = Scope("https://www.example.co.uk/start", mode="domain")
    assert domain.follows("https://img.example.co.uk/x") and not domain.follows("https://other.co.uk/x")
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"


def test_include_exclude_and_url_length():
    scope = Scope("http://site.test/", include=[re.compile(r"/photo/")], exclude=[re.compile(r"print")],
                  max_url_length=40)
    assert scope.follows("http://site.test/photo/1")
    assert not scope.follows("http://site.test/about")
    assert not scope.follows("http://site.test/photo/1/print")
    assert not scope.follows("http://site.test/photo/" + "x" * 40)
