"""`flask --app app collect` on the openverse and wikimedia stand-ins, in a subprocess."""

from __future__ import annotations

import json

import pytest

from scraper import licences

from .test_cli import run_collect

CONTACT = "datasets@example.org"


def collect(engines, apis, tmp_path, *args: str):
    done = run_collect(engines, tmp_path, *args, OPENVERSE_URL=apis.openverse_url, WIKIMEDIA_URL=apis.wikimedia_url,
                       CONTACT_EMAIL=CONTACT)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return done, lines


def test_collect_from_openverse_gives_distinct_originals_with_licence_fields(engines, open_apis, tmp_path):
    done, lines = collect(engines, open_apis, tmp_path, "red panda", "-n", "50", "--sources", "openverse")
    assert done.returncode == 0, done.stderr
    assert len(lines) == 50
    assert len({line["image_url"] for line in lines}) == 50
    assert all(line["image_url"].startswith(f"{open_apis.image_base}/img/") for line in lines)
    assert {line["source"] for line in lines} == {"openverse"}
    assert all(line["license"] in licences.OPEN and line["license_url"] and line["creator"] for line in lines)
    assert "openverse: 50 images" in done.stderr
    searches = open_apis.searches("openverse")
    assert searches and all(int(r.query["page_size"]) <= 20 for r in searches)


def test_collect_from_wikimedia_sends_the_contact(engines, open_apis, tmp_path):
    done, lines = collect(engines, open_apis, tmp_path, "red panda", "-n", "60", "--sources", "wikimedia")
    assert done.returncode == 0, done.stderr
    assert len({line["image_url"] for line in lines}) == 60
    assert {line["source"] for line in lines} == {"wikimedia"}
    assert all(line["license"] and line["creator"] and "<" not in line["creator"] for line in lines)
    searches = open_apis.searches("wikimedia")
    assert len(searches) == 2
    assert all(f"({CONTACT})" in r.headers["User-Agent"] for r in searches)


def test_collect_licence_commercial_gives_no_non_commercial_licence(engines, open_apis, tmp_path):
    done, lines = collect(engines, open_apis, tmp_path, "red panda", "-n", "400", "--licence", "commercial")
    assert done.returncode == 0, done.stderr
    assert len(lines) == 400
    assert {line["source"] for line in lines} == {"openverse", "wikimedia"}  # IMAGE_SOURCES names neither
    assert all(licences.allows_commercial(line["license"]) for line in lines)
    assert not any("nc" in line["license"].split("-") for line in lines)


def test_collect_refuses_an_unknown_licence(engines, open_apis, tmp_path):
    done, _ = collect(engines, open_apis, tmp_path, "red panda", "--licence", "free")
    assert done.returncode == 2
    assert "--licence" in done.stderr


@pytest.mark.browser
def test_search_engine_down_and_openverse_rate_limited_wikimedia_fills(fixture_engines, open_apis, tmp_path):
    fixture_engines.set_mode("bing", "dead")
    open_apis.set_mode("openverse", "429")
    done, lines = collect(fixture_engines, open_apis, tmp_path, "red panda", "-n", "30",
                          "--sources", "bing,openverse,wikimedia")
    assert done.returncode == 0, done.stderr
    assert len(lines) == 30 and {line["source"] for line in lines} == {"wikimedia"}
    stderr = done.stderr.splitlines()
    assert any("bing: 0 images, failed: could not load 127.0.0.1:" in line for line in stderr), done.stderr
    assert any("openverse: 0 images, blocked: rate-limited: HTTP 429" in line for line in stderr), done.stderr
    assert any("wikimedia: 30 images" in line for line in stderr), done.stderr
