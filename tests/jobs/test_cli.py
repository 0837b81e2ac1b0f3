"""`flask run-job`: a whole job in the terminal, without web or email, with a progress bar."""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import select
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.fixtures import imagefolder

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # a real `flask run-job` process; candidates from the fixture URL list, no browser


def _run(tmp_path, engines, *args, command: str = "run-job", **env) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal (as in a shell, where click draws its bar)."""
    environ = {**os.environ, "SECRET_KEY": "cli", "DATABASE_URL": f"sqlite:///{tmp_path}/cli.sqlite3",
               "DATA_DIR": str(tmp_path / "data"), "URL_LIST": engines.url_list, "IMAGE_SOURCES": "urls",
               "ALLOW_PRIVATE_URLS": "on", "SMTP_HOST": "", **env}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", command, *args], cwd=ROOT,
                            env=environ, stdout=subprocess.PIPE, stderr=follower, text=True)
    os.close(follower)
    terminal = b""
    while True:  # drain the terminal while the command runs; it ends when the child closes its side
        ready, _, _ = select.select([leader], [], [], 180)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child has exited
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    with proc.stdout:
        stdout = proc.stdout.read()
    proc.wait(timeout=30)
    return proc.returncode, stdout, terminal.decode("utf-8", "replace")


def test_run_job_writes_the_zip(tmp_path, engines, image_server):
    engines.reset()
    out = tmp_path / "panda.zip"
    code, stdout, terminal = _run(tmp_path, engines, "red panda", "-n", "15", "-o", str(out))
    assert code == 0, terminal
    assert f"15 images in {out}" in stdout
    assert "red panda  [" in terminal and "0/15" in terminal and "]  15/15  100%" in terminal  # the progress bar
    assert "collecting image links" in terminal and "downloading, " in terminal  # the phase beside the counts
    assert re.search(rf"15 images in {re.escape(str(out))} \(\d+\.\d (KB|MB)\)", stdout)
    with zipfile.ZipFile(out) as archive:
        assert {n.split("/", 1)[0] for n in archive.namelist()} == {"red-panda-15-images"}  # one folder, no loose files
        images = [n.split("/", 1)[1] for n in archive.namelist() if n.startswith("red-panda-15-images/images/")]
        manifest = list(csv.DictReader(io.StringIO(archive.read("red-panda-15-images/manifest.csv").decode("utf-8"))))
    assert len(images) == 15
    assert sorted(row["file"] for row in manifest) == sorted(images)
    assert not (tmp_path / "data" / "outbox").exists()  # no email


def test_run_job_says_why_when_nothing_is_found(tmp_path, engines, image_server):
    engines.set_mode("urls", "empty")
    try:
        code, _, terminal = _run(tmp_path, engines, "zzqx nothing", "-n", "5", "-o", str(tmp_path / "none.zip"))
    finally:
        engines.reset()
    assert code == 1
    assert "no images could be delivered for “zzqx nothing”" in terminal
    assert not (tmp_path / "none.zip").exists()


def test_run_job_with_several_classes_a_split_and_a_licence(tmp_path, engines, open_apis):
    out = tmp_path / "pets.zip"
    code, stdout, terminal = _run(tmp_path, engines, "cat", "dog", "-n", "10", "-o", str(out), "--split", "80/20",
                                  "--licence", "commercial", "--formats", "jpeg,png,webp",
                                  IMAGE_SOURCES="openverse", OPENVERSE_URL=open_apis.openverse_url)
    assert code == 0, terminal
    assert f"20 images in {out}" in stdout and "cat/: 10 of 10 images" in stdout and "dog/: 10 of 10" in stdout
    assert "0/20" in terminal and "20/20" in terminal
    names = imagefolder.members(out)
    manifest = list(csv.DictReader(io.StringIO(imagefolder.read(out, "manifest.csv").decode("utf-8"))))
    for part, share in (("train", 8), ("val", 2)):
        for label in ("cat", "dog"):
            assert len([n for n in names if n.startswith(f"{part}/{label}/")]) == share
        assert f"{part}/metadata.jsonl" in names
    assert {row["license"] for row in manifest} <= {"cc0", "pdm", "by", "by-sa", "by-nd"}


def test_run_job_writes_webdataset_shards(tmp_path, engines, open_apis):
    out = tmp_path / "pets.zip"
    code, _, terminal = _run(tmp_path, engines, "cat", "dog", "-n", "4", "-o", str(out), "--layout", "webdataset",
                             IMAGE_SOURCES="openverse", OPENVERSE_URL=open_apis.openverse_url)
    assert code == 0, terminal
    assert [n for n in imagefolder.members(out) if n.endswith(".tar")] == ["shard-000000.tar"]
    with tarfile.open(fileobj=io.BytesIO(imagefolder.read(out, "shard-000000.tar"))) as tar:
        names = tar.getnames()
    stems = [name.rsplit(".", 1) for name in names]
    assert len(names) == 16 and [ext for _, ext in stems[1::2]] == ["json"] * 8
    assert [key for key, _ in stems[::2]] == [key for key, _ in stems[1::2]]
    assert {key.split("-")[0] for key, _ in stems} == {"cat", "dog"}


def test_run_job_refuses_too_many_classes(tmp_path, engines):
    code, _, terminal = _run(tmp_path, engines, "a", "b", "c", "-n", "1", MAX_CLASSES="2")
    assert code == 2 and "at most 2 search queries (classes)" in terminal  # the form's message (MAX_CLASSES)


def test_run_job_checks_its_queries_as_the_form_does_and_says_nothing_of_secret_key(tmp_path, engines):
    code, _, terminal = _run(tmp_path, engines, "", SECRET_KEY="")
    assert code == 2 and "search query is required" in terminal
    assert "SECRET_KEY" not in terminal  # only the web app needs one
    code, _, terminal = _run(tmp_path, engines, "see www.example.com", SECRET_KEY="")
    assert code == 2 and "the search query cannot contain a web address" in terminal


def test_fetch_shows_images_of_the_total_and_ends_at_100_percent(tmp_path, engines, image_server):
    urls = tmp_path / "urls.txt"
    good = [image_server.url_for(f"fetchbar{n}") for n in range(6)]
    urls.write_text("\n".join([*good, image_server.url + "/img/gone.bmp", image_server.url + "/img/gone.tiff"]))
    code, stdout, terminal = _run(tmp_path, engines, str(urls), str(tmp_path / "out"), command="fetch")
    assert code == 0, terminal
    assert "6 of 8 images in" in stdout
    bar = terminal.rsplit("Downloading", 1)[1]
    assert "6/6  100%" in bar  # the list ran out at 6: the bar ends full, at the images found
