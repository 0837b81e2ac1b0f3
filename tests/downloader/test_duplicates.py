"""The duplicate rules on their own: of two copies the larger is kept, then the better-ranked."""

from __future__ import annotations

import random

import pytest

from downloader.duplicates import Copy, Duplicates

A = 0x0F0F_0F0F_0F0F_0F0F
FAR = ~A & (2**64 - 1)  # differs from A in every bit


def copy(rank: int, sha: str = "s", phash: int = A, area: int = 100) -> Copy:
    return Copy(rank=rank, url=f"u{rank}", sha256=f"{sha}{rank}" if sha == "s" else sha, phash=phash, area=area)


def test_different_images_are_all_kept():
    dups = Duplicates(near_distance=6)
    assert dups.add(copy(0)) is None
    assert dups.add(copy(1, phash=FAR)) is None
    assert dups.ranks == [0, 1] and len(dups) == 2


def test_an_exact_copy_keeps_the_better_ranked_whatever_arrives_first():
    dups = Duplicates(near_distance=6)
    assert dups.add(copy(5, sha="same")) is None
    dropped = dups.add(copy(2, sha="same"))
    assert dropped is not None and dropped.copy.rank == 5
    assert dropped.reason == "exact duplicate of u2"
    assert dups.ranks == [2]


def test_a_near_copy_keeps_the_larger():
    dups = Duplicates(near_distance=6)
    dups.add(copy(0, phash=A, area=100))
    dropped = dups.add(copy(1, phash=A ^ 0b111, area=400))  # 3 bits apart and larger: replaces the first
    assert dropped is not None and dropped.copy.rank == 0
    assert dropped.reason == "near duplicate (distance 3) of the larger u1"
    assert dups.ranks == [1]
    smaller = dups.add(copy(2, phash=A, area=50))
    assert smaller is not None and smaller.copy.rank == 2 and smaller.reason.endswith("of the larger u1")


def test_equal_near_copies_keep_the_better_ranked():
    dups = Duplicates(near_distance=6)
    dups.add(copy(3, phash=A))
    dropped = dups.add(copy(1, phash=A ^ 1))
    assert dropped is not None and dropped.copy.rank == 3
    assert dropped.reason == "near duplicate (distance 1) of the better-ranked u1"
    assert 1 in dups and 3 not in dups


def test_the_distance_is_a_bound_inclusive():
    dups = Duplicates(near_distance=2)
    dups.add(copy(0, phash=A))
    assert dups.add(copy(1, phash=A ^ 0b11)) is not None  # 2 bits: a duplicate
    assert dups.add(copy(2, phash=A ^ 0b1110000)) is None  # 3 bits from A: another image
    assert dups.nearest(A) == (copy(0, phash=A), 0)


def test_a_replaced_copy_frees_its_hash():
    dups = Duplicates(near_distance=0)
    dups.add(copy(0, sha="x", area=10))
    dups.add(copy(1, sha="y", area=20))  # same phash, larger: replaces rank 0
    assert dups.add(copy(2, sha="x", phash=FAR)) is None  # sha "x" belongs to nobody any more
    assert dups.ranks == [1, 2]


def _scan(kept: list[Copy], phash: int, near_distance: int) -> tuple[int | None, int]:
    """The rule without the index: the closest kept copy within the distance, the earliest kept of equal ones."""
    best, best_distance = None, 65
    for kept_copy in kept:
        distance = (kept_copy.phash ^ phash).bit_count()
        if distance < best_distance:
            best, best_distance = kept_copy.rank, distance
    return (best, best_distance) if best_distance <= near_distance else (None, 65)


@pytest.mark.parametrize("near_distance", [0, 1, 6, 10, 20])
def test_the_index_finds_what_comparing_with_every_copy_finds(near_distance):
    rng = random.Random(near_distance)
    dups = Duplicates(near_distance)
    bases = [rng.getrandbits(64) for _ in range(40)]
    for rank in range(600):  # copies of a few pictures, each a few bits off, and unrelated ones
        phash = rng.choice(bases) if rng.random() < 0.7 else rng.getrandbits(64)
        for _ in range(rng.randint(0, near_distance + 3)):
            phash ^= 1 << rng.randrange(64)
        kept_before = list(dups._kept.values())
        near, distance = dups.nearest(phash)
        assert ((near.rank if near else None), distance) == _scan(kept_before, phash, near_distance)
        dups.add(copy(rank, phash=phash, area=rng.randint(1, 4) * 100))
    assert 0 < len(dups) < 600
