"""The interface every storage implements, its error, and the one rule for names: job ids only."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class StorageError(Exception):
    """The storage could not be reached, or refused the request."""


def object_name(job_id: str) -> str:
    """The file or object name of a job's zip; the id is checked so no path or key can be smuggled in."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return f"{job_id}.zip"


class Storage(ABC):
    """Keeps one finished zip per job until retention deletes it."""

    @abstractmethod
    def save(self, job_id: str, zip_path: Path) -> None:
        """Take over ``zip_path`` as the job's zip; the local file is gone afterwards."""

    @abstractmethod
    def exists(self, job_id: str) -> bool:
        """Tell whether the job's zip is stored."""

    @abstractmethod
    def local_path(self, job_id: str) -> Path | None:
        """Return the zip's path on this machine, or None when it lives elsewhere."""

    @abstractmethod
    def presigned_url(self, job_id: str, download_name: str, expires_in: int) -> str | None:
        """Return a short-lived URL that downloads the zip as ``download_name``, or None when there is none."""

    @abstractmethod
    def delete(self, job_id: str) -> None:
        """Delete the job's zip; deleting a missing zip is not an error."""
