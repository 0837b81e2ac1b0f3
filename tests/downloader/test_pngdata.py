"""PNG image data inflated by ISA-L and handed to Pillow stored: the very pixels Pillow decodes from the file itself,
and every truncated or corrupt file refused."""

from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from downloader import greyscale, pngdata
from downloader.errors import InvalidImage
from downloader.options import DownloadOptions
from downloader.validate import inspect
from tests.fixtures.images import render


def _save(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    found, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        found.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return found


def _interlaced_rgb(width: int, height: int) -> tuple[bytes, np.ndarray]:
    """An Adam7-interlaced 8-bit RGB PNG (Pillow writes none) and its pixels."""
    pixels = np.random.default_rng(7).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    rows = []
    for x, dx, y, dy in pngdata._ADAM7:
        part = pixels[y::dy, x::dx]
        if part.size:
            rows += [b"\x00" + row.tobytes() for row in part]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    data = pngdata.SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
    return data + _chunk(b"IEND", b""), pixels


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


@functools.cache
def _images() -> dict[str, bytes]:
    rgb = Image.open(io.BytesIO(render("pngdata", "png")))
    rgb.load()
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 3
    return {
        "RGB (the image server's)": render("pngdata", "png"),
        "RGBA": _save(rgb.convert("RGBA")),
        "L": _save(rgb.convert("L")),
        "LA": _save(rgb.convert("LA")),
        "P with transparency": _save(palette),
        "1-bit": _save(rgb.convert("1")),
        "16-bit grey": _save(Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)),
        "odd width, level 9": _save(rgb.crop((0, 0, 333, 101)), compress_level=9),
        "Adam7 interlaced": _interlaced_rgb(37, 29)[0],
    }


@pytest.mark.parametrize("name", list(_images()))
def test_the_stored_copy_decodes_to_the_same_pixels(name):
    data = _images()[name]
    stored = pngdata.stored_copy(data)
    assert stored is not None
    assert all(kind != b"IDAT" or body[:2] == b"\x78\x01" for kind, body in _chunks(stored))  # stored, not inflated
    mine, pillows = _decoded(stored), _decoded(data)
    assert (mine.mode, mine.size, mine.info.get("transparency")) == (pillows.mode, pillows.size,
                                                                     pillows.info.get("transparency"))
    assert mine.tobytes() == pillows.tobytes()


def test_an_interlaced_file_decodes_to_its_pixels():
    data, pixels = _interlaced_rgb(37, 29)
    assert np.array_equal(np.asarray(_decoded(pngdata.stored_copy(data))), pixels)


def test_the_stored_copy_is_a_valid_png():
    """Its checksums hold: zlib inflates the stored stream, and every chunk's CRC matches."""
    data = render("pngdata-valid", "png")
    stored = pngdata.stored_copy(data)
    chunks = _chunks(stored)
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    assert zlib.decompress(idat) == zlib.decompress(b"".join(body for kind, body in _chunks(data) if kind == b"IDAT"))
    pos = 8
    while pos < len(stored):
        length, kind = struct.unpack_from(">I4s", stored, pos)
        assert zlib.crc32(stored[pos + 4:pos + 8 + length]) == struct.unpack_from(">I", stored, pos + 8 + length)[0]
        pos += 12 + length


def _rebuilt(data: bytes, idat: bytes | None = None, between: bytes = b"") -> bytes:
    """``data`` with its IDAT chunks replaced by one holding ``idat`` (default: its own data), ``between`` after it."""
    chunks = _chunks(data)
    own = b"".join(body for kind, body in chunks if kind == b"IDAT")
    head = b"".join(_chunk(kind, body) for kind, body in chunks if kind not in (b"IDAT", b"IEND"))
    return pngdata.SIGNATURE + head + _chunk(b"IDAT", own if idat is None else idat) + between + _chunk(b"IEND", b"")


@pytest.mark.parametrize(("cut", "words"), [
    (lambda data: data[:len(data) // 2], "the file ends in the middle of its image data"),
    (lambda data: data[:40], "the file ends"),
    (lambda data: _rebuilt(data, zlib.compress(b"\x00" * 100)), "holds 100 of the"),
    (lambda data: _rebuilt(data, zlib.compress(_raw(data))[:-40]), "cut short"),
    (lambda data: _rebuilt(data, _flipped(zlib.compress(_raw(data)))), "corrupt image data"),
])
def test_truncated_and_corrupt_image_data_is_refused(cut, words):
    with pytest.raises(pngdata.DamagedPNG, match=words):
        pngdata.stored_copy(cut(render("pngdata-cut", "png")))


def _raw(data: bytes) -> bytes:
    return zlib.decompress(b"".join(body for kind, body in _chunks(data) if kind == b"IDAT"))


def _flipped(stream: bytes) -> bytes:
    damaged = bytearray(stream)
    damaged[-2] ^= 0xFF  # the checksum
    return bytes(damaged)


def test_data_beyond_the_image_is_ignored_as_pillow_does():
    data = render("pngdata-extra", "png")
    longer = _rebuilt(data, zlib.compress(_raw(data) + b"\x00" * 5000))
    assert _decoded(pngdata.stored_copy(longer)).tobytes() == _decoded(data).tobytes()


def test_image_data_split_by_another_chunk_is_refused_as_pillow_refuses_it():
    data = render("pngdata-split", "png")
    stream = zlib.compress(_raw(data))
    split = _rebuilt(data, stream[:100], _chunk(b"tEXt", b"k\x00v") + _chunk(b"IDAT", stream[100:]))
    with pytest.raises(pngdata.DamagedPNG, match="cut short"):
        pngdata.stored_copy(split)
    with pytest.raises(OSError, match="truncated"):
        _decoded(split)


@pytest.mark.parametrize("case", ["animation", "too large"])
def test_what_it_does_not_handle_is_left_to_pillow(case, monkeypatch):
    data = render("pngdata-other", "png")
    if case == "animation":
        data = _rebuilt(data, between=_chunk(b"fcTL", b"\x00" * 26))
    else:
        monkeypatch.setattr(pngdata, "MAX_RAW", 1000)
    assert pngdata.stored_copy(data) is None


def test_inspect_refuses_a_corrupt_png_with_its_reason(tmp_path):
    data = render("pngdata-inspect", "png")
    path = tmp_path / "download.part"
    path.write_bytes(_rebuilt(data, _flipped(zlib.compress(_raw(data)))))
    with pytest.raises(InvalidImage, match=r"a damaged or truncated PNG \(corrupt image data"):
        inspect(path, DownloadOptions())


def test_inspect_hashes_a_png_as_pillow_alone_does(tmp_path, monkeypatch):
    path = tmp_path / "download.part"
    path.write_bytes(render("pngdata-hash", "png", kb=150))
    fast = inspect(path, DownloadOptions(thumbnails=True))
    monkeypatch.setattr(pngdata, "stored_copy", lambda data: None)
    assert inspect(path, DownloadOptions(thumbnails=True)) == fast


def test_inspect_leaves_a_png_over_the_limit_to_pillow(tmp_path, monkeypatch):
    path = tmp_path / "download.part"
    path.write_bytes(render("pngdata-large", "png"))
    expected = inspect(path, DownloadOptions())
    monkeypatch.setattr(pngdata, "MAX_RAW", path.stat().st_size - 1)
    assert greyscale.grey("png", path.read_bytes()) is None  # no stored copy: Pillow streams it
    assert inspect(path, DownloadOptions()) == expected
