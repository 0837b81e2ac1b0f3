"""Secrets: no start without SECRET_KEY outside local development; one key signs links every process accepts;
tokens never reach gunicorn's access log; an API key skips the confirmation step."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
import requests

import config
from app import EXIT_CANNOT_START, create_app, redact_secret_paths
from db import open_store
from tests.fixtures.processes import HONCHO, ROOT, free_port, wait_done

REFUSAL = "SECRET_KEY is not set: refusing to start"
KEY = "program-key-0123456789abcdef"


@pytest.mark.parametrize("settings", [{"SCHEDULER": "worker"}, {"PUBLIC_URL": "https://aid.example.com"}])
def test_create_app_refuses_to_start_without_a_secret_key(tmp_path, settings, caplog):
    with pytest.raises(SystemExit) as exit_info:
        create_app({"TESTING": True, "SECRET_KEY": None, "DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
                    "SCHEDULER_START": False, **settings})
    assert exit_info.value.code == EXIT_CANNOT_START
    assert [r.getMessage() for r in caplog.records if REFUSAL in r.getMessage()] != []


def test_local_development_starts_with_a_random_key(make_app):
    first, second = make_app(SECRET_KEY=None), make_app(SECRET_KEY=None)
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]


def _run_without_key(argv: list[str], tmp_path: Path, **env) -> tuple[int, str]:
    """Run a process of the app without SECRET_KEY; it must end by itself (killed by pid after 60 s)."""
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(DATABASE_URL=f"sqlite:///{tmp_path}/a.db", DATA_DIR=str(tmp_path / "data"),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **env)
    proc = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for process in tree:
            process.kill()
        proc.wait(timeout=10)
    return proc.returncode, output.decode(errors="replace")


def test_a_worker_without_secret_key_does_not_start(tmp_path):
    code, output = _run_without_key([sys.executable, "-m", "scheduler"], tmp_path, SCHEDULER="worker")
    assert code == EXIT_CANNOT_START
    assert output.count(REFUSAL) == 1
    assert "Traceback" not in output


def test_gunicorn_with_an_https_public_url_and_no_secret_key_stops(tmp_path):
    """The worker cannot boot, so gunicorn's master stops instead of starting it again and again."""
    code, output = _run_without_key([HONCHO, "start", "-f", "Procfile", "web"], tmp_path, HOST="127.0.0.1",
                                    PORT=str(free_port()), PUBLIC_URL="https://aid.example.com")
    assert REFUSAL in output
    assert "Worker failed to boot" in output
    assert output.count(REFUSAL) == 1  # not respawned
    assert code != 0


@pytest.mark.parametrize("line, expected", [
    ("GET /download/eyJhYmMi.aBc-12_x HTTP/1.1", "GET /download/[redacted] HTTP/1.1"),
    ("POST /confirm/Zm9v.YmFy?next=1 HTTP/1.1", "POST /confirm/[redacted]?next=1 HTTP/1.1"),
    ("GET /jobs/abc HTTP/1.1", "GET /jobs/abc HTTP/1.1"),
    ("https://aid.example.com/download/tok\"", "https://aid.example.com/download/[redacted]\""),
])
def test_redact_secret_paths(line, expected):
    assert redact_secret_paths(line) == expected


@pytest.fixture
def store(app_env):
    opened = open_store(app_env["DATABASE_URL"], config.load({}))
    yield opened
    opened.close()


def test_gunicorns_access_log_never_carries_a_token(processes):
    web = processes.procfile_web()  # honcho runs gunicorn with gunicorn.conf.py, as Heroku does
    tokens = ["dl-SECRET-token.abc", "cf-SECRET-token.def"]
    for path in (f"/download/{tokens[0]}", f"/confirm/{tokens[1]}", f"/download/{tokens[0]}?utm=1", "/jobs/visible"):
        requests.get(web.url + path, timeout=10, headers={"Referer": f"{web.url}/confirm/{tokens[1]}"})
    web.stop()
    log = web.log_path.read_text(errors="replace")
    assert '"GET /jobs/visible HTTP/1.1" 404' in log  # the access log is there
    assert "GET /download/[redacted] HTTP/1.1" in log and "GET /confirm/[redacted] HTTP/1.1" in log
    assert "SECRET-token" not in log


@pytest.mark.slow
def test_an_api_key_job_needs_no_confirmation_and_its_link_from_the_worker_works_on_the_web(processes, store,
                                                                                             smtp_server):
    """SCHEDULER=worker: the worker signs the link, the web process serves it, both with the one SECRET_KEY."""
    settings = {"SCHEDULER": "worker", "EMAIL_CONFIRMATION": "on", "API_KEYS": f"other,{KEY}"}
    web = processes.procfile_web(**settings)
    processes.worker(**settings, PUBLIC_URL=web.url)  # the worker writes the emails' links
    at = datetime.now(UTC)
    job = {"search-query": "red panda", "email": "program@example.com", "images": 3,
           "date": at.strftime("%Y-%m-%d"), "time": at.strftime("%H:%M:%S")}
    response = requests.post(web.url + "/api/jobs", json=job, timeout=10, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    [done] = wait_done(store, [response.json()["id"]], timeout=150)
    assert done.status == "done"
    messages = smtp_server.wait_for(lambda msgs: any("are ready" in m["Subject"] for m in msgs), timeout=30)
    subjects = [m["Subject"] for m in messages if m["To"] == "program@example.com"]
    assert not any("onfirm" in s for s in subjects)
    ready = next(m for m in messages if "are ready" in m["Subject"])
    link = re.search(r"(http://\S+/download/\S+)", ready.get_body(("plain",)).get_content())[1]
    assert link.startswith(web.url)
    download = requests.get(link, timeout=30)
    assert download.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert len([n for n in names if n.split("/", 1)[-1].startswith("images/")]) == 3  # in the job's one folder
    # Without the key the same request waits for its owner's confirmation.
    unconfirmed = requests.post(web.url + "/api/jobs", json={**job, "email": "someone@example.com"}, timeout=10)
    assert unconfirmed.status_code == 201
    assert unconfirmed.json()["status"] == "unconfirmed"


def test_the_same_key_in_another_process_reads_the_link(tmp_path):
    """A link signed by one process opens in another with the same SECRET_KEY, and not with another key."""
    script = ("import sys; from app import create_app; from jobs.links import make_download_token, read_download_token;"
              "app = create_app({'SCHEDULER_START': False}); ctx = app.app_context(); ctx.push();"
              "print(make_download_token('job-1') if sys.argv[1] == 'make' else read_download_token(sys.argv[2]))")

    def run(key: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "SECRET_KEY": key, "SCHEDULER": "worker", "DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
               "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "ERROR"}
        return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    token = run("one-key", "make").stdout.strip()
    assert run("one-key", "read", token).stdout.strip() == "job-1"
    other = run("another-key", "read", token)
    assert other.returncode != 0 and "LinkInvalid" in other.stderr
