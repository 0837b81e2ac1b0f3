"""Whole jobs through jobs.pipeline on the licence-aware stand-ins: downloads, zip, metadata and credits."""

from __future__ import annotations

import json
import zipfile

import pytest

import config as settings
from jobs.pipeline import build_dataset
from scraper import licences

CONTACT = "datasets@example.org"


def job_config(open_apis, fixture_engines, sources: str) -> dict:
    values = settings.load({})
    values.update(
        IMAGE_SOURCES=sources, OPENVERSE_URL=open_apis.openverse_url, WIKIMEDIA_URL=open_apis.wikimedia_url,
        CONTACT_EMAIL=CONTACT, ALLOW_PRIVATE_URLS=True, COLLECT_TIMEOUT_SECONDS=60, **{
            f"{name.upper()}_URL": url for name, url in fixture_engines.urls.items() if name != "urls"},
    )
    return values


def metadata(zip_path) -> list[dict]:
    with zipfile.ZipFile(zip_path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("metadata.jsonl"))
        return [json.loads(line) for line in archive.read(name).decode().splitlines()]


@pytest.mark.browser
def test_engine_down_and_openverse_rate_limited_wikimedia_fills_the_job(fixture_engines, open_apis, tmp_path):
    fixture_engines.set_mode("bing", "dead")
    open_apis.set_mode("openverse", "429")
    events: list[str] = []
    outcome = build_dataset("red panda", 20, {}, job_config(open_apis, fixture_engines, "bing,openverse,wikimedia"),
                            tmp_path / "work", tmp_path / "job.zip", event=events.append)
    assert outcome.delivered == 20
    engines = {name: (count, stopped) for name, count, stopped in outcome.engines}
    assert engines["bing"][0] == 0 and engines["bing"][1].startswith("failed: could not load 127.0.0.1:")
    assert engines["openverse"] == (0, "blocked: rate-limited: HTTP 429 on /v1/images/ (retry after 60 s)")
    assert engines["wikimedia"][0] >= 20
    # The job's log says, in plain words, why each source stopped.
    assert any(e.startswith("bing gave 0 image links and failed (could not load 127.0.0.1:") for e in events)
    assert any(e.startswith("openverse gave 0 image links and blocked us (rate-limited") for e in events)
    rows = metadata(outcome.zip_path)
    assert len(rows) == 20
    assert all(row["license"] and row["creator"] for row in rows)
    assert len({row["file_name"] for row in rows}) == 20


def test_a_commercial_job_delivers_only_commercial_licences_and_credits_them(fixture_engines, open_apis, tmp_path):
    outcome = build_dataset("red panda", 30, {"licence": "commercial"},
                            job_config(open_apis, fixture_engines, "bing,duckduckgo,google"),
                            tmp_path / "work", tmp_path / "job.zip")
    assert outcome.delivered == 30
    assert [name for name, _, _ in outcome.engines] == ["openverse", "wikimedia"]  # no browser engine ran
    rows = metadata(outcome.zip_path)
    assert len(rows) == 30 and all(licences.allows_commercial(row["license"]) for row in rows)
    with zipfile.ZipFile(outcome.zip_path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("ATTRIBUTION.txt"))
        credits = archive.read(name).decode()
    owed = [row for row in rows if row["license"] not in licences.NO_CREDIT]
    body = credits.split("\n\n", 1)[1]  # after the explanation at the top: "<file>: <credit>" a line
    lines = dict(line.split(": ", 1) for line in body.splitlines())
    assert owed and len(lines) == len(owed)
    assert all(lines[row["file_name"]] == licences.credit_line(row) for row in owed)
    assert fixture_engines.requests == []  # the search engines were never asked
