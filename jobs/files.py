"""Where a job's files live: a work folder while it runs, then one zip. Names come from the job id only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask import Flask


def data_dir(app: Flask) -> Path:
    return Path(app.config["DATA_DIR"])


def work_dir(app: Flask, job_id: str) -> Path:
    return data_dir(app) / "work" / job_id


def zip_path(app: Flask, job_id: str) -> Path:
    return data_dir(app) / "zips" / f"{job_id}.zip"


def remove_job_files(app: Flask, job_id: str) -> None:
    shutil.rmtree(work_dir(app, job_id), ignore_errors=True)
    zip_path(app, job_id).unlink(missing_ok=True)


def download_name(query: str, count: int) -> str:
    """A friendly file name for the browser's save dialog (never used as a path on our disk)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", query).strip("-").lower()[:60] or "images"
    return f"{slug}-{count}-images.zip"
