"""Decide which of two copies of an image to keep: pure bookkeeping, no files, no threads.

An exact duplicate has the same SHA-256; a near duplicate a perceptual hash within ``near_distance`` bits. Of two
copies the larger (in pixels) is kept, of equal ones the better-ranked (lower rank), so the outcome never depends
on which download finished first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Copy:
    """One checked image: its search rank, URL, hashes and pixel area."""

    rank: int
    url: str
    sha256: str
    phash: int
    area: int


@dataclass(frozen=True)
class Dropped:
    """A copy that is not kept, and why in plain words (it names the copy that is)."""

    copy: Copy
    reason: str


class Duplicates:
    """The images kept so far, one per picture; ``add`` says which copy lost, if any.

    Near copies are found through an index, not by comparing with every kept copy (which made a 2,000-image stage
    spend most of its main thread here): the 64 bits are cut into ``near_distance + 1`` blocks, and two hashes
    at most ``near_distance`` bits apart are equal in at least one whole block, so only the copies sharing a block
    with the new hash are compared.
    """

    def __init__(self, near_distance: int) -> None:
        self.near_distance = near_distance
        self._kept: dict[int, Copy] = {}  # rank -> copy, in the order they were kept
        self._by_sha: dict[str, int] = {}  # sha256 -> rank
        self._order: dict[int, int] = {}  # rank -> when it was kept (ties go to the earliest, as a scan would)
        self._count = 0
        self._blocks = _blocks(near_distance)
        self._index: list[dict[int, set[int]]] = [{} for _ in self._blocks or ()]  # block value -> ranks

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, rank: object) -> bool:
        return rank in self._kept

    @property
    def ranks(self) -> list[int]:
        """The ranks of the copies kept, best first."""
        return sorted(self._kept)

    def add(self, new: Copy) -> Dropped | None:
        """Keep ``new`` unless it duplicates a kept copy; return the copy dropped (``new`` or the old one), or None."""
        twin = self._by_sha.get(new.sha256)
        if twin is not None:
            return self._settle(new, self._kept[twin], "exact duplicate of")
        near, distance = self.nearest(new.phash)
        if near is not None and distance <= self.near_distance:
            return self._settle(new, near, f"near duplicate (distance {distance}) of the larger")
        self._keep(new)
        return None

    def nearest(self, phash: int) -> tuple[Copy | None, int]:
        """Return the kept copy closest to ``phash`` if it is within ``near_distance`` bits (the earliest kept of
        equally close ones) and the distance; else ``(None, 65)``."""
        if self._blocks is None:
            candidates: Iterable[int] = self._kept
        else:
            found: set[int] = set()
            for (shift, mask), index in zip(self._blocks, self._index, strict=True):
                found.update(index.get((phash >> shift) & mask, ()))
            candidates = found
        best, best_key = None, (65, 0)
        for rank in candidates:
            kept = self._kept[rank]
            key = ((kept.phash ^ phash).bit_count(), self._order[rank])
            if key < best_key:
                best, best_key = kept, key
        if best is None or best_key[0] > self.near_distance:
            return None, 65
        return best, best_key[0]

    def _settle(self, new: Copy, old: Copy, words: str) -> Dropped:
        keep, drop = (new, old) if (new.area, -new.rank) > (old.area, -old.rank) else (old, new)
        if keep is new:
            self._forget(old)
            self._keep(new)
        if keep.area == drop.area:
            words = words.replace("the larger", "the better-ranked")
        return Dropped(drop, f"{words} {keep.url}")

    def _keep(self, copy: Copy) -> None:
        self._kept[copy.rank] = copy
        self._by_sha[copy.sha256] = copy.rank
        self._order[copy.rank] = self._count
        self._count += 1
        for (shift, mask), index in zip(self._blocks or (), self._index, strict=True):
            index.setdefault((copy.phash >> shift) & mask, set()).add(copy.rank)

    def _forget(self, copy: Copy) -> None:
        del self._kept[copy.rank]
        del self._by_sha[copy.sha256]
        del self._order[copy.rank]
        for (shift, mask), index in zip(self._blocks or (), self._index, strict=True):
            ranks = index[(copy.phash >> shift) & mask]
            ranks.discard(copy.rank)
            if not ranks:
                del index[(copy.phash >> shift) & mask]


def _blocks(near_distance: int) -> list[tuple[int, int]] | None:
    """(shift, mask) of ``near_distance + 1`` blocks covering the 64 bits; None when they would be too small to
    narrow anything down (then every kept copy is compared)."""
    count = near_distance + 1
    if count > 16:
        return None
    blocks, shift = [], 0
    for number in range(count):
        width = 64 // count + (1 if number < 64 % count else 0)
        blocks.append((shift, (1 << width) - 1))
        shift += width
    return blocks
