"""Zips in S3-compatible object storage, so every dyno sees every zip; downloads go by presigned URL.

Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance
role); tests pass them explicitly. Keys are ``<prefix>/<job_id>.zip`` and nothing else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from db.per_process import PerProcess
from storage.base import Storage, StorageError, object_name

log = logging.getLogger(__name__)

# Boto3 clients are thread-safe but must not cross a fork, so each process makes its own on first use.
_clients: PerProcess[Any] = PerProcess()
# A stuck endpoint must not hold a job or a web request for long; "standard" retries back off on throttling.
_CLIENT_CONFIG = Config(signature_version="s3v4", connect_timeout=5, read_timeout=60,
                        retries={"mode": "standard", "max_attempts": 3})
_TRANSFER = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024,
                           max_concurrency=4)
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_BOTO_ERRORS = (BotoCoreError, ClientError, Boto3Error)


def _client(endpoint_url: str | None, region: str, credentials: tuple[str, str] | None) -> Any:
    def make() -> Any:
        access_key, secret_key = credentials or (None, None)
        config = _CLIENT_CONFIG
        if endpoint_url:  # S3-compatible services and IP endpoints want bucket names in the path
            config = config.merge(Config(s3={"addressing_style": "path"}))
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    return _clients.get(make, key=(endpoint_url, region, credentials))


@dataclass
class _Outcome:
    missing: bool = False  # the object was not there (only when the caller said that is fine)


@contextmanager
def _errors(doing: str, missing_ok: bool = False) -> Iterator[_Outcome]:
    """Turn boto's errors into ``StorageError`` ("could not <doing>: ..."); with ``missing_ok`` a 404 is no error."""
    outcome = _Outcome()
    try:
        yield outcome
    except ClientError as exc:
        if missing_ok and str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:
            outcome.missing = True
            return
        raise StorageError(f"could not {doing}: {exc}") from exc
    except _BOTO_ERRORS as exc:
        raise StorageError(f"could not {doing}: {exc}") from exc


def content_disposition(download_name: str) -> str:
    """An attachment header with an ASCII name and, when needed, the exact UTF-8 name (RFC 6266)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", download_name).strip("_") or "images.zip"
    header = f'attachment; filename="{ascii_name}"'
    if ascii_name != download_name:
        header += f"; filename*=UTF-8''{quote(download_name, safe='')}"
    return header


class S3Storage(Storage):
    """Keeps ``s3://<bucket>/<prefix>/<job_id>.zip``."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1",
                 credentials: tuple[str, str] | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix}, endpoint={self.endpoint_url or 'AWS'})"

    @property
    def client(self) -> Any:
        return _client(self.endpoint_url, self.region, self._credentials)

    def key(self, job_id: str) -> str:
        name = object_name(job_id)
        return f"{self.prefix}/{name}" if self.prefix else name

    def save(self, job_id: str, zip_path: Path) -> None:
        key = self.key(job_id)
        with _errors(f"upload the zip of job {job_id} to s3://{self.bucket}/{key}"):
            # upload_file switches to a parallel multipart upload for big zips and retries failed parts.
            self.client.upload_file(str(zip_path), self.bucket, key, Config=_TRANSFER,
                                    ExtraArgs={"ContentType": "application/zip"})
        Path(zip_path).unlink(missing_ok=True)
        log.debug("uploaded the zip of job %s to s3://%s/%s", job_id, self.bucket, key)

    def exists(self, job_id: str) -> bool:
        with _errors(f"look up the zip of job {job_id}", missing_ok=True) as outcome:
            self.client.head_object(Bucket=self.bucket, Key=self.key(job_id))
        return not outcome.missing

    def local_path(self, job_id: str) -> Path | None:
        return None

    def presigned_url(self, job_id: str, download_name: str, expires_in: int) -> str | None:
        params = {"Bucket": self.bucket, "Key": self.key(job_id), "ResponseContentType": "application/zip",
                  "ResponseContentDisposition": content_disposition(download_name)}
        with _errors(f"sign a download URL for job {job_id}"):
            # Signing is local: no request is made, so this cannot tell whether the object exists.
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(expires_in))

    def delete(self, job_id: str) -> None:
        with _errors(f"delete the zip of job {job_id}", missing_ok=True):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(job_id))  # S3 answers 204 for a missing key
