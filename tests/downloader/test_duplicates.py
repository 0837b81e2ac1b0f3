"""The duplicate rules on their own: of two copies the larger is kept, then the better-ranked."""

from __future__ import annotations

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
