"""The openverse and wikimedia engines and the Collector against the local stand-in APIs (no browser)."""

from __future__ import annotations

import threading

import pytest
import requests

from scraper import Collector, EnginesUnavailable, licences
from scraper.collector import normalise

CONTACT = "datasets@example.org"
NO_BROWSER = "/nonexistent/chromium"  # a Collector that tried to start Chromium would fail at once


@pytest.fixture
def make_open_collector(open_apis):
    made: list[Collector] = []

    def make(sources, *, licence="any", settings=None, timeout=60, query="red panda", base_urls=None, log=None,
             chrome_bin=NO_BROWSER):
        urls = {"openverse": open_apis.openverse_url, "wikimedia": open_apis.wikimedia_url, **(base_urls or {})}
        collector = Collector(
            query,
            sources=list(sources),
            base_urls=urls,
            safe_search=True,
            chrome_bin=chrome_bin,
            chromedriver="/usr/bin/chromedriver",
            timeout=timeout,
            log=log,
            licence=licence,
            settings={"CONTACT_EMAIL": CONTACT} if settings is None else settings,
        )
        made.append(collector)
        return collector

    yield make
    for collector in made:
        collector.close()


def assert_distinct_originals(batch, image_base):
    urls = [c.image_url for c in batch]
    assert all(url.startswith(f"{image_base}/img/") for url in urls), urls[:3]
    assert len({normalise(url) for url in urls}) == len(urls)
    assert all(c.thumbnail_url != c.image_url for c in batch)


def assert_downloadable(candidate):
    answer = requests.get(candidate.image_url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("image/")


def test_openverse_gives_originals_with_licences_and_never_asks_anonymously_for_more_than_20(
        make_open_collector, open_apis):
    collector = make_open_collector(["openverse"])
    batch = collector.collect(300)
    assert len(batch) == 300
    assert_distinct_originals(batch, open_apis.image_base)
    assert {c.source for c in batch} == {"openverse"}
    assert all(c.license in licences.OPEN and c.license_version and c.license_url and c.creator for c in batch)
    assert all(c.attribution and c.attribution.startswith(f'"{c.title}" by {c.creator}') for c in batch)
    assert {c.license for c in batch} == set(licences.CODES)  # a mix, NC and ND included (filter: any)
    assert all(c.page_url.startswith("https://www.flickr.com/") for c in batch)
    assert_downloadable(batch[0])
    searches = open_apis.searches("openverse")
    assert len(searches) == 15  # 300 results, 20 a page, nothing fetched ahead
    assert all(int(r.query["page_size"]) <= 20 for r in searches)
    assert [int(r.query["page"]) for r in searches] == list(range(1, 16))
    assert all("Authorization" not in r.headers and r.query["mature"] == "false" for r in searches)
    assert all(CONTACT in r.headers["User-Agent"] for r in searches)
    assert collector.browser_pids == set()


def test_openverse_stops_at_its_page_cap(make_open_collector, open_apis):
    collector = make_open_collector(["openverse"])
    batch = collector.collect(1000)
    assert len(batch) == 400  # 20 pages of 20: the anonymous ceiling
    assert collector.reports[0].stopped == "stopped at Openverse's page cap (20 pages)"
    assert max(int(r.query["page"]) for r in open_apis.searches("openverse")) == 20


def test_openverse_with_client_credentials_uses_a_token_and_larger_pages(make_open_collector, open_apis):
    settings = {"CONTACT_EMAIL": CONTACT, "OPENVERSE_CLIENT_ID": open_apis.client_id,
                "OPENVERSE_CLIENT_SECRET": open_apis.client_secret}
    collector = make_open_collector(["openverse"], settings=settings)
    batch = collector.collect(1000)
    assert len(batch) == 444  # every result but the mature ones (480 - 36), in 5 pages of 100
    tokens = [r for r in open_apis.requests if r.path == "/v1/auth_tokens/token/"]
    assert len(tokens) == 1 and tokens[0].method == "POST"
    assert tokens[0].query["grant_type"] == "client_credentials"
    searches = open_apis.searches("openverse")
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in searches)
    assert {int(r.query["page_size"]) for r in searches} == {100}
    assert collector.reports[0].stopped == "ran dry after 5 pages"


def test_openverse_refusing_the_credentials_stops_it_with_the_reason(make_open_collector, open_apis):
    settings = {"OPENVERSE_CLIENT_ID": "someone", "OPENVERSE_CLIENT_SECRET": "wrong"}
    collector = make_open_collector(["openverse"], settings=settings)
    with pytest.raises(EnginesUnavailable) as failure:
        collector.collect(10)
    assert "openverse: failed: /v1/auth_tokens/token/ refused the client credentials (HTTP 401)" in failure.value.detail
    assert open_apis.searches("openverse") == []


def test_the_stand_in_answers_401_to_an_anonymous_page_size_above_20(open_apis):
    answer = requests.get(f"{open_apis.openverse_url}/v1/images/", params={"q": "cat", "page_size": 21}, timeout=5)
    assert answer.status_code == 401
    old = requests.get(f"{open_apis.openverse_url}/v1/images/", params={"q": "cat", "li": "by"}, timeout=5)
    assert old.status_code == 400


def test_openverse_commercial_filter_asks_openverse_and_checks_each_licence(make_open_collector, open_apis):
    collector = make_open_collector(["openverse"], licence="commercial")
    batch = collector.collect(100)
    assert len(batch) == 100
    assert {c.license for c in batch} == licences.COMMERCIAL
    assert {r.query.get("license_type") for r in open_apis.searches("openverse")} == {"commercial"}


def test_openverse_reads_the_rate_limit_headers_and_stops_before_a_429(make_open_collector, open_apis):
    open_apis.openverse_budget = 3
    collector = make_open_collector(["openverse"])
    batch = collector.collect(200)
    assert len(batch) == 60
    assert collector.reports[0].stopped == "stopped: rate limit used up (anon_burst) after 3 pages"
    assert len(open_apis.searches("openverse")) == 3


def test_wikimedia_gives_originals_with_plain_text_licence_fields(make_open_collector, open_apis):
    collector = make_open_collector(["wikimedia"])
    batch = collector.collect(120)
    assert len(batch) == 120
    assert_distinct_originals(batch, open_apis.image_base)
    assert {c.source for c in batch} == {"wikimedia"}
    assert batch[0].title == "Red panda 0 (fixture)"  # rank order, though `pages` comes keyed by page id
    assert [c.title.split()[2] for c in batch[:4]] == ["0", "1", "2", "3"]
    first = batch[0]
    assert (first.license, first.license_version, first.license_url) == (
        "by-sa", "4.0", "https://creativecommons.org/licenses/by-sa/4.0")
    assert first.creator == "Example & Sons 0"  # extmetadata is HTML: tags dropped, entities decoded
    assert first.page_url == "https://commons.wikimedia.org/wiki/File:Red_panda_0_(fixture).jpg"
    assert {c.license for c in batch} == {"by-sa", "by", "cc0", "pdm", "gfdl"}
    assert not any("<" in (c.creator or "") or "&amp;" in (c.creator or "") for c in batch)
    assert not any(c.image_url.endswith(".svg") for c in batch)
    assert_downloadable(first)


def test_wikimedia_sends_the_contact_and_the_continue_object_back_whole(make_open_collector, open_apis):
    collector = make_open_collector(["wikimedia"])
    collector.collect(120)
    searches = open_apis.searches("wikimedia")
    assert len(searches) == 3  # 50 a request
    assert all(f"({CONTACT})" in r.headers["User-Agent"] for r in searches)
    assert all(r.query["gsrsearch"] == "red panda filetype:bitmap" and r.query["gsrnamespace"] == "6" for r in searches)
    assert "gsroffset" not in searches[0].query
    assert [(r.query["gsroffset"], r.query["continue"]) for r in searches[1:]] == [("50", "gsroffset||"),
                                                                                  ("100", "gsroffset||")]


def test_wikimedia_runs_dry_when_continue_ends(make_open_collector, open_apis):
    collector = make_open_collector(["wikimedia"])
    batch = collector.collect(1000)
    assert len(batch) == 356  # 400 files less the 44 SVGs that filetype:bitmap leaves out
    assert collector.reports[0].stopped == "ran dry after 8 pages"


def test_wikimedia_is_not_used_without_a_contact(make_open_collector, open_apis):
    collector = make_open_collector(["wikimedia"], settings={})
    with pytest.raises(EnginesUnavailable) as failure:
        collector.collect(10)
    assert "wikimedia: failed: CONTACT_EMAIL is not set" in failure.value.detail
    assert open_apis.searches("wikimedia") == []


def test_the_stand_in_refuses_a_user_agent_without_a_contact(open_apis):
    answer = requests.get(f"{open_apis.wikimedia_url}/w/api.php", params={"action": "query"}, timeout=5,
                          headers={"User-Agent": "python-requests/2.34"})
    assert answer.status_code == 403


def test_wikimedia_requests_are_made_one_at_a_time_across_jobs(make_open_collector, open_apis):
    open_apis.latency = 0.1  # each answer takes a while, so overlapping requests would be seen
    collectors = [make_open_collector(["wikimedia"], query=q) for q in ("red panda", "snow leopard")]
    batches: dict[int, list] = {}
    threads = [threading.Thread(target=lambda n=n, c=c: batches.update({n: c.collect(150)}))
               for n, c in enumerate(collectors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [len(batches[0]), len(batches[1])] == [150, 150]
    assert len(open_apis.searches("wikimedia")) == 6
    assert open_apis.wikimedia_peak == 1


@pytest.mark.parametrize(
    ("api", "mode", "reason"),
    [
        ("openverse", "429", "blocked: rate-limited: HTTP 429 on /v1/images/ (retry after 60 s)"),
        ("wikimedia", "429", "blocked: rate-limited: HTTP 429 on /w/api.php (retry after 60 s)"),
        ("wikimedia", "ratelimited", "blocked: rate-limited: ratelimited (You've exceeded your rate limit."),
        ("openverse", "dead", "failed: could not connect to 127.0.0.1:"),
        ("wikimedia", "dead", "failed: could not connect to 127.0.0.1:"),
    ],
)
def test_a_rate_limited_or_dead_api_stops_with_the_reason_and_the_other_fills(
        make_open_collector, open_apis, api, mode, reason):
    open_apis.set_mode(api, mode)
    other = "wikimedia" if api == "openverse" else "openverse"
    lines: list[str] = []
    collector = make_open_collector([api, other], log=lines.append)
    batch = collector.collect(100)
    assert len(batch) == 100
    assert {c.source for c in batch} == {other}
    reports = {r.engine: r for r in collector.reports}
    assert reports[api].count == 0
    assert reports[api].stopped.startswith(reason)
    assert any(line.startswith(f"{api}: 0 images, {reason}") for line in lines)


def test_both_apis_empty_is_no_outage(make_open_collector, open_apis):
    open_apis.set_mode("openverse", "empty")
    open_apis.set_mode("wikimedia", "empty")
    collector = make_open_collector(["openverse", "wikimedia"])
    assert collector.collect(10) == []
    assert [r.stopped for r in collector.reports] == ["ran dry after 1 pages", "ran dry after 1 pages"]


def test_a_slow_api_misses_the_deadline_and_the_next_fills(make_open_collector, open_apis):
    open_apis.set_mode("openverse", "slow")
    collector = make_open_collector(["openverse", "wikimedia"], timeout=12)  # 3 s per request
    batch = collector.collect(50)
    assert len(batch) == 50
    assert {r.engine: r.stopped for r in collector.reports}["openverse"] == "failed: timeout"


def test_a_licence_filter_uses_only_the_licence_aware_sources(make_open_collector, open_apis):
    lines: list[str] = []
    collector = make_open_collector(["bing", "duckduckgo", "wikimedia", "openverse"], licence="commercial",
                                    log=lines.append)
    assert [r.engine for r in collector.reports] == ["wikimedia", "openverse"]
    batch = collector.collect(400)
    assert len(batch) == 400
    assert all(licences.allows_commercial(c.license) for c in batch)
    assert not any(c.license and "nc" in c.license.split("-") for c in batch)
    assert not any(c.license == "gfdl" for c in batch)  # outside the table: not known to allow it
    # Search engines only: the licence filter takes the licence-aware sources instead.
    assert [r.engine for r in make_open_collector(["bing"], licence="open").reports] == ["openverse", "wikimedia"]


def test_an_unknown_licence_filter_is_refused(make_open_collector):
    with pytest.raises(ValueError, match="licence must be one of"):
        make_open_collector(["openverse"], licence="free-ish")


def test_from_config_reads_the_settings(open_apis):
    config = {
        "IMAGE_SOURCES": "openverse", "OPENVERSE_URL": open_apis.openverse_url,
        "WIKIMEDIA_URL": open_apis.wikimedia_url,
        "BING_URL": "", "DUCKDUCKGO_URL": "", "GOOGLE_URL": "", "URL_LIST": None, "SAFE_SEARCH": False,
        "CHROME_BIN": NO_BROWSER, "CHROMEDRIVER": "", "COLLECT_TIMEOUT_SECONDS": 30, "CONTACT_EMAIL": CONTACT,
        "OPENVERSE_CLIENT_ID": None, "OPENVERSE_CLIENT_SECRET": None,
    }
    with Collector.from_config("red panda", config, licence="modification") as collector:
        batch = collector.collect(30)
    assert len(batch) == 30 and all(licences.allows_modification(c.license) for c in batch)
    searches = open_apis.searches("openverse")
    assert {(r.query["mature"], r.query["license_type"]) for r in searches} == {("true", "modification")}
