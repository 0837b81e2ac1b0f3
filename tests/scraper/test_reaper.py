"""Browsers left behind by a process killed outright (SIGKILL, out of memory) are found and reaped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scraper import browser

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]

OWNER = """
import sys, time
from scraper import browser
b = browser.start()
print(b.user_data_dir, flush=True)
time.sleep(300)
"""


def _marked_by(owner: int) -> set[int]:
    return {pid for pid in browser._process_table() if browser._owner(pid) == owner}


def test_a_killed_owners_browser_is_reaped():
    proc = subprocess.Popen([sys.executable, "-c", OWNER], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        profile = proc.stdout.readline().strip()
        assert profile and Path(profile).is_dir()
        orphans = _marked_by(proc.pid)
        assert len(orphans) >= 2  # chromedriver and Chromium carry their owner's pid
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to quit its browser
        proc.wait(timeout=10)
        proc.stdout.close()
    assert all(os.path.exists(f"/proc/{pid}") for pid in orphans)  # left behind
    assert browser.reap_orphans() >= len(orphans)
    deadline = time.monotonic() + 10
    while _marked_by(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked_by(proc.pid) == set()
    assert not Path(profile).exists()


def test_a_dead_owners_profile_folder_is_deleted_even_without_processes(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=10)  # a pid that is surely dead now
    folder = Path(tempfile.gettempdir()) / f"{browser.TEMP_PREFIX}{proc.pid}-test"
    folder.mkdir()
    (folder / "Local State").write_text("{}")
    live = Path(tempfile.mkdtemp(prefix=f"{browser.TEMP_PREFIX}{os.getpid()}-"))
    try:
        browser.reap_orphans()
        assert not folder.exists()
        assert live.exists()  # this process is alive: its folder stays
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(live, ignore_errors=True)


def test_browsers_of_a_live_owner_are_left_alone():
    started = browser.start()
    try:
        mine = _marked_by(os.getpid())
        assert mine
        browser.reap_orphans()
        assert all(os.path.exists(f"/proc/{pid}") for pid in mine)
    finally:
        started.quit()
    assert _marked_by(os.getpid()) == set()
