"""The zip holds the images stored as they are, a manifest with provenance, and the failures with reasons."""

from __future__ import annotations

import csv
import io
import zipfile

from downloader import DownloadResult, Failure, ImageRecord, write_reports, write_zip


def _result(tmp_path) -> DownloadResult:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "0001.jpg").write_bytes(b"\xff\xd8jpeg bytes" * 100)
    (tmp_path / "images" / "0002.png").write_bytes(b"\x89PNG bytes" * 100)
    images = [
        ImageRecord(
            "images/0001.jpg",
            "http://a/1.jpg",
            "http://a/",
            "Le café, ünïcode",
            "bing",
            640,
            480,
            1200,
            "a" * 64,
            "0123456789abcdef",
        ),
        ImageRecord(
            "images/0002.png",
            "http://b/2.png",
            None,
            '=HYPERLINK("http://evil")',
            "google",
            32,
            32,
            1000,
            "b" * 64,
            "fedcba9876543210",
        ),
    ]
    return DownloadResult(
        want=3,
        images=images,
        failures=[Failure("http://c/3.jpg", "HTTP 404")],
        shortfall=1,
        shortfall_reason="found 2 of 3 images: 3 candidates, 1 broken links",
        candidates_seen=3,
    )


def test_zip_layout_and_compression(tmp_path):
    result = _result(tmp_path)
    size = write_zip(result, tmp_path, tmp_path / "job.zip")
    assert size == (tmp_path / "job.zip").stat().st_size
    with zipfile.ZipFile(tmp_path / "job.zip") as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert list(infos) == ["images/0001.jpg", "images/0002.png", "manifest.csv", "failures.csv"]
        assert infos["images/0001.jpg"].compress_type == zipfile.ZIP_STORED
        assert infos["images/0002.png"].compress_type == zipfile.ZIP_STORED
        assert archive.read("images/0002.png") == (tmp_path / "images" / "0002.png").read_bytes()
        manifest = list(csv.reader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))
        failures = list(csv.reader(io.StringIO(archive.read("failures.csv").decode("utf-8"))))
    assert manifest[0] == [
        "file",
        "image_url",
        "page_url",
        "title",
        "engine",
        "width",
        "height",
        "bytes",
        "sha256",
        "phash",
    ]
    assert manifest[1] == [
        "images/0001.jpg",
        "http://a/1.jpg",
        "http://a/",
        "Le café, ünïcode",
        "bing",
        "640",
        "480",
        "1200",
        "a" * 64,
        "0123456789abcdef",
    ]
    assert manifest[2][3] == '\'=HYPERLINK("http://evil")'  # not a live formula in a spreadsheet
    assert failures == [["url", "reason"], ["http://c/3.jpg", "HTTP 404"]]
    assert not (tmp_path / "job.zip.partial").exists()


def test_reports_next_to_the_images(tmp_path):
    write_reports(_result(tmp_path), tmp_path)
    assert (tmp_path / "manifest.csv").read_text(encoding="utf-8").count("\n") == 3
    assert (tmp_path / "failures.csv").read_text(encoding="utf-8").splitlines()[1] == "http://c/3.jpg,HTTP 404"
