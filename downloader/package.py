"""Write the delivered images with their manifest and failure list, as files and as a zip."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

from .records import DownloadResult

MANIFEST_COLUMNS = ("file", "image_url", "page_url", "title", "engine", "width", "height", "bytes", "sha256", "phash")
FAILURE_COLUMNS = ("url", "reason")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A title such as "=HYPERLINK(...)" would run as a formula when the CSV is opened in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(header: tuple[str, ...], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def manifest_csv(result: DownloadResult) -> str:
    """Return manifest.csv: one row per delivered image, with where it came from and its hashes."""
    return _csv(
        MANIFEST_COLUMNS,
        (
            (r.file, r.image_url, r.page_url, r.title, r.source, r.width, r.height, r.bytes, r.sha256, r.phash)
            for r in result.images
        ),
    )


def failures_csv(result: DownloadResult) -> str:
    """Return failures.csv: one row per refused URL and the reason."""
    return _csv(FAILURE_COLUMNS, ((f.url, f.reason) for f in result.failures))


def write_reports(result: DownloadResult, out_dir: Path) -> None:
    """Write manifest.csv and failures.csv next to the images folder."""
    out_dir = Path(out_dir)
    (out_dir / "manifest.csv").write_text(manifest_csv(result), encoding="utf-8")
    (out_dir / "failures.csv").write_text(failures_csv(result), encoding="utf-8")


def write_zip(result: DownloadResult, out_dir: Path, zip_path: Path) -> int:
    """Write images (stored, not recompressed), manifest.csv and failures.csv to ``zip_path``; return its size."""
    out_dir, zip_path = Path(out_dir), Path(zip_path)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for record in result.images:
            # Images are already compressed; deflating them again costs CPU and saves nothing.
            archive.write(out_dir / record.file, record.file, compress_type=zipfile.ZIP_STORED)
        archive.writestr("manifest.csv", manifest_csv(result))
        archive.writestr("failures.csv", failures_csv(result))
    os.replace(partial, zip_path)
    return zip_path.stat().st_size
