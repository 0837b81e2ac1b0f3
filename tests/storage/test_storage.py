"""storage: a local folder and S3 (a real moto server on 127.0.0.1) keep, show, sign and delete job zips."""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from storage import LocalStorage, Storage, StorageError, get_storage, open_storage
from storage.s3 import S3Storage, content_disposition

ROOT = Path(__file__).resolve().parents[2]
JOB = "Zq3_x-9aB7cD1eF2gH4iJw"  # the shape of jobs.new_job_id(): token_urlsafe(16)


def make_zip(folder: Path, size: int = 64 * 1024, name: str = "out.zip") -> tuple[Path, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path = folder / name
    path.write_bytes(data)
    return path, data


@pytest.fixture
def bucket(s3_server) -> str:
    return s3_server.create_bucket()


@pytest.fixture
def s3(s3_server, bucket) -> Storage:
    return open_storage(f"s3://{bucket}/zips", s3_server.settings)


# --- choosing a storage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, ""])
def test_unset_url_means_the_zips_folder_under_data_dir(tmp_path, url):
    storage = open_storage(url, {"DATA_DIR": str(tmp_path)})
    assert isinstance(storage, LocalStorage)
    assert storage.local_path(JOB) == tmp_path / "zips" / f"{JOB}.zip"


def test_file_url_names_the_folder(tmp_path):
    storage = open_storage((tmp_path / "shared zips").as_uri(), {})
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "shared zips"


def test_s3_url_names_bucket_and_prefix():
    settings = {"S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1"}
    storage = open_storage("s3://my-bucket/aid/zips/", settings)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.region) == ("my-bucket", "aid/zips", "eu-west-1")
    assert storage.key(JOB) == f"aid/zips/{JOB}.zip"
    assert open_storage("s3://my-bucket", {}).key(JOB) == f"{JOB}.zip"


@pytest.mark.parametrize("url", ["file://relative/dir", "file://otherhost/abs", "s3:///no-bucket", "http://x/y",
                                 "/abs/dir", "gs://bucket"])
def test_bad_urls_are_refused(url):
    with pytest.raises(ValueError, match="STORAGE_URL"):
        open_storage(url, {"DATA_DIR": "/tmp"})


def test_unset_url_needs_a_data_dir():
    with pytest.raises(ValueError, match="DATA_DIR"):
        open_storage(None, {})


@pytest.mark.parametrize("job_id", ["../etc/passwd", "a/b", "", "x.zip", "a b", "é", "a" * 129])
def test_names_come_from_job_ids_only(tmp_path, job_id):
    for storage in (LocalStorage(tmp_path), S3Storage("bucket", "zips")):
        with pytest.raises(ValueError, match="not a job id"):
            storage.exists(job_id)
        with pytest.raises(ValueError, match="not a job id"):
            storage.delete(job_id)


def test_get_storage_opens_once_per_process(tmp_path):
    app = Flask(__name__)
    app.config.update(STORAGE_URL=None, DATA_DIR=str(tmp_path))
    first = get_storage(app)
    assert get_storage(app) is first
    with app.app_context():
        assert get_storage() is first
    app.extensions["storage"]._pid = -1  # as if inherited across a fork
    assert get_storage(app) is not first


# --- local folder -----------------------------------------------------------------------------------------------


def test_local_round_trip(tmp_path):
    storage = open_storage(None, {"DATA_DIR": str(tmp_path / "data")})
    source, data = make_zip(tmp_path / "work")
    assert not storage.exists(JOB)
    storage.save(JOB, source)
    assert not source.exists(), "save moves the file"
    assert storage.exists(JOB)
    assert storage.local_path(JOB).read_bytes() == data
    assert storage.presigned_url(JOB, "cats.zip", 60) is None
    storage.delete(JOB)
    assert not storage.exists(JOB)
    storage.delete(JOB)  # deleting again is fine


def test_local_save_replaces_an_older_zip(tmp_path):
    storage = LocalStorage(tmp_path / "zips")
    storage.save(JOB, make_zip(tmp_path / "a")[0])
    source, data = make_zip(tmp_path / "b", size=1000)
    storage.save(JOB, source)
    assert storage.local_path(JOB).read_bytes() == data


def test_local_save_of_the_zip_already_in_place_keeps_it(tmp_path):
    # The pipeline writes DATA_DIR/zips/<job_id>.zip, which is also where the default storage keeps it.
    storage = open_storage(None, {"DATA_DIR": str(tmp_path)})
    source, data = make_zip(tmp_path / "zips", name=f"{JOB}.zip")
    storage.save(JOB, source)
    assert storage.local_path(JOB).read_bytes() == data


def test_local_save_across_filesystems(tmp_path):
    # /dev/shm is a tmpfs: a rename from there into tmp_path fails with EXDEV, so the copy path runs for real.
    other_fs = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        assert other_fs.stat().st_dev != tmp_path.stat().st_dev
        source, data = make_zip(other_fs)
        storage = LocalStorage(tmp_path / "zips")
        storage.save(JOB, source)
        assert not source.exists()
        assert storage.local_path(JOB).read_bytes() == data
        assert [p.name for p in storage.root.iterdir()] == [f"{JOB}.zip"], "no temporary file is left behind"
    finally:
        shutil.rmtree(other_fs, ignore_errors=True)


def test_local_save_of_a_missing_file_raises_storage_error(tmp_path):
    with pytest.raises(StorageError) as caught:
        LocalStorage(tmp_path / "zips").save(JOB, tmp_path / "missing.zip")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


# --- S3 ---------------------------------------------------------------------------------------------------------


def test_s3_round_trip(s3, s3_server, bucket, tmp_path):
    source, data = make_zip(tmp_path)
    assert not s3.exists(JOB)
    s3.save(JOB, source)
    assert not source.exists(), "the local zip is deleted once uploaded"
    assert s3.exists(JOB)
    assert s3.local_path(JOB) is None
    stored = s3_server.client().get_object(Bucket=bucket, Key=f"zips/{JOB}.zip")
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "application/zip"
    s3.delete(JOB)
    assert not s3.exists(JOB)


def test_s3_deleting_a_missing_object_is_fine(s3):
    s3.delete(JOB)
    s3.delete(JOB)
    assert not s3.exists(JOB)


def test_s3_big_zip_goes_up_in_parts(s3, s3_server, bucket, tmp_path):
    source, data = make_zip(tmp_path, size=17 * 1024 * 1024)  # over the 16 MiB multipart threshold
    s3.save(JOB, source)
    head = s3_server.client().head_object(Bucket=bucket, Key=f"zips/{JOB}.zip")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-2"), "a multipart upload's ETag ends with the part count"


def test_presigned_url_downloads_the_exact_bytes_with_the_file_name(s3, tmp_path):
    source, data = make_zip(tmp_path)
    s3.save(JOB, source)
    url = s3.presigned_url(JOB, "black-cats-25-images.zip", 300)
    assert url.startswith(s3.endpoint_url) and JOB in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()
    assert response.headers["Content-Disposition"] == 'attachment; filename="black-cats-25-images.zip"'
    assert response.headers["Content-Type"] == "application/zip"


def test_presigned_url_is_signed_for_the_asked_lifetime(s3, tmp_path):
    # moto 5.2.5 does not enforce X-Amz-Expires (a 1 s URL still answers 200 later), so the expiry itself is
    # AWS's job; what we control, and check here, is that the URL is SigV4-signed for exactly that lifetime.
    s3.save(JOB, make_zip(tmp_path)[0])
    query = parse_qs(urlsplit(s3.presigned_url(JOB, "x.zip", 1)).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["1"]
    signed_at = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    assert abs(signed_at - time.time()) < 3600, "signed now, not in the past or future"
    assert query["X-Amz-Signature"][0]
    assert query["response-content-disposition"] == ['attachment; filename="x.zip"']


def test_content_disposition_keeps_an_ascii_name_and_the_exact_one():
    assert content_disposition("cats-3-images.zip") == 'attachment; filename="cats-3-images.zip"'
    header = content_disposition('chats "noirs" é.zip')
    assert header.startswith('attachment; filename="chats_noirs_.zip"; ')
    assert header.endswith("filename*=UTF-8''chats%20%22noirs%22%20%C3%A9.zip")


def test_another_process_sees_the_same_object(s3, s3_server, bucket, tmp_path):
    source, data = make_zip(tmp_path)
    s3.save(JOB, source)
    script = (
        "import json, sys, requests\n"
        "from storage import open_storage\n"
        "args = json.loads(sys.argv[1])\n"
        "storage = open_storage(args['url'], args['settings'])\n"
        "exists = storage.exists(args['job'])\n"
        "body = requests.get(storage.presigned_url(args['job'], 'a.zip', 60), timeout=10).content\n"
        "storage.delete(args['job'])\n"
        "print(json.dumps({'exists': exists, 'hex': body.hex()}))\n"
    )
    args = json.dumps({"url": f"s3://{bucket}/zips", "settings": s3_server.settings, "job": JOB})
    done = subprocess.run([sys.executable, "-c", script, args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["exists"] is True
    assert bytes.fromhex(seen["hex"]) == data
    assert not s3.exists(JOB), "the other process's delete is seen here"


def test_a_second_instance_in_this_process_sees_the_same_object(s3, s3_server, bucket, tmp_path):
    s3.save(JOB, make_zip(tmp_path)[0])
    other = open_storage(f"s3://{bucket}/zips/", s3_server.settings)
    assert other is not s3 and other.exists(JOB)
    assert not open_storage(f"s3://{bucket}/elsewhere", s3_server.settings).exists(JOB)


def test_missing_bucket_raises_storage_error(s3_server, tmp_path):
    storage = open_storage("s3://no-such-bucket/zips", s3_server.settings)
    source, _ = make_zip(tmp_path)
    with pytest.raises(StorageError, match="could not upload"):
        storage.save(JOB, source)
    assert source.exists(), "a failed upload keeps the local zip"


def _dead_endpoint() -> str:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("call", ["save", "exists", "delete"])
def test_dead_endpoint_raises_storage_error(s3_server, tmp_path, call):
    storage = open_storage("s3://bucket/zips", {**s3_server.settings, "S3_ENDPOINT_URL": _dead_endpoint()})
    source, _ = make_zip(tmp_path)
    action = {"save": lambda: storage.save(JOB, source), "exists": lambda: storage.exists(JOB),
              "delete": lambda: storage.delete(JOB)}[call]
    with pytest.raises(StorageError) as caught:
        action()
    assert caught.value.__cause__ is not None, "the botocore error is chained"
