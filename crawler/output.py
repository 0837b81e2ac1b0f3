"""Keep what the download stage checked: one copy per picture across the whole crawl, its file, its metadata.

The download stage de-duplicates within one batch; ``CrawlDuplicates`` carries the same rule (exact by SHA-256,
near by perceptual hash, the larger copy kept) across batches and across a resume, with the hashes in a numpy
array so each check is one vectorised pass instead of a Python loop over every image kept.
Files: ``images/<name>.<ext>``, ``metadata/<name>.json`` and, per ``--widths`` W, ``images/<W>/<name>.<ext>``:
the image's ``srcset`` candidate closest above W (downloaded and checked like the others), else a copy resized to
W pixels wide (one already narrower is copied as it is).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from downloader import DownloadResult, Failure, ImageRecord, write_reports
from downloader.candidates import ListedURL
from downloader.duplicates import Copy, Duplicates

from .state import CrawlState, PendingImage, SavedImage

logger = logging.getLogger(__name__)

IMAGES_DIR = "images"
# download(candidates, folder): the download stage on a few candidates, into folder (the coordinator's seam)
Download = Callable[[list[ListedURL], Path], DownloadResult]
METADATA_DIR = "metadata"
METADATA_VERSION = 1


class CrawlDuplicates(Duplicates):
    """Duplicates with an index of the kept perceptual hashes, for crawls of many thousand images."""

    def __init__(self, near_distance: int) -> None:
        super().__init__(near_distance)
        self._ranks = np.zeros(1024, dtype=np.int64)
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._dead = np.zeros(1024, dtype=bool)
        self._size = 0

    def nearest(self, phash: int) -> tuple[Copy | None, int]:
        size = self._size
        distances = np.bitwise_count(self._hashes[:size] ^ np.uint64(phash)).astype(np.int64)
        distances[self._dead[:size]] = 65
        while size:
            best = int(np.argmin(distances))
            if distances[best] >= 65:
                break
            kept = self._kept.get(int(self._ranks[best]))
            if kept is not None:
                return kept, int(distances[best])
            self._dead[best] = True  # a copy that gave way to a larger one since it was indexed
            distances[best] = 65
        return None, 65

    def _keep(self, copy: Copy) -> None:
        super()._keep(copy)
        if self._size == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._ranks = np.concatenate([self._ranks, np.zeros_like(self._ranks)])
            self._dead = np.concatenate([self._dead, np.zeros_like(self._dead)])
        self._hashes[self._size] = np.uint64(copy.phash)
        self._ranks[self._size] = copy.rank
        self._size += 1


def metadata(image: SavedImage) -> dict:
    """The JSON written next to each image (versioned, so attributes can be added later)."""
    info = image.info
    return {"version": METADATA_VERSION, "file": image.file, "image_url": info.get("image_url"),
            "page_url": info.get("page_url"), "page_title": info.get("page_title"), "alt": info.get("alt"),
            "title": info.get("title"), "caption": info.get("caption"), "tags": info.get("tags", []),
            "width": image.width, "height": image.height, "bytes": image.bytes, "sha256": image.sha256,
            "phash": image.phash, "discovered_at": info.get("discovered_at"), "depth": info.get("depth")}


class Keeper:
    """Move the images of each batch into place, keeping one copy per picture; runs in the download thread."""

    def __init__(self, out_dir: Path, state: CrawlState, near_distance: int, widths: tuple[int, ...],
                 download: Download | None = None) -> None:
        self.out_dir, self.state, self.widths, self.download = Path(out_dir), state, widths, download
        (self.out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        (self.out_dir / METADATA_DIR).mkdir(exist_ok=True)
        self.duplicates = CrawlDuplicates(near_distance)
        for seq, url, sha256, phash, area in state.kept_hashes():  # a resumed crawl knows what it kept
            self.duplicates.add(Copy(seq, url, sha256, int(phash, 16), area))

    def take(self, batch_dir: Path, result: DownloadResult, batch: list[PendingImage]) -> int:
        """Keep the batch's checked images, record everything in one transaction; return how many were kept."""
        by_url = {image.fetch_url: image for image in batch}
        kept: list[SavedImage] = []
        refused: list[tuple[str, str, str, str]] = []
        for record in result.images:
            pending = by_url.pop(record.image_url)
            copy = Copy(pending.seq, pending.url, record.sha256, int(record.phash, 16), record.width * record.height)
            dropped = self.duplicates.add(copy)
            if dropped is not None and dropped.copy.rank == pending.seq:
                refused.append((pending.url, "duplicate", "duplicate", dropped.reason))
                continue
            if dropped is not None:  # an earlier, smaller copy gives way to this one
                loser = next((k for k in kept if k.seq == dropped.copy.rank), None) \
                    or self.state.saved_image(dropped.copy.rank)
                if loser is not None:
                    self._remove(loser)
                    refused.append((loser.url, "duplicate", "duplicate", dropped.reason))
                    kept = [k for k in kept if k.seq != loser.seq]
            kept.append(self._place(batch_dir, record, pending))
        for failure in result.failures:
            lost = by_url.pop(failure.url, None)
            if lost is not None and failure.kind != "unfinished":  # unfinished ones stay pending for a resume
                refused.append((lost.url, "failed", failure.kind, failure.reason))
        if self.widths:
            self._add_widths(batch_dir / "widths", kept)
        self.state.images_done(kept, refused)
        return len(kept)

    def _place(self, batch_dir: Path, record: ImageRecord, pending: PendingImage) -> SavedImage:
        ext = record.file.rsplit(".", 1)[1]
        name = f"{pending.seq:08d}"
        file = f"{IMAGES_DIR}/{name}.{ext}"
        os.replace(batch_dir / record.file, self.out_dir / file)
        info = {**pending.info, "image_url": pending.fetch_url}
        image = SavedImage(pending.url, pending.seq, file, record.width, record.height, record.bytes, record.sha256,
                           record.phash, info)
        (self.out_dir / METADATA_DIR / f"{name}.json").write_text(json.dumps(metadata(image), ensure_ascii=False,
                                                                            indent=1), encoding="utf-8")
        return image

    def _add_widths(self, folder: Path, images: list[SavedImage]) -> None:
        """Write each image's copy per --widths: its srcset candidate closest above the width, else resized."""
        for width in self.widths:
            target = self.out_dir / IMAGES_DIR / str(width)
            target.mkdir(exist_ok=True)
            variants: dict[str, SavedImage] = {}
            for image in images:
                above = sorted((w, u) for w, u in image.info.get("widths", [])
                               if w >= width and u != image.info.get("image_url"))
                if above and self.download is not None:
                    variants.setdefault(above[0][1], image)
            fetched: set[int] = set()
            if variants and self.download is not None:
                result = self.download([ListedURL(url, image.info.get("page_url")) for url, image in variants.items()],
                                       folder)
                for record in result.images:
                    image = variants[record.image_url]
                    stem = Path(image.file).stem
                    os.replace(folder / record.file, target / f"{stem}.{record.file.rsplit('.', 1)[1]}")
                    fetched.add(image.seq)
            for image in images:
                if image.seq not in fetched:
                    self._resized(self.out_dir / image.file, width)

    def _resized(self, source: Path, width: int) -> None:
        folder = self.out_dir / IMAGES_DIR / str(width)
        folder.mkdir(exist_ok=True)
        target = folder / source.name
        with Image.open(source) as image:
            if image.width <= width:
                shutil.copyfile(source, target)
                return
            height = max(1, round(image.height * width / image.width))
            resized = image.convert("RGB") if image.format == "JPEG" else image.copy()
            resized = resized.resize((width, height), Image.Resampling.LANCZOS)
            resized.save(target, image.format)

    def _remove(self, image: SavedImage) -> None:
        name = Path(image.file).name
        (self.out_dir / image.file).unlink(missing_ok=True)
        (self.out_dir / METADATA_DIR / f"{Path(name).stem}.json").unlink(missing_ok=True)
        for width in self.widths:
            for copy in (self.out_dir / IMAGES_DIR / str(width)).glob(f"{Path(name).stem}.*"):
                copy.unlink(missing_ok=True)


def write_outputs(state: CrawlState, out_dir: Path) -> DownloadResult:
    """Write manifest.csv and failures.csv from the state; return the result they describe."""
    result = DownloadResult(want=0)
    for image in state.saved():
        info = image.info
        result.images.append(ImageRecord(file=image.file, image_url=info.get("image_url") or image.url,
                                         page_url=info.get("page_url"), title=info.get("page_title"), source="crawl",
                                         width=image.width, height=image.height, bytes=image.bytes,
                                         sha256=image.sha256, phash=image.phash))
    result.failures = [Failure(url, reason, kind) for url, reason, kind in state.failures()]
    result.want = len(result.images)
    write_reports(result, out_dir)
    return result


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
