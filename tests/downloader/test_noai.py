"""X-Robots-Tag: noai and noimageai images are refused with their reason when RESPECT_NOAI is on, kept when off."""

from __future__ import annotations

import pytest

from downloader import DownloadOptions, download_images
from downloader.candidates import ListedURL
from downloader.fetch import ai_refusal

FAST = {"allow_private": True, "read_timeout": 5.0, "connect_timeout": 5.0}


def once(url: str):
    """A collector with one candidate."""
    queue = [ListedURL(url)]

    def more(count: int) -> list[ListedURL]:
        batch = queue[:count]
        del queue[:count]
        return batch

    return more


@pytest.mark.parametrize(
    ("values", "found"),
    [
        (["noai"], "noai"),
        (["noindex, NoImageAI"], "noimageai"),
        (["advancedimagedownloader: noai"], "noai"),
        (["otherbot: noai"], None),
        (["otherbot: noai", "noimageai"], "noimageai"),
        (["unavailable_after: 25 Jun 2010 15:00:00 PST, noai"], "noai"),
        (["noindex", "nofollow"], None),
        ([], None),
    ],
)
def test_which_directives_refuse(values, found):
    assert ai_refusal(values) == found


@pytest.mark.parametrize("tag", ["noai", "noimageai"])
def test_noai_images_are_refused_with_the_reason(image_server, tmp_path, tag):
    url = f"{image_server.url}/fault/noai.jpg?tag={tag}"
    result = download_images(once(url), 1, tmp_path, DownloadOptions(**FAST))
    assert result.images == []
    assert [(f.reason, f.kind) for f in result.failures] == [
        (f"the site asks that this image not be used for AI (X-Robots-Tag: {tag})", "noai")
    ]
    assert "1 asked not to be used for AI" in result.shortfall_reason


def test_noai_images_are_kept_when_respect_noai_is_off(image_server, tmp_path):
    url = f"{image_server.url}/fault/noai.jpg?tag=noai"
    options = DownloadOptions.from_config({"ALLOW_PRIVATE_URLS": True, "RESPECT_NOAI": False})
    result = download_images(once(url), 1, tmp_path, options)
    assert [image.image_url for image in result.images] == [url] and result.failures == []


def test_a_tag_for_another_robot_does_not_refuse(image_server, tmp_path):
    url = f"{image_server.url}/fault/noai.jpg?tag=otherbot:%20noai"
    result = download_images(once(url), 1, tmp_path, DownloadOptions(**FAST))
    assert len(result.images) == 1
