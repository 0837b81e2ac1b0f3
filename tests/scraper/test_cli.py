"""`flask --app app collect` in a subprocess, against the fixture engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def run_collect(engines, tmp_path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        BING_URL=engines.bing_url,
        DUCKDUCKGO_URL=engines.duckduckgo_url,
        GOOGLE_URL=engines.google_url,
        SCHEDULER="off",
        SECRET_KEY="test",  # else create_app warns on stdout before the command runs
        DATABASE_URL=f"sqlite:///{tmp_path}/app.db",
        DATA_DIR=str(tmp_path / "data"),
        MAIL_OUTBOX=str(tmp_path / "outbox"),
        TMPDIR=str(tmp_path),  # the browser's profile goes here, where the census looks
        **settings,
    )
    flask = [sys.executable, "-m", "flask", "--app", "app", "collect", *args]
    return subprocess.run(flask, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_collect_prints_json_lines_and_a_summary(fixture_engines, tmp_path):
    fixture_engines.set_mode("bing", "block")
    done = run_collect(fixture_engines, tmp_path, "red panda", "-n", "50", "--sources", "bing,duckduckgo")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 50
    assert set(lines[0]) == {"image_url", "page_url", "title", "source", "license", "license_url", "creator"}
    assert lines[0]["license"] is None  # search engines give no licence
    assert {line["source"] for line in lines} == {"duckduckgo"}
    assert len({line["image_url"] for line in lines}) == 50
    assert "bing: 0 images, blocked: HTTP 403" in done.stderr
    assert "duckduckgo: 50 images" in done.stderr


def test_collect_fails_cleanly_when_every_engine_is_dead(fixture_engines, tmp_path):
    fixture_engines.set_mode("bing", "dead")
    done = run_collect(fixture_engines, tmp_path, "red panda", "-n", "5", "--sources", "bing")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "the image search engines did not answer; try again later" in done.stderr


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("dead", "failed: could not load 127.0.0.1:"),  # a refused port
        ("unavailable", "failed: HTTP 503 from 127.0.0.1:"),
        ("hangup", "failed: could not load 127.0.0.1:"),  # Chromium's own error page (ERR_EMPTY_RESPONSE)
    ],
)
def test_a_failed_engine_is_one_line_and_the_next_fills(fixture_engines, tmp_path, mode, reason):
    fixture_engines.set_mode("bing", mode)
    done = run_collect(fixture_engines, tmp_path, "red panda", "-n", "20", "--sources", "bing,duckduckgo")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 20
    stderr = done.stderr.splitlines()
    bing = [line for line in stderr if "bing: 0 images" in line]
    assert len(bing) == 1 and reason in bing[0], done.stderr
    assert "Traceback" not in done.stderr and "Stacktrace" not in done.stderr
    assert sum("duckduckgo: 20 images" in line for line in stderr) == 1  # the summary is printed once
