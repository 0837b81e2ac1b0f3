"""Zips in a folder on this machine: the default, fine for one dyno or one server."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path

from storage.base import Storage, StorageError, object_name

log = logging.getLogger(__name__)


class LocalStorage(Storage):
    """Keeps ``<root>/<job_id>.zip``; the web view sends the file itself."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, job_id: str) -> Path:
        return self.root / object_name(job_id)

    def save(self, job_id: str, zip_path: Path) -> None:
        target = self._path(job_id)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(zip_path, target)  # atomic: a reader sees the old zip or the new one, never half
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_across_filesystems(Path(zip_path), target)
        except OSError as exc:
            raise StorageError(f"could not store the zip of job {job_id} in {self.root}: {exc}") from exc
        log.debug("stored the zip of job %s at %s", job_id, target)

    def _copy_across_filesystems(self, source: Path, target: Path) -> None:
        # Copy next to the target first, so the final step is still an atomic rename on the target's filesystem.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        source.unlink()

    def exists(self, job_id: str) -> bool:
        return self._path(job_id).is_file()

    def local_path(self, job_id: str) -> Path | None:
        return self._path(job_id)

    def presigned_url(self, job_id: str, download_name: str, expires_in: int) -> str | None:
        return None

    def delete(self, job_id: str) -> None:
        try:
            self._path(job_id).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete the zip of job {job_id}: {exc}") from exc
