"""Find the images delivered for two classes at once (exact or near duplicates): their label is ambiguous.

Pure bookkeeping over the download stage's records, with the stage's own duplicate rules (``Duplicates``: the
same SHA-256, or perceptual hashes within ``near_distance`` bits). Both copies are dropped, not just one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .duplicates import Copy, Duplicates
from .records import ImageRecord


@dataclass(frozen=True)
class Clash:
    """Image ``index`` of class ``first`` and image ``other_index`` of class ``second`` show the same picture."""

    first: int
    index: int
    second: int
    other_index: int
    distance: int  # bits between the perceptual hashes
    exact: bool  # the same SHA-256


def _copy(index: int, record: ImageRecord) -> Copy:
    return Copy(index, record.image_url, record.sha256, int(record.phash, 16), record.width * record.height)


def find_clashes(classes: Sequence[Sequence[ImageRecord]], near_distance: int) -> list[Clash]:
    """Every pair of images of two different classes that are exact or near duplicates, in class order."""
    seen: list[Duplicates] = []
    clashes = []
    for second, records in enumerate(classes):
        mine = Duplicates(near_distance)
        for index, record in enumerate(records):
            copy = _copy(index, record)
            for first, earlier in enumerate(seen):
                near, distance = earlier.nearest(copy.phash)
                if near is not None and distance <= near_distance:
                    clashes.append(Clash(first, near.rank, second, index, distance, near.sha256 == copy.sha256))
            mine.add(copy)
        seen.append(mine)
    return clashes
