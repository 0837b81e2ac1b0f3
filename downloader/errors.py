"""The downloader's exception family: why one URL was refused."""

from __future__ import annotations


class DownloadError(Exception):
    """One URL could not be turned into an image; ``reason`` is a plain sentence, ``kind`` a summary bucket."""

    kind = "broken"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockedURL(DownloadError):
    """The URL's scheme is not http(s), or its host resolves to a non-public address."""

    kind = "blocked"


class FetchError(DownloadError):
    """The server answered with an error, too slowly, too much, or not at all."""

    kind = "broken"


class TooLarge(FetchError):
    """The body is larger than the per-image limit."""

    kind = "too_large"


class NotForAI(DownloadError):
    """The site asks, with ``X-Robots-Tag: noai`` or ``noimageai``, that the image not be used for AI."""

    kind = "noai"


class InvalidImage(DownloadError):
    """The bytes are not a whole, decodable image (HTML, truncated, empty, a decompression bomb)."""

    kind = "not_image"


class TooSmall(InvalidImage):
    """The image is smaller than the minimum width or height."""

    kind = "too_small"


class UnwantedFormat(InvalidImage):
    """The image is in a format the user did not ask for."""

    kind = "filtered"
