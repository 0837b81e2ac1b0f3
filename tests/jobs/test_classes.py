"""Class folder names, distinct queries, and the result per class written to the note and read back."""

from __future__ import annotations

import pytest

from jobs.classes import ClassResult, class_folders, distinct_queries, job_queries, job_results, results_note, slug


@pytest.mark.parametrize(("query", "expected"), [
    ("Red Panda", "red-panda"),
    ("Café au lait", "cafe-au-lait"),
    ("  C++ / Rust!  ", "c-rust"),
    ("猫", ""),
    ("x" * 100, "x" * 60),
])
def test_slug(query, expected):
    assert slug(query) == expected


def test_folders_are_unique_readable_and_never_split_names():
    assert class_folders(["red panda"]) == ["images"]  # one class: the folder it always had
    assert class_folders(["cat!", "cat?", "Cat.", "猫", "犬", "train", "Val"]) == [
        "cat", "cat-2", "cat-3", "class-4", "class-5", "train-class", "val-class"]


def test_distinct_queries_keep_order_and_drop_blanks_and_repeats():
    assert distinct_queries(["cat", "", "  dog  house ", "CAT", "dog house", "bird"]) == ["cat", "dog house", "bird"]


def test_job_queries_of_old_and_new_jobs():
    assert job_queries("red panda", {}) == ["red panda"]
    assert job_queries("cat, dog", {"classes": ["cat", "dog"]}) == ["cat", "dog"]


def test_results_round_trip_through_the_note():
    queries = ["cat: the animal", "dog"]
    results = [ClassResult("cat: the animal", "cat-the-animal", 50, 50),
               ClassResult("dog", "dog", 50, 42, "found 43 of 50 images: 120 candidates; 1 dropped as also found "
                                                 "for another class")]
    note = results_note(results)
    assert note.splitlines()[0] == "cat-the-animal/ “cat: the animal”: 50 of 50 images"
    assert job_results("cat: the animal, dog", 50, {"classes": queries}, 92, note) == results
    assert [r.shortfall for r in results] == [0, 8]
    # Before the job ends there is no note: every class shows 0 delivered.
    assert [r.delivered for r in job_results("x", 50, {"classes": queries}, 0, None)] == [0, 0]


def test_one_class_keeps_the_plain_note():
    result = ClassResult("red panda", "images", 10, 7, "found 7 of 10 images: 20 candidates; no more candidates")
    assert results_note([result]) == result.reason
    assert job_results("red panda", 10, {}, 7, result.reason) == [result]
