"""The zip: images stored as they are, in class (and split) folders that ImageFolder and imagefolder load, with
metadata.jsonl, manifest.csv, failures.csv and ATTRIBUTION.txt; or WebDataset shards; streamed, zip64."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from downloader import (
    Dataset,
    DatasetFailure,
    DatasetImage,
    DownloadResult,
    Failure,
    ImageRecord,
    write_dataset,
    write_reports,
    write_zip,
)
from downloader.dataset import split_counts
from tests.fixtures import imagefolder


def _result(tmp_path) -> DownloadResult:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "0001.jpg").write_bytes(b"\xff\xd8jpeg bytes" * 100)
    (tmp_path / "images" / "0002.png").write_bytes(b"\x89PNG bytes" * 100)
    images = [
        ImageRecord("images/0001.jpg", "http://a/1.jpg", "http://a/", "Le café, ünïcode", "bing", 640, 480, 1200,
                    "a" * 64, "0123456789abcdef"),
        ImageRecord("images/0002.png", "http://b/2.png", None, '=HYPERLINK("http://evil")', "google", 32, 32, 1000,
                    "b" * 64, "fedcba9876543210"),
    ]
    return DownloadResult(want=3, images=images, failures=[Failure("http://c/3.jpg", "HTTP 404")], shortfall=1,
                          shortfall_reason="found 2 of 3 images: 3 candidates, 1 broken links", candidates_seen=3)


def _rows(archive: zipfile.ZipFile, name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"))))


def test_one_result_keeps_todays_layout(tmp_path):
    result = _result(tmp_path)
    size = write_zip(result, tmp_path, tmp_path / "job.zip")
    assert size == (tmp_path / "job.zip").stat().st_size
    with zipfile.ZipFile(tmp_path / "job.zip") as archive:
        infos = {info.filename: info for info in archive.infolist()}
        assert list(infos) == ["images/0001.jpg", "images/0002.png", "metadata.jsonl", "manifest.csv",
                               "failures.csv", "ATTRIBUTION.txt"]
        assert infos["images/0001.jpg"].compress_type == zipfile.ZIP_STORED
        assert infos["images/0002.png"].compress_type == zipfile.ZIP_STORED
        assert archive.read("images/0002.png") == (tmp_path / "images" / "0002.png").read_bytes()
        manifest = _rows(archive, "manifest.csv")
        failures = _rows(archive, "failures.csv")
        meta = [json.loads(line) for line in archive.read("metadata.jsonl").decode().splitlines()]
    assert manifest[0] == ["file", "image_url", "page_url", "title", "engine", "width", "height", "bytes", "sha256",
                           "phash", "class", "split", "license", "license_version", "license_url", "creator",
                           "attribution"]
    assert manifest[1] == ["images/0001.jpg", "http://a/1.jpg", "http://a/", "Le café, ünïcode", "bing", "640", "480",
                           "1200", "a" * 64, "0123456789abcdef", "images", "", "", "", "", "", ""]
    assert manifest[2][3] == '\'=HYPERLINK("http://evil")'  # not a live formula in a spreadsheet
    assert failures == [["url", "reason", "class"], ["http://c/3.jpg", "HTTP 404", ""]]
    assert [row["file_name"] for row in meta] == ["images/0001.jpg", "images/0002.png"]
    assert meta[0]["title"] == "Le café, ünïcode" and meta[0]["label"] == "images" and meta[0]["license"] is None
    assert not (tmp_path / "job.zip.partial").exists()


def test_reports_next_to_the_images(tmp_path):
    write_reports(_result(tmp_path), tmp_path)
    assert (tmp_path / "manifest.csv").read_text(encoding="utf-8").count("\n") == 3
    assert (tmp_path / "failures.csv").read_text(encoding="utf-8").splitlines()[1] == "http://c/3.jpg,HTTP 404,"


def _image(folder: Path, label: str, number: int, size: int = 40, ext: str = "png") -> DatasetImage:
    """A real little image of its own colour, as the download stage would leave it."""
    path = folder / label / "images" / f"{number:04d}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = tuple(hashlib.sha256(f"{label}{number}".encode()).digest()[:3])
    Image.new("RGB", (size, size + number), colour).save(path, "JPEG" if ext == "jpg" else ext.upper())
    data = path.read_bytes()
    record = ImageRecord(f"images/{path.name}", f"http://img/{label}/{number}.{ext}", f"http://page/{label}",
                         f"{label} {number}", "openverse", size, size + number, len(data),
                         hashlib.sha256(data).hexdigest(), f"{number:016x}")
    return DatasetImage(path, label, label.replace("-", " "), record)


def _classes(tmp_path, counts: dict[str, int]) -> list[DatasetImage]:
    return [_image(tmp_path / "work", label, n) for label, count in counts.items() for n in range(1, count + 1)]


def test_three_classes_load_as_imagefolder_and_imagefolder_metadata(tmp_path):
    images = _classes(tmp_path, {"red-panda": 5, "cat": 4, "dog": 6})
    failures = [DatasetFailure("http://x/dup.jpg", "also found for “dog”", ("cat", "dog"))]
    write_dataset(Dataset(images, failures), tmp_path / "three.zip")
    root = imagefolder.extract(tmp_path / "three.zip", tmp_path / "out")

    classes, _ = imagefolder.find_classes(root)
    assert imagefolder.per_class(root) == {"cat": 4, "dog": 6, "red-panda": 5}
    rows = imagefolder.metadata(root)
    assert len(rows) == 15
    assert {row["file_name"].split("/")[0] for row in rows} == set(classes)
    assert all(row["file_name"].split("/")[0] == row["label"] for row in rows)
    assert rows[0]["query"] == "red panda" and rows[0]["engine"] == "openverse"
    with zipfile.ZipFile(tmp_path / "three.zip") as archive:
        assert _rows(archive, "failures.csv")[1] == ["http://x/dup.jpg", "also found for “dog”", "cat;dog"]
        assert {row[10] for row in _rows(archive, "manifest.csv")[1:]} == set(classes)


def test_an_empty_class_folder_is_what_imagefolder_refuses(tmp_path):
    """The reader applies torchvision's rule, so a dataset that leaves a class empty would be caught."""
    (tmp_path / "root" / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "root" / "cat" / "1.png")
    (tmp_path / "root" / "dog").mkdir()
    (tmp_path / "root" / "dog" / "1.gif").write_bytes(b"GIF89a")  # GIF is not among ImageFolder's extensions
    with pytest.raises(FileNotFoundError, match="dog"):
        imagefolder.make_dataset(tmp_path / "root")


@pytest.mark.parametrize(("total", "percents", "expected"), [
    (50, [80, 20], [40, 10]),
    (7, [80, 20], [6, 1]),
    (2, [80, 20], [1, 1]),
    (1, [80, 20], [1, 0]),
    (0, [80, 20], [0, 0]),
    (200, [80, 10, 10], [160, 20, 20]),
    (15, [80, 10, 10], [11, 2, 2]),  # 1.5 rounds half up
    (3, [80, 10, 10], [1, 1, 1]),
    (2, [80, 10, 10], [2, 0, 0]),
])
def test_split_counts(total, percents, expected):
    assert split_counts(total, percents) == expected


def _names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


@pytest.mark.parametrize(("split", "parts"), [("80/20", {"train": [8, 4], "val": [2, 1]}),
                                              ("80/10/10", {"train": [8, 3], "val": [1, 1], "test": [1, 1]})])
def test_splits_give_every_class_its_share_the_same_on_a_rerun(tmp_path, split, parts):
    images = _classes(tmp_path, {"cat": 10, "dog": 5})
    write_dataset(Dataset(images, split=split), tmp_path / "a.zip")
    write_dataset(Dataset(list(reversed(images)), split=split), tmp_path / "b.zip")  # another order, same images
    root = imagefolder.extract(tmp_path / "a.zip", tmp_path / "a")
    for part, (cats, dogs) in parts.items():
        assert imagefolder.per_class(root / part) == {"cat": cats, "dog": dogs}
        rows = imagefolder.metadata(root / part)
        assert len(rows) == cats + dogs and all(row["file_name"].startswith(row["label"] + "/") for row in rows)
    assert sorted(_names(tmp_path / "a.zip")) == sorted(_names(tmp_path / "b.zip"))
    assert {n.split("/")[0] for n in _names(tmp_path / "a.zip") if "/" in n} == set(parts)


def test_webdataset_shards_hold_key_pairs(tmp_path):
    images = _classes(tmp_path, {"cat": 5, "dog": 3})
    write_dataset(Dataset(images, layout="webdataset"), tmp_path / "wds.zip", shard_images=3)
    out = imagefolder.extract(tmp_path / "wds.zip", tmp_path / "out")
    shards = sorted(p.name for p in out.glob("shard-*.tar"))
    assert shards == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    keys = []
    for shard in shards:
        with tarfile.open(out / shard) as tar:
            names = tar.getnames()
            assert len(names) <= 6
            for image_name, json_name in zip(names[::2], names[1::2], strict=True):
                key, ext = image_name.split(".", 1)
                assert ext == "png" and json_name == f"{key}.json"
                sample = json.loads(tar.extractfile(json_name).read())
                assert sample["key"] == key and sample["file_name"] == image_name
                assert tar.extractfile(image_name).read() == next(
                    i.path.read_bytes() for i in images if i.record.sha256 == sample["sha256"])
                keys.append(key)
    assert keys == [f"cat-{n:04d}" for n in range(1, 6)] + [f"dog-{n:04d}" for n in range(1, 4)]
    with zipfile.ZipFile(tmp_path / "wds.zip") as archive:
        assert archive.getinfo("shard-000000.tar").compress_type == zipfile.ZIP_STORED
        assert _rows(archive, "manifest.csv")[1][0] == "shard-000000.tar/cat-0001.png"


def test_webdataset_shards_per_split_and_by_size(tmp_path):
    images = _classes(tmp_path, {"cat": 10})
    one = images[0].path.stat().st_size
    write_dataset(Dataset(images, layout="webdataset", split="80/20"), tmp_path / "wds.zip",
                  shard_bytes=3 * (one + 2048))
    names = _names(tmp_path / "wds.zip")
    train = [n for n in names if n.startswith("train/shard-")]
    assert [n for n in names if n.startswith("val/shard-")] == ["val/shard-000000.tar"]
    assert len(train) >= 3  # 8 images, at most about 3 a shard by size
    out = imagefolder.extract(tmp_path / "wds.zip", tmp_path / "out")
    members = 0
    for name in train:
        with tarfile.open(out / name) as tar:
            members += len(tar.getnames())
    assert members == 16


def test_attribution_lists_the_credit_lines_given_and_manifest_the_licences(tmp_path):
    cc0, by_sa, unknown = _classes(tmp_path, {"cat": 3})
    by_sa_licence = {"license": "by-sa", "license_version": "4.0", "creator": "Ann Example",
                     "license_url": "https://creativecommons.org/licenses/by-sa/4.0/"}
    images = [DatasetImage(cc0.path, "cat", "cat", cc0.record, {"license": "cc0", "license_version": "1.0"}),
              DatasetImage(by_sa.path, "cat", "cat", by_sa.record, by_sa_licence,
                           credit="“cat 2” by Ann Example is licensed\nunder CC BY-SA 4.0"),
              unknown]
    write_dataset(Dataset(images), tmp_path / "c.zip")
    with zipfile.ZipFile(tmp_path / "c.zip") as archive:
        text = archive.read("ATTRIBUTION.txt").decode()
        manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
        meta = [json.loads(line) for line in archive.read("metadata.jsonl").decode().splitlines()]
    assert [line for line in text.splitlines() if line.startswith("cat/")] == [
        "cat/0002.png: “cat 2” by Ann Example is licensed under CC BY-SA 4.0"]  # one line, whatever the source sent
    assert "no licence" in text  # the head says what an unlisted image means
    assert [row["license"] for row in manifest] == ["cc0", "by-sa", ""]
    assert manifest[1]["creator"] == "Ann Example" and meta[1]["license_url"] == by_sa_licence["license_url"]


def test_zip64_members_and_directory(tmp_path, monkeypatch):
    """The zip64 records are written when sizes and counts pass the limits (lowered here, as 4 GB of test data
    would take minutes): the zip still reads back whole."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1000)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 5)
    images = _classes(tmp_path, {"cat": 6, "dog": 2})
    write_dataset(Dataset(images), tmp_path / "big.zip")
    write_dataset(Dataset(images, layout="webdataset"), tmp_path / "wds.zip")
    monkeypatch.undo()
    for name in ("big.zip", "wds.zip"):
        data = (tmp_path / name).read_bytes()
        assert b"PK\x06\x06" in data  # the zip64 end of central directory record
        with zipfile.ZipFile(tmp_path / name) as archive:
            assert archive.testzip() is None
    with zipfile.ZipFile(tmp_path / "big.zip") as archive:
        assert archive.read("cat/0003.png") == images[2].path.read_bytes()


def test_memory_does_not_grow_with_the_zip(tmp_path):
    """60 images of 1 MB each go into the zip; the writer's own allocations stay a small fraction of that."""
    images = []
    for n in range(1, 61):
        image = _image(tmp_path / "work", "noise", n, size=8)
        image.path.write_bytes(hashlib.sha256(str(n).encode()).digest() * (1_000_000 // 32))
        images.append(image)
    for layout in ("imagefolder", "webdataset"):
        tracemalloc.start()
        try:
            write_dataset(Dataset(images, layout=layout), tmp_path / f"{layout}.zip")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (tmp_path / f"{layout}.zip").stat().st_size > 60_000_000
        assert peak < 2_000_000, (layout, peak)
