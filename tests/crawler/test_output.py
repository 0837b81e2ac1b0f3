"""One copy per picture across batches and resumes: the crawl's duplicate index and the Keeper."""

from __future__ import annotations

import random

from crawler.output import CrawlDuplicates, Keeper
from crawler.state import open_file
from downloader import DownloadResult, ImageRecord
from downloader.duplicates import Copy, Duplicates
from downloader.options import DownloadOptions
from downloader.validate import inspect
from tests.fixtures.images import render


def test_the_index_decides_as_the_download_stage_does():
    rng = random.Random(3)
    bases = [rng.getrandbits(64) for _ in range(40)]
    ours, theirs = CrawlDuplicates(6), Duplicates(6)
    for rank in range(400):
        phash = rng.choice(bases) ^ (1 << rng.randrange(64)) * rng.randrange(2)
        copy = Copy(rank, f"u{rank}", f"sha{rank % 350}", phash, rng.randint(1, 1000))
        assert ours.add(copy) == theirs.add(copy)
    assert ours.ranks == theirs.ranks


def _batch(state, tmp_path, name, data, page):
    folder = tmp_path / f"batch-{name}"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "0001.jpg").write_bytes(data)
    info = inspect(folder / "images" / "0001.jpg", DownloadOptions())
    url = f"http://site.test/{name}.jpg"
    state.page_visited(page, [], [(url, url, {"page_url": page})])
    pending = state.pending(0, 100)
    pending = [p for p in pending if p.url == url]
    record = ImageRecord("images/0001.jpg", url, page, None, "crawl", info.width, info.height, len(data), name * 8,
                         f"{info.phash:016x}")
    return folder, DownloadResult(want=1, images=[record]), pending


def test_a_larger_copy_found_later_replaces_the_saved_one_even_after_a_resume(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    state = open_file(out)
    state.add_pages([("http://site.test/a", "http://site.test/a", 0), ("http://site.test/b", "http://site.test/b", 0)])
    small = render("same", "jpg", scale=0.5)
    folder, result, pending = _batch(state, tmp_path, "small", small, "http://site.test/a")
    assert Keeper(out, state, 6, ()).take(folder, result, pending) == 1
    first = state.saved()[0]
    assert (out / first.file).exists() and (out / "metadata" / f"{first.seq:08d}.json").exists()

    resumed = Keeper(out, state, 6, ())  # as after a restart: the kept hashes come from the state
    folder, result, pending = _batch(state, tmp_path, "large", render("same", "jpg"), "http://site.test/b")
    assert resumed.take(folder, result, pending) == 1
    saved = state.saved()
    assert [image.url for image in saved] == ["http://site.test/large.jpg"]
    assert not (out / first.file).exists() and not (out / "metadata" / f"{first.seq:08d}.json").exists()
    assert [(url.rsplit("/", 1)[1], kind) for url, _, kind in state.failures()] == [("small.jpg", "duplicate")]
    state.close()
