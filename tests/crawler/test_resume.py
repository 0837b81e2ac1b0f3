"""A crawl killed with SIGKILL resumes with --resume: no page visited twice, no saved image fetched twice, and no
browser of the killed crawl survives."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from crawler.state import STATE_FILE
from tests.crawler.conftest import ROOT, browsers_of, crawl_command, crawl_env, manifest, run_crawl


def _kill_when(process: subprocess.Popen, ready, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        assert process.poll() is None, "the crawl ended before it was killed"
        assert time.monotonic() < deadline, "the crawl never got halfway"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _recorded(out_dir: Path) -> tuple[set[str], set[str]]:
    """The paths of the pages recorded visited and of the images recorded saved in the killed crawl's state."""
    with sqlite3.connect(out_dir / STATE_FILE) as db:
        pages = {row[0] for row in db.execute("SELECT fetch_url FROM crawl_pages "
                                              "WHERE status IN ('visited', 'failed')")}
        images = {row[0] for row in db.execute("SELECT fetch_url FROM crawl_images WHERE status = 'saved'")}

    def path(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    return {path(u) for u in pages}, {path(u) for u in images}


def test_sigkill_halfway_then_resume(fresh_site, tmp_path):
    out = tmp_path / "out"
    env = crawl_env(fresh_site, DATABASE_URL=f"sqlite:///{tmp_path}/app.sqlite3", CRAWL_DELAY_SECONDS="0.02")
    process = subprocess.Popen(crawl_command(fresh_site, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    wanted = len(fresh_site.expected_keys("http"))
    _kill_when(process, lambda: len([p for p in fresh_site.paths() if p.startswith("/images/")]) >= wanted // 2)
    visited, saved = _recorded(out)
    assert visited and saved  # it was killed with work recorded, and work left
    assert len(saved) < wanted
    before = len(fresh_site.requests)

    result = run_crawl(fresh_site, out, "--resume", env=env)
    assert result.returncode == 0, result.stderr
    again = [hit.path for hit in fresh_site.requests[before:] if hit.port == fresh_site.port]
    assert [p for p in again if p in saved] == []  # no image already saved is fetched again
    assert [p for p in again if p in visited] == []  # no page already visited is opened again
    keys = [fresh_site.key_of(row["image_url"]) for row in manifest(out)]
    assert len(keys) == len(set(keys)) and set(keys) == fresh_site.expected_keys("http")


def test_a_second_run_without_resume_is_refused(fresh_site, tmp_path):
    out = tmp_path / "out"
    assert run_crawl(fresh_site, out, "--max-pages", "3").returncode == 0
    result = run_crawl(fresh_site, out, "--max-pages", "3")
    assert result.returncode != 0 and "--resume" in result.stderr


@pytest.mark.browser
def test_no_browser_survives_a_killed_browser_crawl(fresh_site, tmp_path):
    out = tmp_path / "out"
    env = crawl_env(fresh_site, DATABASE_URL=f"sqlite:///{tmp_path}/app.sqlite3")
    process = subprocess.Popen(crawl_command(fresh_site, out, "--render", "browser", "--max-pages", "14"), cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = process.pid
    running: list[psutil.Process] = []

    def halfway() -> bool:
        # The browsers as they are just before the kill (after it, chromedriver may or may not outlive its owner).
        running[:] = browsers_of(killed)
        return bool(running) and len([p for p in fresh_site.paths() if p.startswith("/photo/")]) >= 4

    _kill_when(process, halfway)
    resumed = subprocess.Popen(crawl_command(fresh_site, out, "--render", "browser", "--max-pages", "14",
                                             "--resume"), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _, stderr = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, stderr
    assert browsers_of(killed) == [] and browsers_of(resumed.pid) == []
    assert not [proc for proc in running if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE]
    assert manifest(out)
    assert os.path.exists(out / STATE_FILE)


@pytest.mark.browser
def test_sigterm_stops_a_browser_crawl_with_every_browser_quit(fresh_site, tmp_path):
    out = tmp_path / "out"
    env = crawl_env(fresh_site, DATABASE_URL=f"sqlite:///{tmp_path}/app.sqlite3")
    process = subprocess.Popen(crawl_command(fresh_site, out, "--render", "browser"), cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len([p for p in fresh_site.paths() if p.startswith("/photo/")]) < 3:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert browsers_of(process.pid)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=150)
    assert process.returncode == 130 and "--resume" in stderr
    assert browsers_of(process.pid) == [], stderr  # quit on the way out, not left for the reaper
