"""Fixtures of the web tests."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

import pytest

from db import DONE, Job, get_store
from jobs import files


@pytest.fixture
def finished_job(app):
    """A done job with a zip on disk."""
    now = datetime.now(UTC)
    job = Job(id="job-download-test", query="red panda", email="a@example.com", count=2, run_at=now,
              created_at=now)
    with app.app_context():
        store = get_store()
        store.create_job(job)
        assert store.claim_job(job.id, "w", now)
        path = files.zip_path(app, job.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("manifest.csv", "file\n")
        assert store.finish_job(job.id, "w", DONE, now, delivered=2, zip_name=path.name, zip_bytes=path.stat().st_size)
    return job
