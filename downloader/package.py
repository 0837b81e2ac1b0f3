"""Write a dataset as one zip: class folders (ImageFolder and imagefolder at once) or WebDataset shards, plus
metadata.jsonl, manifest.csv, failures.csv and ATTRIBUTION.txt.

Everything is streamed into the zip: images are copied in chunks and stored as they are (ZIP_STORED), shards are
tar streams written straight into their zip member, the text files are written row by row. Memory does not grow
with the zip; zip64 is on, so zips and members over 4 GB work.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .dataset import LICENCE_FIELDS, Dataset, DatasetFailure, Entry
from .records import DownloadResult
from .shards import SHARD_BYTES, SHARD_IMAGES, plan_shards, write_shard

MANIFEST_COLUMNS = (
    "file", "image_url", "page_url", "title", "engine", "width", "height", "bytes", "sha256", "phash", "class", "split",
    *LICENCE_FIELDS,
)
FAILURE_COLUMNS = ("url", "reason", "class")
_ATTRIBUTION_HEAD = (
    "Credit lines for the images whose licence asks for one (one line per image: file, then the credit).\n"
    "Images not listed either need no credit (CC0, public domain) or came from web search with no licence\n"
    "information: check those before you publish them.\n\n"
)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A title such as "=HYPERLINK(...)" would run as a formula when the CSV is opened in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _write_csv(out: IO[str], header: tuple[str, ...], rows: Iterable[Iterable[object]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])


def _manifest_rows(pairs: Iterable[tuple[str, Entry]]) -> Iterator[tuple]:
    for file, entry in pairs:
        r, image = entry.image.record, entry.image
        yield (file, r.image_url, r.page_url, r.title, r.source, r.width, r.height, r.bytes, r.sha256, r.phash,
               image.label, entry.part, *(image.licence.get(name) for name in LICENCE_FIELDS))


def _failure_rows(failures: Iterable[DatasetFailure]) -> Iterator[tuple]:
    for failure in failures:
        yield failure.url, failure.reason, ";".join(failure.classes)


def _csv_text(header: tuple[str, ...], rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    _write_csv(out, header, rows)
    return out.getvalue()


def manifest_csv(result: DownloadResult) -> str:
    """Return manifest.csv for one download stage's result: one row per image, where it came from, its hashes."""
    return _manifest_text(Dataset.from_result(result, Path(".")))


def failures_csv(result: DownloadResult) -> str:
    """Return failures.csv for one download stage's result: one row per refused URL and the reason."""
    return _failures_text(Dataset.from_result(result, Path(".")))


def _manifest_text(dataset: Dataset) -> str:
    return _csv_text(MANIFEST_COLUMNS, _manifest_rows((e.image.record.file, e) for e in dataset.entries()))


def _failures_text(dataset: Dataset) -> str:
    return _csv_text(FAILURE_COLUMNS, _failure_rows(dataset.failures))


def write_reports(result: DownloadResult, out_dir: Path) -> None:
    """Write manifest.csv and failures.csv next to the images folder."""
    out_dir = Path(out_dir)
    dataset = Dataset.from_result(result, Path("."))  # built once for both files (it was about half their time)
    (out_dir / "manifest.csv").write_text(_manifest_text(dataset), encoding="utf-8")
    (out_dir / "failures.csv").write_text(_failures_text(dataset), encoding="utf-8")


class _ZipWriter:
    """Members written one after another, each streamed; text members deflated, images and shards stored."""

    def __init__(self, archive: zipfile.ZipFile, root: str = "") -> None:
        self.archive = archive
        self.prefix = f"{root.strip('/')}/" if root.strip("/") else ""  # every member inside this one folder

    @contextmanager
    def binary(self, name: str, compress: int = zipfile.ZIP_STORED) -> Iterator[IO[bytes]]:
        info = zipfile.ZipInfo(self.prefix + name, date_time=time.localtime()[:6])
        info.compress_type = compress
        info.external_attr = 0o644 << 16
        # force_zip64: the size is not known in advance and may pass 4 GB.
        with self.archive.open(info, "w", force_zip64=True) as member:
            yield member

    @contextmanager
    def text(self, name: str) -> Iterator[IO[str]]:
        with self.binary(name, zipfile.ZIP_DEFLATED) as member:
            wrapper = io.TextIOWrapper(member, encoding="utf-8", newline="")
            try:
                yield wrapper
            finally:
                wrapper.flush()
                wrapper.detach()  # the zip member is closed by its own context, not by the wrapper

    def file(self, path: Path, name: str) -> None:
        # ZipFile.write copies in chunks, stores (images are already compressed) and picks zip64 from the size.
        self.archive.write(path, self.prefix + name, compress_type=zipfile.ZIP_STORED)


def _write_imagefolder(out: _ZipWriter, dataset: Dataset) -> list[tuple[str, Entry]]:
    entries = list(dataset.entries())
    for entry in entries:
        out.file(entry.image.path, entry.name)
    for part in dict.fromkeys(entry.part for entry in entries):
        # One metadata.jsonl per split folder (or at the root): file_name is relative to the metadata file.
        prefix = f"{part}/" if part else ""
        with out.text(f"{prefix}metadata.jsonl") as meta:
            for entry in entries:
                if entry.part == part:
                    row = entry.metadata(entry.name[len(prefix):])
                    meta.write(json.dumps(row, ensure_ascii=False) + "\n")
    return [(entry.name, entry) for entry in entries]


def _write_webdataset(out: _ZipWriter, dataset: Dataset, shard_images: int,
                      shard_bytes: int) -> list[tuple[str, Entry]]:
    files = []
    for shard, batch in plan_shards(dataset.entries(), shard_images, shard_bytes):
        with out.binary(shard) as member:
            write_shard(member, batch)
        files += [(f"{shard}/{entry.key}.{entry.ext}", entry) for entry in batch]
    return files


def write_dataset(dataset: Dataset, zip_path: Path, *, shard_images: int = SHARD_IMAGES,
                  shard_bytes: int = SHARD_BYTES, root: str = "") -> int:
    """Write ``dataset`` to ``zip_path`` (through a .partial file, so a half-written zip is never delivered), every
    member inside the folder ``root`` when given; return the zip's size in bytes."""
    zip_path = Path(zip_path)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        out = _ZipWriter(archive, root)
        if dataset.layout == "webdataset":
            files = _write_webdataset(out, dataset, shard_images, shard_bytes)
        else:
            files = _write_imagefolder(out, dataset)
        with out.text("manifest.csv") as manifest:
            _write_csv(manifest, MANIFEST_COLUMNS, _manifest_rows(files))
        with out.text("failures.csv") as failures:
            _write_csv(failures, FAILURE_COLUMNS, _failure_rows(dataset.failures))
        with out.text("ATTRIBUTION.txt") as attribution:
            attribution.write(_ATTRIBUTION_HEAD)
            for file, entry in files:
                if entry.image.credit:
                    attribution.write(f"{file}: {' '.join(entry.image.credit.split())}\n")
    os.replace(partial, zip_path)
    return zip_path.stat().st_size


def write_zip(result: DownloadResult, out_dir: Path, zip_path: Path) -> int:
    """Write one download stage's images (``images/0001.jpg`` …) and reports to ``zip_path``; return its size."""
    return write_dataset(Dataset.from_result(result, out_dir), zip_path)
