"""Where a job's files live: a work folder while it runs, then one zip and a few thumbnails. Names on our disk come
from the job id and counters only."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from flask import Flask

from storage import get_storage


def data_dir(app: Flask) -> Path:
    return Path(app.config["DATA_DIR"])


def work_dir(app: Flask, job_id: str) -> Path:
    return data_dir(app) / "work" / job_id


def zip_path(app: Flask, job_id: str) -> Path:
    return data_dir(app) / "zips" / f"{job_id}.zip"


def thumbnails_dir(app: Flask, job_id: str) -> Path:
    return data_dir(app) / "thumbnails" / job_id


def keep_thumbnails(app: Flask, job_id: str, thumbnails: Iterable[Path]) -> int:
    """Copy the job's preview thumbnails out of its work folder as 1.jpg, 2.jpg, ...; return how many."""
    folder = thumbnails_dir(app, job_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    kept = 0
    for kept, path in enumerate(thumbnails, start=1):
        shutil.copyfile(path, folder / f"{kept}.jpg")
    return kept


def thumbnail(app: Flask, job_id: str, number: int) -> Path | None:
    path = thumbnails_dir(app, job_id) / f"{number}.jpg"
    return path if path.is_file() else None


def thumbnail_count(app: Flask, job_id: str) -> int:
    folder = thumbnails_dir(app, job_id)
    return sum(1 for _ in folder.glob("*.jpg")) if folder.is_dir() else 0


def remove_job_files(app: Flask, job_id: str) -> None:
    shutil.rmtree(work_dir(app, job_id), ignore_errors=True)
    shutil.rmtree(thumbnails_dir(app, job_id), ignore_errors=True)
    zip_path(app, job_id).unlink(missing_ok=True)


def folder_name(query: str, count: int) -> str:
    """The one folder the zip unpacks into, e.g. ``red-panda-200-images`` (never used as a path on our disk)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", query).strip("-").lower()[:60].strip("-") or "images"
    return f"{slug}-{count}-images"


def delete_all(app: Flask, job_id: str) -> None:
    """Delete the job's zip wherever it is stored (a local folder or S3), its work folder and its thumbnails."""
    get_storage(app).delete(job_id)
    remove_job_files(app, job_id)


def download_name(query: str, count: int) -> str:
    """A friendly file name for the browser's save dialog: the zip's folder name with .zip."""
    return folder_name(query, count) + ".zip"
