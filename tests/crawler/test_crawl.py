"""`flask crawl` on the fixture site: exactly the images in scope and allowed, traps ended, each image fetched once,
the other loopback port never reached, and in browser mode the images only scripts and scrolling bring."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

from tests.crawler.conftest import DEPTH, browsers_of, failures, manifest, metadata

DISALLOWED = re.compile(r"^/private/|^/images/hidden/|\?print=")


@pytest.fixture
def crawl_app(make_app, fresh_site):
    return make_app(ALLOW_PRIVATE_URLS=False, GUARD_TRUSTED_HOSTS=[fresh_site.trusted], CRAWL_DELAY_SECONDS=0.0)


def _crawl(app, site, out_dir, *args):
    result = app.test_cli_runner().invoke(args=["crawl", site.url, str(out_dir), "--depth", str(DEPTH), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _kept_keys(site, out_dir) -> list[str | None]:
    return [site.key_of(row["image_url"]) for row in manifest(out_dir)]


def _assert_polite_and_contained(site, widths: bool = False) -> None:
    hits = site.requests
    assert [h for h in hits if h.port != site.port] == []  # the other loopback port: not one request
    assert {h.host for h in hits} == {f"127.0.0.1:{site.port}"}  # localhost and elsewhere.test: never
    paths = [h.path for h in hits]
    assert [p for p in paths if DISALLOWED.search(p)] == []
    smaller = Counter(p for p in paths if p.startswith("/images/small/"))  # smaller srcset candidates: only for
    assert bool(smaller) == widths and all(p.endswith("-300.jpg") for p in smaller)  # --widths 200: the one above
    images = Counter(p for p in paths if p.startswith("/images/"))
    assert [p for p, n in images.items() if n > 1] == []  # each image downloaded once
    calendar = [p for p in paths if p.startswith("/calendar/")]
    assert 0 < len(calendar) <= 2 * DEPTH  # the endless calendar ends at the depth limit
    assert 0 < len([p for p in paths if p.startswith("/filter")]) <= DEPTH
    assert paths.count("/gallery/2") == 2  # 429 with Retry-After, then once more
    assert paths.count("/robots.txt") == 1
    pages = Counter(p for p in paths if not p.startswith("/images/") and p not in ("/robots.txt", "/gallery/2"))
    assert [p for p, n in pages.items() if n > 1 and p != "/favicon.ico"] == []  # each page visited once


def test_http_mode_keeps_exactly_the_allowed_images(crawl_app, fresh_site, tmp_path):
    out = tmp_path / "out"
    result = _crawl(crawl_app, fresh_site, out, "--render", "http", "--widths", "200")
    _assert_polite_and_contained(fresh_site, widths=True)
    keys = _kept_keys(fresh_site, out)
    assert len(keys) == len(set(keys))  # the copy under /images/copy/ was dropped as an exact duplicate
    assert set(keys) == fresh_site.expected_keys("http")
    assert not any(k.startswith(("s", "r")) for k in keys if k)  # no script or scroll images without a browser
    reasons = {row["url"].split("/images/")[-1].split("/")[0] for row in failures(out) if "/images/" in row["url"]}
    assert {"broken", "damaged", "copy"} <= reasons
    row = next(r for r in manifest(out) if r["image_url"].endswith("/images/photo/0.jpg"))
    meta = metadata(out, row["file"])
    assert meta["page_url"].endswith("/photo/0") and meta["page_title"] == "Photo 0"
    assert (meta["alt"], meta["title"], meta["caption"]) == ("Photo 0", "Title of photo 0", "Caption of photo 0")
    assert meta["tags"] == ["t0", "t1"] and meta["width"] == int(row["width"]) and len(meta["sha256"]) == 64
    assert meta["depth"] >= 1 and meta["discovered_at"] and len(meta["phash"]) == 16
    assert (out / "images" / "200" / row["file"].split("/")[-1]).exists()  # photo 0: resized, no srcset
    srcset = next(r for r in manifest(out) if r["image_url"].endswith("/images/photo/1.jpg"))  # FORMS[1]
    variant = out / "images" / "200" / srcset["file"].split("/")[-1]
    assert variant.read_bytes() == (fresh_site.state.image_bytes("w1-300"))  # the srcset's 300w candidate
    assert f"{len(keys)} images" in result.output


@pytest.mark.browser
def test_browser_mode_also_finds_script_and_scroll_images(crawl_app, fresh_site, tmp_path):
    out = tmp_path / "out"
    _crawl(crawl_app, fresh_site, out, "--render", "browser")
    keys = _kept_keys(fresh_site, out)
    assert len(keys) == len(set(keys))
    assert set(keys) == fresh_site.expected_keys("browser")
    assert {k for k in keys if k and k[0] in "sr"}  # there are some, and the http test has none
    _assert_polite_and_contained(fresh_site)
    assert browsers_of(os.getpid()) == []  # every browser of the crawl quit
