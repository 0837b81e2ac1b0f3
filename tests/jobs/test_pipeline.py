"""build_dataset with several classes: one folder each, no image in two classes, splits that hold on a re-run.

Against the real download stage and the local image server; the candidates come from the Openverse stand-in
(no browser) or, where the test needs images shared between classes, from a list the test writes.
"""

from __future__ import annotations

import csv
import io

import pytest

from jobs import pipeline
from jobs.classes import class_folders
from jobs.pipeline import JobFailed, build_dataset
from scraper import Candidate, EngineReport
from tests.fixtures import imagefolder

NO_GIF = {"formats": ["jpeg", "png", "webp"]}  # torchvision's ImageFolder reads no GIF


@pytest.fixture
def open_config(make_app, open_apis):
    app = make_app(IMAGE_SOURCES=["openverse"], OPENVERSE_URL=open_apis.openverse_url)
    return app.config


def _run(config, tmp_path, queries, count, options, name="job"):
    events = []
    outcome = build_dataset(queries, count, options, config, tmp_path / name / "work", tmp_path / name / "job.zip",
                            event=events.append)
    return outcome, events


def test_three_classes_give_three_loadable_class_folders(open_config, tmp_path):
    queries = ["red panda", "Café au lait", "snow leopard"]
    outcome, events = _run(open_config, tmp_path, queries, 8, NO_GIF)
    assert [(r.folder, r.delivered, r.wanted) for r in outcome.classes] == [
        ("red-panda", 8, 8), ("cafe-au-lait", 8, 8), ("snow-leopard", 8, 8)]
    assert outcome.delivered == 24 and outcome.wanted == 24
    assert outcome.note.splitlines() == ["red-panda/ “red panda”: 8 of 8 images",
                                         "cafe-au-lait/ “Café au lait”: 8 of 8 images",
                                         "snow-leopard/ “snow leopard”: 8 of 8 images"]
    assert "class cafe-au-lait/: “Café au lait”" in events

    root = imagefolder.extract(outcome.zip_path, tmp_path / "out")
    assert imagefolder.per_class(root) == {"cafe-au-lait": 8, "red-panda": 8, "snow-leopard": 8}
    rows = imagefolder.metadata(root)
    assert len(rows) == 24
    assert {row["label"]: row["query"] for row in rows} == dict(zip(class_folders(queries), queries, strict=True))
    assert all(row["license"] and row["license_url"] and row["creator"] for row in rows)
    assert len({row["sha256"] for row in rows}) == 24  # no image in two classes
    credits = [line for line in (root / "ATTRIBUTION.txt").read_text().splitlines() if "/" in line[:20]]
    assert len(credits) == sum(1 for row in rows if row["license"] not in ("cc0", "pdm"))
    manifest = list(csv.DictReader(io.StringIO(imagefolder.read(outcome.zip_path, "manifest.csv").decode())))
    assert sorted(row["file"] for row in manifest) == sorted(row["file_name"] for row in rows)


def test_one_query_keeps_the_images_folder(open_config, tmp_path):
    outcome, _ = _run(open_config, tmp_path, "red panda", 5, NO_GIF)
    names = imagefolder.members(outcome.zip_path)
    assert sorted(n for n in names if "/" in n) == [f"images/000{n}.{ext}" for n, ext in
                                                     zip(range(1, 6), _exts(names), strict=True)]
    assert outcome.note is None and len(outcome.classes) == 1


def _exts(names):
    return [n.rsplit(".", 1)[1] for n in sorted(n for n in names if n.startswith("images/"))]


def test_split_gives_each_class_its_share_the_same_on_a_rerun(open_config, tmp_path):
    options = {**NO_GIF, "split": "80/20"}
    first, _ = _run(open_config, tmp_path, ["red panda", "snow leopard"], 10, options, "first")
    second, _ = _run(open_config, tmp_path, ["red panda", "snow leopard"], 10, options, "second")
    root = imagefolder.extract(first.zip_path, tmp_path / "out")
    for part, share in (("train", 8), ("val", 2)):
        assert imagefolder.per_class(root / part) == {"red-panda": share, "snow-leopard": share}
        assert len(imagefolder.metadata(root / part)) == 2 * share
    assert not (root / "test").exists()

    def parts(zip_path):
        return sorted(n for n in imagefolder.members(zip_path) if n.startswith(("train/", "val/")))

    assert parts(first.zip_path) == parts(second.zip_path)


class ListCollector:
    """Stands in for scraper.Collector: hands out a fixed list of candidates per query."""

    lists: dict[str, list[Candidate]] = {}

    def __init__(self, query: str) -> None:
        self.left = list(self.lists[query])
        self.reports = [EngineReport("list", len(self.left), "ran dry")]

    @classmethod
    def from_config(cls, query, config, log=None, licence="any"):
        return cls(query)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def collect(self, want):
        batch, self.left = self.left[:want], self.left[want:]
        return batch


def test_an_image_found_for_two_classes_is_dropped_from_both(make_app, image_server, tmp_path, monkeypatch):
    url = image_server.url_for
    ListCollector.lists = {
        "cat": [Candidate(url(f"cat-{n}"), source="list") for n in range(6)] + [
            Candidate(url("shared-exact"), source="list"), Candidate(url("shared-near", "png"), source="list")],
        "dog": [Candidate(url(f"dog-{n}"), source="list") for n in range(6)] + [
            Candidate(f"{image_server.url}/dup/other/shared-exact.jpg", source="list"),
            Candidate(url("shared-near", "jpg") + "?q=40", source="list")],
    }
    monkeypatch.setattr(pipeline, "Collector", ListCollector)
    outcome, events = _run(make_app().config, tmp_path, ["cat", "dog"], 8, {})
    assert [(r.folder, r.delivered, r.shortfall) for r in outcome.classes] == [("cat", 6, 2), ("dog", 6, 2)]
    assert all("2 dropped as also found for another class" in r.reason for r in outcome.classes)
    assert "4 images were found for two classes and dropped from both" in events
    names = imagefolder.members(outcome.zip_path)
    failures = list(csv.DictReader(io.StringIO(imagefolder.read(outcome.zip_path, "failures.csv").decode())))
    assert not any("shared" in row["image_url"] for row in imagefolder.metadata(
        imagefolder.extract(outcome.zip_path, tmp_path / "out")))
    assert len([n for n in names if n.startswith(("cat/", "dog/"))]) == 12
    both = [row for row in failures if row["class"] in ("cat;dog", "dog;cat")]
    assert sorted(row["url"].rsplit("/", 1)[1] for row in both) == [
        "shared-exact.jpg", "shared-exact.jpg", "shared-near.jpg?q=40", "shared-near.png"]
    assert all("found for both “cat” and “dog”" in row["reason"] or "found for both “dog” and “cat”" in row["reason"]
               for row in both)
    assert any("the same image" in row["reason"] for row in both)
    assert any("near duplicate" in row["reason"] for row in both)


def test_a_job_whose_every_class_is_empty_fails_with_the_reasons(make_app, image_server, tmp_path, monkeypatch):
    ListCollector.lists = {"cat": [], "dog": [Candidate(f"{image_server.url}/fault/404", source="list")]}
    monkeypatch.setattr(pipeline, "Collector", ListCollector)
    with pytest.raises(JobFailed, match="no images could be delivered for any class: “cat”: .*; “dog”: .*broken"):
        _run(make_app().config, tmp_path, ["cat", "dog"], 3, {})
