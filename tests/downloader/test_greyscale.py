"""JPEGs and 8-bit PNGs decoded straight to grey by libjpeg-turbo and libspng: the same answers as Pillow's decode of
the same files (format, size, hash), damaged files refused, and everything else left to Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from downloader import greyscale
from downloader.errors import InvalidImage
from downloader.options import DownloadOptions
from downloader.validate import inspect, phash_of_grey
from tests.downloader.test_pngdata import _interlaced_rgb
from tests.fixtures.images import render


def _picture(mode: str, size: tuple[int, int] = (300, 220)) -> Image.Image:
    rgb = Image.fromarray(np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    smooth = rgb.resize((size[0] // 10, size[1] // 10)).resize(size, Image.Resampling.BICUBIC)  # a picture, not noise
    return smooth.convert(mode) if mode != "RGB" else smooth


def _jpeg(mode: str = "RGB", **params) -> bytes:
    out = io.BytesIO()
    _picture(mode, params.pop("size", (300, 220))).save(out, "JPEG", **params)
    return out.getvalue()


def _png(mode: str, **params) -> bytes:
    out = io.BytesIO()
    _picture(mode).save(out, "PNG", **params)
    return out.getvalue()


def _by_pillow(monkeypatch, path):
    """What inspect answers when greyscale decodes nothing (every file goes to Pillow)."""
    with monkeypatch.context() as patch:
        patch.setattr(greyscale, "header", lambda data: None)
        return inspect(path, DownloadOptions())


def _file(tmp_path, data: bytes):
    path = tmp_path / "download.part"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [
    _jpeg(), _jpeg(subsampling=0), _jpeg("L"), _jpeg(progressive=True), _jpeg(size=(70, 900)), _jpeg(size=(40, 40)),
    _png("RGB"), _png("RGBA"), _png("L"), _png("LA"), _png("RGB", compress_level=9), _interlaced_rgb(90, 70)[0],
    render("greyscale-photo", "jpg"), render("greyscale-photo", "png"),
], ids=["jpeg", "jpeg-444", "jpeg-grey", "jpeg-progressive", "jpeg-narrow", "jpeg-tiny", "png-rgb", "png-rgba",
        "png-grey", "png-grey-alpha", "png-level-9", "png-interlaced", "photo-jpeg", "photo-png"])
def test_the_same_answer_as_pillow(tmp_path, monkeypatch, data):
    path = _file(tmp_path, data)
    assert greyscale.header(data) is not None  # decoded here, not by Pillow
    assert inspect(path, DownloadOptions()) == _by_pillow(monkeypatch, path)


@pytest.mark.parametrize(("data", "fmt"), [
    (_jpeg("CMYK"), "jpeg"), (_png("P"), "png"), (_png("I;16"), "png"), (_png("1"), "png"),
    (render("greyscale-gif", "gif"), "gif"), (render("greyscale-webp", "webp"), "webp"),
], ids=["jpeg-cmyk", "png-palette", "png-16-bit", "png-bilevel", "gif", "webp"])
def test_other_images_are_left_to_pillow(tmp_path, data, fmt):
    assert greyscale.header(data) is None
    assert inspect(_file(tmp_path, data), DownloadOptions()).format == fmt


def test_pixels_are_pillows_grey_at_the_hash_size():
    data = _jpeg(size=(640, 480))
    grey = greyscale.grey("jpeg", data)
    with Image.open(io.BytesIO(data)) as image:
        image.draft("L", (64, 64))
        assert grey is not None and np.array_equal(grey, np.asarray(image, dtype=np.float64))
    assert grey.shape == (120, 160)  # 1/4 scale: at 1/8 the smaller side would be under 64


def _cut(data: bytes) -> bytes:
    """The first half of the entropy-coded data, then an end-of-image marker: no longer truncated on its face."""
    return data[:len(data) // 2] + b"\xff\xd9"


def _overwritten(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(2000) + data[middle + 2000:]


@pytest.mark.parametrize(("damage", "words"), [
    (lambda data: data[:len(data) // 2], "Premature end of JPEG file"),
    (lambda data: data[:-2], "Premature end of JPEG file"),
    (_cut, "premature end of data segment"),
    (_overwritten, "JPEG"),
], ids=["half", "no-end-marker", "cut-then-end-marker", "overwritten-middle"])
def test_a_damaged_jpeg_is_refused_with_the_reason(tmp_path, damage, words):
    with pytest.raises(InvalidImage, match="a damaged or truncated JPEG") as caught:
        inspect(_file(tmp_path, damage(render("greyscale-damaged", "jpg"))), DownloadOptions())
    assert words in caught.value.reason


def test_a_harmless_jpeg_warning_keeps_the_image(tmp_path):
    data = render("greyscale-warning", "jpg")
    padded = data[:-2] + b"\x00\x00" + data[-2:]  # libjpeg: "2 extraneous bytes before marker 0xd9"
    assert inspect(_file(tmp_path, padded), DownloadOptions()) == inspect(_file(tmp_path, data), DownloadOptions())


def test_a_png_libspng_refuses_is_pillows_to_judge(tmp_path, monkeypatch):
    path = _file(tmp_path, _png("RGB"))
    expected = _by_pillow(monkeypatch, path)

    def refuse(data: bytes, format: str | None = None) -> np.ndarray:
        raise RuntimeError("pyspng: a checksum")

    monkeypatch.setattr(greyscale.pyspng, "load", refuse)
    assert inspect(path, DownloadOptions()) == expected


def test_a_preview_is_made_by_pillow(tmp_path):
    info = inspect(_file(tmp_path, _jpeg()), DownloadOptions(thumbnails=1))
    assert info.thumbnail is not None and info.thumbnail.startswith(b"\xff\xd8")


def test_the_hash_sees_the_picture_not_the_decoder():
    """A copy at another size, and in the other format, hashes as a near duplicate of the JPEG."""
    picture = _picture("RGB", (640, 480))
    hashes = []
    for image, fmt in ((picture, "JPEG"), (picture.resize((320, 240)), "PNG"), (picture, "PNG")):
        out = io.BytesIO()
        image.save(out, fmt)
        data = out.getvalue()
        found = greyscale.header(data)
        assert found is not None
        grey = greyscale.grey(found[0], data)
        assert grey is not None
        hashes.append(phash_of_grey(grey))
    assert max((hashes[0] ^ other).bit_count() for other in hashes[1:]) <= DownloadOptions().near_distance
