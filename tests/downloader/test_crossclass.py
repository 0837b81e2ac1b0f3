"""Images of two classes that show the same picture (same bytes, or perceptual hashes within the distance)."""

from __future__ import annotations

from downloader import ImageRecord
from downloader.crossclass import Clash, find_clashes


def _record(url: str, sha: str, phash: int) -> ImageRecord:
    return ImageRecord("images/x.jpg", url, None, None, "bing", 100, 100, 1000, sha * 64, f"{phash:016x}")


def test_exact_and_near_duplicates_across_classes_but_not_within_one():
    cat = [_record("c0", "a", 0x0F0F), _record("c1", "b", 0xFFFF_0000_0000_0000), _record("c2", "c", 0x1234_5678)]
    dog = [_record("d0", "d", 0x0F0F ^ 0b111), _record("d1", "b", 0xFFFF_0000_0000_0000),
           _record("d2", "e", 0x00FF_FF00_FF00_FF00)]
    bird = [_record("b0", "f", 0x1234_5678 ^ (1 << 40))]
    clashes = find_clashes([cat, dog, bird], near_distance=6)
    assert clashes == [Clash(0, 0, 1, 0, 3, False), Clash(0, 1, 1, 1, 0, True), Clash(0, 2, 2, 0, 1, False)]


def test_beyond_the_distance_is_no_clash():
    cat, dog = [_record("c0", "a", 0)], [_record("d0", "b", 0b1111111)]  # 7 bits apart
    assert find_clashes([cat, dog], near_distance=6) == []
    assert find_clashes([cat, dog], near_distance=7) == [Clash(0, 0, 1, 0, 7, False)]
