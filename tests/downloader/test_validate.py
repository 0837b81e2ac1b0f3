"""Validation decides by the bytes: the real format, whole decodes, sizes, bombs and the user's filters."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from downloader.errors import InvalidImage, TooSmall, UnwantedFormat
from downloader.options import DownloadOptions, normalize_formats
from downloader.validate import _lanczos, inspect, phash_of_grey
from tests.fixtures.images import _bomb, render


def _file(tmp_path, data: bytes):
    path = tmp_path / "download.part"
    path.write_bytes(data)
    return path


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(("ext", "fmt"), [("jpg", "jpeg"), ("png", "png"), ("webp", "webp"), ("gif", "gif")])
def test_format_and_extension_come_from_the_bytes(tmp_path, ext, fmt):
    info = inspect(_file(tmp_path, render("v", ext)), DownloadOptions())
    assert (info.format, info.ext) == (fmt, "jpg" if fmt == "jpeg" else fmt)
    assert info.width >= 300 and info.height >= 300


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", InvalidImage, "empty"),
        (b"\n  <!DOCTYPE html><html><body>captcha</body></html>", InvalidImage, "HTML"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", InvalidImage, "SVG"),
        (b"GIF87a-not-really", InvalidImage, ""),
        (b"BM" + b"\x00" * 100, InvalidImage, "not a JPEG, PNG, WebP or GIF"),
        (render("cut", "jpg")[:6000], InvalidImage, "truncated"),
        (render("cut", "jpg")[:200], InvalidImage, "a damaged or truncated image (Truncated File Read)"),
        (render("cut", "png")[:3000], InvalidImage, "truncated"),
        (_png(1, 1), TooSmall, "1x1"),
        (_png(31, 400), TooSmall, "31x400"),
        (_bomb(9000), InvalidImage, "decompression bomb"),
        (_bomb(20000), InvalidImage, "decompression bomb"),
    ],
)
def test_refusals_say_why(tmp_path, data, error, words):
    with pytest.raises(error) as caught:
        inspect(_file(tmp_path, data), DownloadOptions())
    assert words in caught.value.reason


def test_user_filters(tmp_path):
    png = _file(tmp_path, render("f", "png"))
    with pytest.raises(UnwantedFormat):
        inspect(png, DownloadOptions(formats=frozenset({"jpeg"})))
    with pytest.raises(TooSmall):
        inspect(png, DownloadOptions(min_width=5000))
    assert inspect(png, DownloadOptions(formats=normalize_formats(["PNG", "jpg"]), min_height=100)).format == "png"


def test_unknown_format_name_is_refused():
    with pytest.raises(ValueError, match="bmp"):
        DownloadOptions.from_config({}, formats={"bmp"})


def _lanczos_whole(length: int, size: int = 32, lobes: int = 3) -> np.ndarray:
    """The resampling matrix computed over every pixel of a row, as ``_lanczos`` did before it kept to each band."""
    scale = length / size
    stretch = max(scale, 1.0)
    centres = (np.arange(size) + 0.5) * scale
    offsets = ((np.arange(length) + 0.5)[None, :] - centres[:, None]) / stretch
    weights = np.sinc(offsets) * np.sinc(offsets / lobes)
    weights[np.abs(offsets) >= lobes] = 0.0
    return weights / weights.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("lengths", [range(1, 400), (400, 511, 512, 997, 2048, 4000, 12345)])
def test_the_banded_resampling_matrix_is_the_whole_one(lengths):
    for length in lengths:  # shorter and longer than the 32 pixels resampled to, whole and fractional factors
        banded = _lanczos(length)
        assert banded.shape == (32, length)
        np.testing.assert_allclose(banded, _lanczos_whole(length), rtol=0, atol=1e-12, err_msg=f"length {length}")


def test_the_hash_of_grey_pixels_is_unchanged_by_the_banded_matrix():
    rng = np.random.default_rng(7)
    for height, width in ((64, 64), (80, 92), (117, 151), (300, 64), (31, 45)):
        grey = rng.integers(0, 256, (height, width)).astype(np.float64)
        dct = 2.0 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(32)[None, :] + 1) / 64)
        low = ((dct @ _lanczos_whole(height)) @ grey @ (dct @ _lanczos_whole(width)).T).ravel()
        ranked = np.sort(low)
        expected = int.from_bytes(np.packbits(low > (ranked[31] + ranked[32]) / 2).tobytes(), "big")
        assert phash_of_grey(grey) == expected
