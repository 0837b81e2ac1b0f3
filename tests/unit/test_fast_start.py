"""Commands import only what they use: `fetch` no browser, S3, Cassandra driver, scheduler or address checker;
`--help` not even the decoders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEVER_FOR_FETCH = {"selenium", "boto3", "botocore", "cassandra", "apscheduler", "email_validator"}


def _imported(tmp_path: Path, *command: str) -> set[str]:
    """The modules ``flask --app app <command>`` imports (each by its full name and its top-level package), on SQLite
    and local storage."""
    env = dict(os.environ, SECRET_KEY="x", SCHEDULER="off", DATABASE_URL=f"sqlite:///{tmp_path}/start.sqlite3",
               DATA_DIR=str(tmp_path / "data"), ALLOW_PRIVATE_URLS="on", LOG_LEVEL="WARNING")
    env.pop("STORAGE_URL", None)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "flask", "--app", str(ROOT / "app.py"), *command],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return names | {name.split(".")[0] for name in names}


@pytest.mark.parametrize(("command", "never"), [
    (("fetch", "--help"), NEVER_FOR_FETCH | {"numpy", "PIL"}),
    (("collect", "--help"), {"boto3", "botocore", "cassandra", "numpy", "PIL"}),
])
def test_help_starts_without_the_heavy_parts(tmp_path, command, never):
    imported = _imported(tmp_path, *command)
    assert "flask" in imported  # the measurement works
    assert not imported & never


def test_fetch_imports_no_browser_s3_or_cassandra_driver(tmp_path):
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/refused.jpg\n", encoding="utf-8")  # the discard port: refused at once
    imported = _imported(tmp_path, "fetch", str(urls), str(tmp_path / "out"))
    assert "downloader.client" in imported  # it did try the download
    assert "urllib3" not in imported  # the download stage's HTTP is its own client
    assert not imported & NEVER_FOR_FETCH


def test_fetch_leaves_the_decoders_to_its_check_workers(tmp_path, image_server):
    from downloader.checks import CHECK_WORKERS_FROM

    count = CHECK_WORKERS_FROM + 10  # enough for the stage to check in worker processes
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(image_server.url_for(f"fast-start-{i}") + "\n" for i in range(count)), encoding="utf-8")
    imported = _imported(tmp_path, "fetch", str(urls), str(tmp_path / "out"))
    assert len(list((tmp_path / "out" / "images").iterdir())) == count  # every image was checked and kept
    assert "downloader.records" in imported
    assert not imported & {"PIL", "numpy", "downloader.validate"}  # the workers decoded them, not this process
