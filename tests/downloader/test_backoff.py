"""Back-off by cause: a 500 is one file's problem, a 429 or 503 speaks for the host; the per-host limit adapts."""

from __future__ import annotations

import pytest

from downloader import DownloadOptions, download_images
from downloader.candidates import ListedURL
from tests.fixtures.images import ImageServer, start_image_server

FAST = {"allow_private": True, "read_timeout": 5.0, "connect_timeout": 5.0, "deadline": 60.0}


def feed(urls: list[str]):
    queue = [ListedURL(url) for url in urls]

    def more(count: int) -> list[ListedURL]:
        nonlocal queue
        batch, queue = queue[:count], queue[count:]
        return batch

    return more


@pytest.fixture
def slow_server():
    """A server of this test's own (its request log is ours alone), 20 ms per answer."""
    server = start_image_server(latency=0.02)
    yield server
    server.stop()


def between_attempts(server: ImageServer, marker: str) -> list[str]:
    """The other requests the server saw between the first and the second request whose path holds ``marker``."""
    log = server.requests
    first, second = [i for i, path in enumerate(log) if marker in path][:2]
    return [path for path in log[first + 1 : second] if marker not in path]


def test_a_500_is_retried_once_without_holding_its_host(slow_server, tmp_path):
    urls = [f"{slow_server.url}/fault/retry/500/once/r500.jpg"] + [slow_server.url_for(f"b5{i}") for i in range(40)]
    options = DownloadOptions(threads=4, per_host=2, per_host_max=2, retry_pause=2.0, **FAST)
    slow_server.clear_requests()
    result = download_images(feed(urls), len(urls), tmp_path, options)
    assert len(result.images) == len(urls) and not result.failures  # the retry got the image
    others = between_attempts(slow_server, "/retry/500/once/")
    # The host's other URLs went on while the 500 waited for its retry; a held host lets at most one in (the 429
    # test below), and a loaded machine still fits three in the two seconds.
    assert len(others) >= 3, others


def test_a_429_with_retry_after_holds_its_host(slow_server, tmp_path):
    urls = [f"{slow_server.url}/fault/retry/429/hold/r429.jpg?after=2"]
    urls += [slow_server.url_for(f"b4{i}") for i in range(40)]
    options = DownloadOptions(threads=4, per_host=2, per_host_max=2, **FAST)
    slow_server.clear_requests()
    result = download_images(feed(urls), len(urls), tmp_path, options)
    assert len(result.images) == len(urls) and not result.failures
    # Only a request already on its way when the 429 came may arrive in the two seconds the host asked for.
    assert len(between_attempts(slow_server, "/retry/429/hold/")) <= 1


@pytest.mark.parametrize(("path", "attempts", "words"), [
    ("/fault/404", 1, "HTTP 404"),
    ("/fault/500.jpg", 2, "HTTP 500, still after 2 attempts"),
])
def test_client_errors_fail_at_once_and_server_errors_get_one_retry(slow_server, tmp_path, path, attempts, words):
    options = DownloadOptions(retry_pause=0.1, **FAST)
    slow_server.clear_requests()
    result = download_images(feed([slow_server.url + path]), 1, tmp_path, options)
    assert [failure.reason for failure in result.failures] == [words]
    assert slow_server.requests.count(path) == attempts


def test_the_per_host_limit_grows_while_the_host_answers_quickly(tmp_path):
    server = start_image_server(latency=0.05)
    try:
        server.reset_peak()
        result = download_images(feed([server.url_for(f"grow{i}") for i in range(60)]), 60, tmp_path,
                                 DownloadOptions(threads=16, per_host=2, per_host_max=6, **FAST))
        assert len(result.images) == 60
        assert 2 < server.peak_concurrency <= 6  # grew past its start of 2, never past its maximum of 6
    finally:
        server.stop()


def test_the_host_is_resolved_once_per_stage(image_server, tmp_path):
    lookups = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    options = DownloadOptions(trusted_hosts=frozenset({"images.test"}), resolver=resolver, threads=8, per_host=4)
    urls = [f"http://images.test:{image_server.port}/img/dns{i}.jpg" for i in range(12)]
    result = download_images(feed(urls), len(urls), tmp_path, options)
    assert len(result.images) == 12
    assert lookups == ["images.test"]
