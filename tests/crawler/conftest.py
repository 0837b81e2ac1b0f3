"""Helpers of the crawler tests: the fixture site, the crawl command run in-process or as a process, a browser
census by owner pid."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from scraper.browser import OWNER_ENV, TEMP_PREFIX
from tests.fixtures.site import start_site

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = 40  # 2 galleries, 2 orphans: about 70 pages and 43 pictures in scope, plus the traps
DEPTH = 8  # every real page is within 4 links (the sitemap puts them at 1); the traps end here


@pytest.fixture(scope="module")
def site(request):
    handle = start_site(PHOTOS, crawl_delay=0.01)
    request.addfinalizer(handle.stop)
    return handle


@pytest.fixture
def fresh_site(site):
    site.clear_requests()
    return site


def crawl_env(site, **extra: str) -> dict[str, str]:
    """The environment of a `flask crawl` process: the guard on, only the site trusted, no politeness delay."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CRAWL_", "GUARD_"))}
    env.update({"GUARD_TRUSTED_HOSTS": site.trusted, "ALLOW_PRIVATE_URLS": "off", "CRAWL_DELAY_SECONDS": "0",
                "SECRET_KEY": "test", "SCHEDULER": "off", "LOG_LEVEL": "WARNING"}, **extra)
    return env


def crawl_command(site, out_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", "crawl", site.url, str(out_dir), "--depth", str(DEPTH),
            *args]


def run_crawl(site, out_dir: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `flask crawl` as its own process (as a user would) and wait for it."""
    env = env or crawl_env(site, DATABASE_URL=f"sqlite:///{out_dir.parent}/app.sqlite3")
    return subprocess.run(crawl_command(site, out_dir, *args), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def manifest(out_dir: Path) -> list[dict[str, str]]:
    with (out_dir / "manifest.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def failures(out_dir: Path) -> list[dict[str, str]]:
    with (out_dir / "failures.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def metadata(out_dir: Path, file: str) -> dict:
    return json.loads((out_dir / "metadata" / f"{Path(file).stem}.json").read_text(encoding="utf-8"))


def browsers_of(pid: int) -> list[psutil.Process]:
    """Live Chromium or chromedriver processes started by process ``pid``: by the owner variable, by the profile
    folder named after it, and their descendants (Chromium's helpers start with a clean environment)."""
    found: dict[int, psutil.Process] = {}
    marker = f"{TEMP_PREFIX}{pid}-"
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if marker in " ".join(proc.info["cmdline"] or []) or proc.environ().get(OWNER_ENV) == str(pid):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    for proc in list(found.values()):
        try:
            found.update({child.pid: child for child in proc.children(recursive=True)
                          if child.status() != psutil.STATUS_ZOMBIE})
        except psutil.Error:
            continue
    return list(found.values())
