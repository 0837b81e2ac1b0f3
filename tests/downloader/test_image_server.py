"""The local image server keeps its contract: distinct keys, near-duplicate variants, and every fault path."""

from __future__ import annotations

import io
import itertools

import pytest
import requests
from PIL import Image

from downloader.options import DownloadOptions
from downloader.validate import phash_of
from tests.fixtures.images import render

THRESHOLD = DownloadOptions().near_distance


def _hash(data: bytes) -> int:
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("L", (64, 64))  # as the downloader decodes JPEG
    image.load()
    return phash_of(image)


@pytest.mark.slow
def test_different_keys_are_never_near_duplicates():
    hashes = [_hash(render(f"key{i}", "jpg", scale=0.5)) for i in range(600)]
    closest = min((a ^ b).bit_count() for a, b in itertools.combinations(hashes, 2))
    assert closest > 2 * THRESHOLD


@pytest.mark.parametrize(
    "variant",
    [
        {"ext": "jpg", "quality": 40},
        {"ext": "png"},
        {"ext": "webp"},
        {"ext": "gif"},
        {"ext": "jpg", "scale": 0.4},
        {"ext": "jpg", "kb": 200},
    ],
)
def test_variants_of_a_key_are_near_duplicates(variant):
    for key in ("alpha", "beta", "gamma", "delta"):
        assert (_hash(render(key, "jpg")) ^ _hash(render(key, **variant))).bit_count() <= THRESHOLD


def test_same_url_same_bytes_and_dup_path(image_server):
    first = requests.get(image_server.url_for("same"), timeout=10)
    again = requests.get(image_server.url_for("same"), timeout=10)
    copy = requests.get(f"{image_server.url}/dup/copy/same.jpg", timeout=10)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/jpeg"
    assert first.content == again.content == copy.content


def test_kb_aims_at_a_size(image_server):
    data = requests.get(image_server.url_for("sized") + "?kb=200", timeout=10).content
    assert 100_000 < len(data) < 400_000


@pytest.mark.parametrize(
    ("path", "status"),
    [("/fault/404", 404), ("/fault/500.jpg", 500), ("/fault/loop.jpg", 302), ("/fault/local.jpg", 302)],
)
def test_fault_statuses(image_server, path, status):
    response = requests.get(image_server.url + path, allow_redirects=False, timeout=10)
    assert response.status_code == status


def test_retry_path_fails_once_then_serves(image_server):
    url = f"{image_server.url}/fault/retry/429/contract/r.jpg?after=3"
    first = requests.get(url, timeout=10)
    second = requests.get(url, timeout=10)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert second.status_code == 200


@pytest.mark.parametrize("path", ["/fault/truncated.jpg", "/fault/reset.jpg"])
def test_broken_bodies_break(image_server, path):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(image_server.url + path, timeout=10)


def test_thumbnail_is_small(image_server):
    data = requests.get(f"{image_server.url}/thumb/t.jpg", timeout=10).content
    assert max(Image.open(io.BytesIO(data)).size) == 120
