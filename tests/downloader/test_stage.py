"""The download stage against the local image server: exactly N good unique images, every refusal explained."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from downloader import DownloadOptions, download_images
from scraper.candidate import Candidate

# Tight but not flaky: the slow fault waits 8 s, far past the 2 s read timeout.
FAST = {"allow_private": True, "read_timeout": 2.0, "connect_timeout": 2.0, "deadline": 60.0}


class Feed:
    """A stand-in collector: hands out candidates in batches and records how it was called."""

    def __init__(self, urls: list[str]) -> None:
        self.queue = [
            Candidate(image_url=url, page_url=f"{url}#page", title=f"t {i}", source="test")
            for i, url in enumerate(urls)
        ]
        self.calls: list[int] = []
        self.threads: set[int] = set()

    def __call__(self, count: int) -> list[Candidate]:
        self.calls.append(count)
        self.threads.add(threading.get_ident())
        batch, self.queue = self.queue[:count], self.queue[count:]
        return batch


FAULTS = {  # path -> words its failure reason must contain
    "/fault/404": "HTTP 404",
    "/fault/500.jpg": "HTTP 500",
    "/fault/slow.jpg?s=8": "timed out",
    "/fault/truncated.jpg": "truncated",
    "/fault/reset.jpg": "reset",
    "/fault/html.jpg": "HTML",
    "/fault/empty.jpg": "empty",
    "/fault/huge.jpg": "20 MB",
    "/fault/huge.jpg?nolength=1": "20 MB",
    "/fault/bomb.png": "decompression bomb",
    "/fault/pixel.png": "too small",
    "/fault/loop.jpg": "redirects",
    "/redirect/6/six-hops.jpg": "redirects",
    "/dup/copy/good0.jpg": "exact duplicate",
    "/img/good1.jpg?q=40": "near duplicate",
    "/img/good2.png": "near duplicate",
    "/img/good3.jpg?scale=0.5": "near duplicate",
}


def test_exactly_the_good_unique_images_and_every_refusal_explained(image_server, tmp_path):
    goods = [f"/img/good{i}.jpg" for i in range(8)] + ["/img/gpng.png", "/img/gwebp.webp", "/img/ggif.gif"]
    goods += [
        "/redirect/5/five-hops.jpg",
        "/fault/retry/429/accept/r429.jpg?after=1",
        "/fault/retry/503/accept/r503.jpg",
    ]
    paths = goods + list(FAULTS)  # copies come after their originals: the better-ranked equal copy is kept
    feed = Feed([image_server.url + path for path in paths])
    # One more than there is, so every candidate must be tried and every bad one explained.
    result = download_images(feed, len(goods) + 1, tmp_path, DownloadOptions(**FAST))

    assert result.shortfall == 1 and result.shortfall_reason.startswith(f"found {len(goods)} of {len(goods) + 1}")
    assert sorted(image.image_url for image in result.images) == sorted(image_server.url + p for p in goods)
    reasons = {failure.url.removeprefix(image_server.url): failure.reason for failure in result.failures}
    assert set(reasons) == set(FAULTS)
    for path, words in FAULTS.items():
        assert words in reasons[path], (path, reasons[path])
    assert result.candidates_seen == len(paths)
    assert feed.threads == {threading.get_ident()}


def test_files_are_numbered_in_rank_order_with_the_real_extension(image_server, tmp_path):
    urls = [f"{image_server.url}/img/rank{i}.{ext}" for i, ext in enumerate(["png", "jpg", "gif", "webp"])]
    urls.append(f"{image_server.url}/dup/lie/rank9.png")  # PNG bytes, whatever the name says
    result = download_images(Feed(urls), 5, tmp_path, DownloadOptions(**FAST))
    assert [image.file for image in result.images] == [
        "images/0001.png",
        "images/0002.jpg",
        "images/0003.gif",
        "images/0004.webp",
        "images/0005.png",
    ]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        "0001.png",
        "0002.jpg",
        "0003.gif",
        "0004.webp",
        "0005.png",
    ]
    assert not (tmp_path / ".parts").exists()
    first = result.images[0]
    assert (first.page_url, first.title, first.source) == (urls[0] + "#page", "t 0", "test")
    assert first.bytes == (tmp_path / first.file).stat().st_size and len(first.sha256) == 64 and len(first.phash) == 16


def test_stops_at_n_when_more_are_available(image_server, tmp_path):
    feed = Feed([image_server.url_for(f"many{i}") for i in range(40)])
    result = download_images(feed, 7, tmp_path, DownloadOptions(**FAST))
    assert len(result.images) == 7 and result.shortfall == 0
    assert len(list((tmp_path / "images").iterdir())) == 7
    assert feed.calls == [21]  # 1.5 x 7 + 10, enough without asking again


def test_near_duplicate_keeps_the_larger(image_server, tmp_path):
    small, large = f"{image_server.url}/img/pair.jpg?scale=0.5", image_server.url_for("pair")
    thumb, other = f"{image_server.url}/thumb/pair.jpg", image_server.url_for("other")
    options = DownloadOptions(threads=1, **FAST)  # one at a time: the small copy is kept first, then replaced
    result = download_images(Feed([small, thumb, large, other]), 2, tmp_path, options)
    assert [image.image_url for image in result.images] == [large, other]
    reasons = {failure.url: failure.reason for failure in result.failures}
    assert set(reasons) == {small, thumb} and all("near duplicate" in r and large in r for r in reasons.values())


def test_fills_to_n_by_asking_the_collector_again(image_server, tmp_path):
    broken = [f"{image_server.url}/fault/404?{i}" for i in range(30)]
    goods = [image_server.url_for(f"fill{i}") for i in range(10)]
    feed = Feed(broken + goods)
    result = download_images(feed, 5, tmp_path, DownloadOptions(**FAST))
    assert len(result.images) == 5 and len(feed.calls) >= 2


def test_shortfall_is_explained(image_server, tmp_path):
    urls = [image_server.url_for(f"short{i}") for i in range(3)]
    urls += [f"{image_server.url}/fault/404?{i}" for i in range(4)] + [f"{image_server.url}/dup/x/short0.jpg"]
    result = download_images(Feed(urls), 10, tmp_path, DownloadOptions(**FAST))
    assert (len(result.images), result.shortfall) == (3, 7)
    assert result.shortfall_reason == (
        "found 3 of 10 images: 8 candidates, 4 broken links, 1 duplicates; no more candidates"
    )


def test_user_filters_are_applied(image_server, tmp_path):
    urls = [f"{image_server.url}/img/filt{i}.{ext}" for i, ext in enumerate(["png", "jpg", "gif", "jpg"])]
    options = DownloadOptions.from_config({"ALLOW_PRIVATE_URLS": True}, formats={"jpg"}, min_width=1)
    result = download_images(Feed(urls), 4, tmp_path, options)
    assert [image.image_url for image in result.images] == [urls[1], urls[3]]
    assert {failure.kind for failure in result.failures} == {"filtered"}


def test_retry_after_longer_than_allowed_gives_up(image_server, tmp_path):
    url = f"{image_server.url}/fault/retry/429/patience/p.jpg?after=120"
    result = download_images(Feed([url]), 1, tmp_path, DownloadOptions(**FAST))
    assert "asked to wait 120 s" in result.failures[0].reason


def test_per_host_cap(tmp_path):
    from tests.fixtures.images import start_image_server

    server = start_image_server(latency=0.1)
    try:
        urls = [server.url_for(f"cap{i}") for i in range(16)]
        options = DownloadOptions(threads=12, per_host=3, per_host_max=3, **FAST)
        server.reset_peak()
        result = download_images(Feed(urls), 16, tmp_path, options)
        assert len(result.images) == 16
        assert 2 <= server.peak_concurrency <= 3
    finally:
        server.stop()


def test_downloads_run_ahead_of_checks_that_are_slow(image_server, tmp_path, monkeypatch):
    """A download's place is free once its file is written: files waiting for their check hold no download."""
    from downloader import stage

    real_checker, gate = stage.checker, threading.Event()

    def held_checker(options, want):
        check = real_checker(options, want)

        async def held(path, threads):
            await asyncio.get_running_loop().run_in_executor(None, gate.wait, 30)  # until every file has arrived
            return await check(path, threads)

        return held

    monkeypatch.setattr(stage, "checker", held_checker)
    urls = [image_server.url_for(f"ahead{i}") for i in range(10)]
    image_server.clear_requests()
    options = DownloadOptions(**{**FAST, "threads": 2, "per_host": 2})
    thread, box = _run_in_thread(more=Feed(urls), want=10, out_dir=tmp_path, options=options)
    try:
        for _ in range(200):  # up to 10 s: the ten downloads need no check to finish first
            if sum("ahead" in path for path in image_server.requests) == 10:
                break
            time.sleep(0.05)
        asked = sum("ahead" in path for path in image_server.requests)
    finally:
        gate.set()
        thread.join(timeout=30)
    assert asked == 10  # with two downloads at once, and not one check done
    assert len(box["result"].images) == 10


def _run_in_thread(**kwargs) -> tuple[threading.Thread, dict]:
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", download_images(**kwargs)), daemon=True)
    thread.start()
    return thread, box


def test_nothing_hangs_past_the_deadline(image_server, tmp_path):
    urls = [f"{image_server.url}/fault/trickle.jpg?s=60&{i}" for i in range(4)] + [image_server.url_for("dl")]
    options = DownloadOptions(**{**FAST, "deadline": 1.5, "per_host": 8})
    thread, box = _run_in_thread(more=Feed(urls), want=3, out_dir=tmp_path, options=options)
    thread.join(timeout=30)  # a hang bound, not a timing assertion: the deadline is 1.5 s
    assert not thread.is_alive()
    result = box["result"]
    assert result.stopped == "deadline" and result.shortfall == 2
    assert "deadline" in result.shortfall_reason
    unfinished = [failure for failure in result.failures if failure.kind == "unfinished"]
    assert len(unfinished) == 4 and all("deadline" in failure.reason for failure in unfinished)
    # The stage's event loop thread, and its lookup and check threads, end without waiting for the server.
    for worker in [t for t in threading.enumerate() if t.name.startswith(("download", "resolve", "check_"))]:
        worker.join(timeout=30)
        assert not worker.is_alive(), worker.name


def test_should_stop_ends_the_stage(image_server, tmp_path):
    urls = [f"{image_server.url}/fault/trickle.jpg?s=60&stop{i}" for i in range(3)]
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    thread, box = _run_in_thread(
        more=Feed(urls), want=2, out_dir=tmp_path, options=DownloadOptions(**FAST), should_stop=should_stop
    )
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert box["result"].stopped == "cancelled" and "stopped on request" in box["result"].shortfall_reason


def test_progress_is_reported_from_the_calling_thread(image_server, tmp_path):
    seen = []
    threads = set()

    def progress(delivered: int, want: int) -> None:
        seen.append((delivered, want))
        threads.add(threading.get_ident())

    download_images(
        Feed([image_server.url_for(f"prog{i}") for i in range(6)]),
        4,
        tmp_path,
        DownloadOptions(**FAST),
        progress=progress,
    )
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert threads == {threading.get_ident()}


def test_a_retried_job_replaces_its_own_files_only(image_server, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "0007.jpg").write_bytes(b"stale")
    (images / "keep-me.txt").write_text("not ours")
    download_images(Feed([image_server.url_for("again")]), 1, tmp_path, DownloadOptions(**FAST))
    assert sorted(p.name for p in images.iterdir()) == ["0001.jpg", "keep-me.txt"]


def test_want_must_be_positive(tmp_path):
    with pytest.raises(ValueError):
        download_images(Feed([]), 0, tmp_path, DownloadOptions())


def test_a_collector_that_repeats_itself_does_not_loop_for_ever(image_server, tmp_path):
    same = [Candidate(image_url=image_server.url_for("again0"))]
    calls = []

    def more(count: int) -> list[Candidate]:
        calls.append(count)
        return same  # never anything new

    result = download_images(more, 3, tmp_path, DownloadOptions(**FAST))
    assert len(result.images) == 1 and result.shortfall == 2 and len(calls) == 2
    assert result.shortfall_reason.endswith("no more candidates")


def test_a_collector_of_junk_is_not_asked_for_ever(image_server, tmp_path):
    counter = iter(range(10_000))

    def more(count: int) -> list[Candidate]:
        return [Candidate(image_url=f"{image_server.url}/fault/404?{next(counter)}") for _ in range(count)]

    result = download_images(more, 2, tmp_path, DownloadOptions(**FAST))
    assert result.candidates_seen == 2 * 10 + 100
    assert "gave up after 120 candidates" in result.shortfall_reason


def test_an_error_from_the_collector_propagates_and_cleans_up(image_server, tmp_path):
    def more(count: int) -> list[Candidate]:
        raise RuntimeError("the browser died")

    with pytest.raises(RuntimeError, match="browser died"):
        download_images(more, 2, tmp_path, DownloadOptions(**FAST))
    assert not (tmp_path / ".parts").exists()


def test_a_refused_connection_is_a_broken_link(image_server, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on once this socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/img/nobody.jpg"
    result = download_images(Feed([url, image_server.url_for("beside")]), 2, tmp_path, DownloadOptions(**FAST))
    assert [image.image_url for image in result.images] == [image_server.url_for("beside")]
    assert [(f.url, f.reason, f.kind) for f in result.failures] == [(url, "could not connect", "broken")]


@pytest.mark.parametrize(("contact", "words"),
                         [("ops@example.com", "+ops@example.com)"), (None, "AdvancedImageDownloader/1.0)")])
def test_image_downloads_carry_the_contact_when_there_is_one(image_server, tmp_path, contact, words):
    image_server.clear_requests()
    options = DownloadOptions.from_config({"CONTACT_EMAIL": contact}, allow_private=True, read_timeout=2.0)
    result = download_images(Feed([f"{image_server.url}/img/ua-{bool(contact)}.jpg"]), 1, tmp_path, options)
    assert len(result.images) == 1
    agent = image_server.user_agent(f"/img/ua-{bool(contact)}.jpg")
    assert agent is not None and agent.startswith("Mozilla/5.0 (compatible; AdvancedImageDownloader/1.0")
    assert agent.endswith(words)
