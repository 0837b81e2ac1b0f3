"""Decide which of two copies of an image to keep: pure bookkeeping, no files, no threads.

An exact duplicate has the same SHA-256; a near duplicate a perceptual hash within ``near_distance`` bits. Of two
copies the larger (in pixels) is kept, of equal ones the better-ranked (lower rank), so the outcome never depends
on which download finished first.
"""

from __future__ import annotations

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
    """The images kept so far, one per picture; ``add`` says which copy lost, if any."""

    def __init__(self, near_distance: int) -> None:
        self.near_distance = near_distance
        self._kept: dict[int, Copy] = {}  # rank -> copy
        self._by_sha: dict[str, int] = {}  # sha256 -> rank

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
        """Return the kept copy whose perceptual hash is closest to ``phash``, and the distance in bits."""
        best, best_distance = None, 65
        for kept in self._kept.values():
            distance = (kept.phash ^ phash).bit_count()
            if distance < best_distance:
                best, best_distance = kept, distance
        return best, best_distance

    def _settle(self, new: Copy, old: Copy, words: str) -> Dropped:
        keep, drop = (new, old) if (new.area, -new.rank) > (old.area, -old.rank) else (old, new)
        if keep is new:
            del self._kept[old.rank]
            del self._by_sha[old.sha256]
            self._keep(new)
        if keep.area == drop.area:
            words = words.replace("the larger", "the better-ranked")
        return Dropped(drop, f"{words} {keep.url}")

    def _keep(self, copy: Copy) -> None:
        self._kept[copy.rank] = copy
        self._by_sha[copy.sha256] = copy.rank
