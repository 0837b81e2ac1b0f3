"""What goes into a dataset: its images by class, their split, their archive names and metadata rows.

Pure data and arithmetic; ``package`` and ``shards`` write it. An image's archive name is
``[<split>/]<class>/<number>.<ext>``: class folders for torchvision's ``ImageFolder`` and Hugging Face's
``imagefolder``, split folders (``train``, ``val``, ``test``) that both read as one dataset each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .records import DownloadResult, ImageRecord

LAYOUTS = ("imagefolder", "webdataset")
# Split name -> (part, percent) in order; the first part takes what rounding leaves (see split_counts).
SPLITS: dict[str, tuple[tuple[str, int], ...]] = {
    "80/20": (("train", 80), ("val", 20)),
    "80/10/10": (("train", 80), ("val", 10), ("test", 10)),
}
LICENCE_FIELDS = ("license", "license_version", "license_url", "creator", "attribution")


@dataclass(frozen=True)
class DatasetImage:
    """One delivered image of one class: the file on disk, its download record and its licence fields."""

    path: Path
    label: str  # the class folder name
    query: str
    record: ImageRecord
    licence: Mapping[str, str | None] = field(default_factory=dict)
    credit: str | None = None  # the line ATTRIBUTION.txt gives, when the licence asks for credit


@dataclass(frozen=True)
class DatasetFailure:
    """A refused URL, why, and the class (or, for an image found for two classes, the classes) it was found for."""

    url: str
    reason: str
    classes: tuple[str, ...] = ()


@dataclass
class Dataset:
    """Everything one zip holds; ``images`` in class order, then rank order within a class."""

    images: list[DatasetImage]
    failures: list[DatasetFailure] = field(default_factory=list)
    split: str | None = None  # a key of SPLITS, or None for no split folders
    layout: str = "imagefolder"

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")

    @classmethod
    def from_result(cls, result: DownloadResult, out_dir: Path, label: str = "images", query: str = "") -> Dataset:
        """One class from one download stage's result (its files under ``out_dir``)."""
        base = Path(out_dir)
        return cls(
            images=[DatasetImage(base / r.file, label, query, r) for r in result.images],
            failures=[DatasetFailure(f.url, f.reason, (label,) if query else ()) for f in result.failures],
        )

    def parts(self) -> list[str | None]:
        """The split part of each image, aligned with ``images`` (all None without a split)."""
        if self.split is None:
            return [None] * len(self.images)
        shares = SPLITS[self.split]
        by_class: dict[str, list[int]] = defaultdict(list)
        for index, image in enumerate(self.images):
            by_class[image.label].append(index)
        parts: list[str | None] = [None] * len(self.images)
        for indexes in by_class.values():
            # Ordered by content hash, so the same images always fall into the same parts, whatever their rank.
            ordered = sorted(indexes, key=lambda i: (self.images[i].record.sha256, i))
            start = 0
            for (part, _), count in zip(shares, split_counts(len(ordered), [p for _, p in shares]), strict=True):
                for i in ordered[start : start + count]:
                    parts[i] = part
                start += count
        return parts

    def entries(self) -> Iterator[Entry]:
        """Each image with its part and archive name, in ``images`` order."""
        for image, part in zip(self.images, self.parts(), strict=True):
            name = image.record.file.rpartition("/")[2]  # its PurePosixPath name, without building one per image
            yield Entry(image, part, f"{part}/{image.label}/{name}" if part else f"{image.label}/{name}")

    @property
    def labels(self) -> list[str]:
        """The class folder names, sorted as torchvision sorts them into class indexes."""
        return sorted({image.label for image in self.images})


@dataclass(frozen=True)
class Entry:
    image: DatasetImage
    part: str | None
    name: str  # the path inside the archive

    @property
    def key(self) -> str:
        """The WebDataset sample key: class and number, no dot (a dot would start the extension)."""
        return f"{self.image.label}-{PurePosixPath(self.name).stem}"

    @property
    def ext(self) -> str:
        return PurePosixPath(self.name).suffix.lstrip(".")

    def metadata(self, file_name: str) -> dict:
        """The metadata.jsonl row: ``file_name`` (relative to the metadata file), label, provenance, licence."""
        r = self.image.record
        row: dict = {
            "file_name": file_name,
            "label": self.image.label,
            "query": self.image.query,
            "engine": r.source,
            "image_url": r.image_url,
            "page_url": r.page_url,
            "title": r.title,
            "width": r.width,
            "height": r.height,
            "bytes": r.bytes,
            "sha256": r.sha256,
            "phash": r.phash,
        }
        row.update({name: self.image.licence.get(name) for name in LICENCE_FIELDS})
        return row


def split_counts(total: int, percents: list[int]) -> list[int]:
    """Images per part for one class: every part after the first gets ``total * percent / 100`` rounded half up,
    and at least one when the class has at least one image per part; the first part (train) takes the rest."""
    if total < 0:
        raise ValueError("total must not be negative")
    rest = [(total * percent * 2 + 100) // 200 for percent in percents[1:]]
    if total >= len(percents):
        rest = [max(1, count) for count in rest]
    return [total - sum(rest), *rest]

