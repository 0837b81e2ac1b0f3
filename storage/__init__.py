"""Where finished zips live: a local folder or S3-compatible object storage, chosen by ``STORAGE_URL``.

Exceptions::

    StorageError          the storage could not be reached or refused the request (botocore's error is chained)

A bad ``STORAGE_URL`` or a malformed job id is a programming or configuration error: ``ValueError``.
``get_storage()`` opens the storage on first use in each process (after a gunicorn fork) and keeps it in
``app.extensions["storage"]`` (a ``db.per_process.PerProcess``), as ``db.get_store()`` does for the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app

from db.per_process import PerProcess
from storage.base import Storage, StorageError
from storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "get_storage", "open_storage"]


def open_storage(url: str | None, config: Mapping[str, Any]) -> Storage:
    """Open the storage named by ``url``: unset or file:///abs/dir for a folder, s3://bucket/prefix for S3."""
    if not url:
        if not config.get("DATA_DIR"):
            raise ValueError("DATA_DIR must be set when STORAGE_URL is unset")
        return LocalStorage(Path(config["DATA_DIR"]) / "zips")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute():
            raise ValueError(f"STORAGE_URL file:// needs an absolute local path (file:///abs/dir), got {url!r}")
        return LocalStorage(path)
    if scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"STORAGE_URL s3:// needs a bucket (s3://bucket/prefix), got {url!r}")
        from storage.s3 import S3Storage  # boto3 is imported only when S3 is used

        # Not settings: production uses boto3's chain; tests (and only they) hand keys in through ``config``.
        key_id, secret = config.get("AWS_ACCESS_KEY_ID"), config.get("AWS_SECRET_ACCESS_KEY")
        return S3Storage(bucket=parts.netloc, prefix=parts.path, endpoint_url=config.get("S3_ENDPOINT_URL") or None,
                         region=config.get("AWS_REGION") or "us-east-1",
                         credentials=(key_id, secret) if key_id and secret else None)
    raise ValueError(f"STORAGE_URL must be unset or start with file:// or s3://, got {url!r}")


def get_storage(app: Flask | None = None) -> Storage:
    """Return this process's storage for ``app`` (the current app by default), opening it on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    holder: PerProcess[Storage] | None = app.extensions.get("storage")
    if holder is None:
        holder = app.extensions.setdefault("storage", PerProcess())
    return holder.get(lambda: open_storage(app.config.get("STORAGE_URL"), app.config))
