"""The grey pixels of a JPEG or an 8-bit PNG straight from its bytes, for the check and the perceptual hash.

Pillow decodes through layers of Python (each file opened, parsed marker by marker, loaded 64 KB at a time) and its
own PNG row filters, byte by byte. For the two formats nearly every download is, this module reads the header
itself and makes one call to a decoder in C: libjpeg-turbo (``simplejpeg``) decodes a JPEG straight into grey at
1/2-1/8 scale (it still reads every byte of the entropy-coded data, so a file cut short is refused), and a PNG's
image data, inflated and checked whole by ``pngdata`` (ISA-L), is unfiltered by libspng (``pyspng``), which does
it with SIMD. On the download benchmark's images a whole check (``validate.inspect``) took 1.61-1.80 ms per JPEG and
1.95-2.96 ms per PNG this way, against 2.30-2.59 and 2.71-3.06 ms through Pillow (four rounds of 900 of each, the two
codes alternating, one thread).

Anything else (a CMYK JPEG, a palette or 16-bit PNG, an animation, an image too large for ``pngdata``, a header
either library refuses) is left to Pillow: ``header`` or ``grey`` returns None, and Pillow's answer stands.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import pyspng
import simplejpeg
from PIL import Image

from . import pngdata

JPEG_START = b"\xff\xd8\xff"
# Colour spaces libjpeg-turbo turns into grey itself (Adobe RGB and CMYK JPEGs are Pillow's).
_JPEG_GREY_FROM = frozenset({"Gray", "YCbCr"})
# libjpeg's warnings that mean the image data is incomplete or corrupt. Any other warning (extraneous bytes before
# a marker, an unknown JFIF revision) is harmless, and the image is kept, as Pillow keeps it.
_DAMAGED_JPEG = re.compile(r"premature end|bad huffman|bad arithmetic|instead of RST", re.IGNORECASE)
_PNG_COLOURS = frozenset({0, 2, 4, 6})  # grey, RGB, grey and alpha, RGBA: libspng gives the same pixels as Pillow
_HASH_SIDE = 64  # the smaller side a PNG is box-reduced to (at least) before hashing; JPEG is decoded at about that


def header(data: bytes) -> tuple[str, int, int] | None:
    """``(format, width, height)`` of a JPEG or an 8-bit grey, RGB or RGBA PNG this module decodes, else None."""
    if data.startswith(JPEG_START):
        try:
            height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
        except ValueError:
            return None
        return ("jpeg", width, height) if colourspace in _JPEG_GREY_FROM else None
    if data.startswith(pngdata.SIGNATURE) and len(data) >= 33 and data[12:16] == b"IHDR":
        width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
        if depth == 8 and colour in _PNG_COLOURS and width and height:
            return "png", width, height
    return None


def grey(fmt: str, data: bytes) -> np.ndarray | None:
    """The image's grey pixels (2-D, float), its smaller side at least 64 (and under 128 for a PNG larger than
    that); None where Pillow should decode it. Raise ValueError when the image is cut short or damaged."""
    return _jpeg(data) if fmt == "jpeg" else _png(data)


def _jpeg(data: bytes) -> np.ndarray:
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=_HASH_SIDE, min_width=_HASH_SIDE)
    except ValueError as exc:  # strict: a warning raises too; only those that mean damage refuse the file
        if _DAMAGED_JPEG.search(str(exc)):
            raise
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=_HASH_SIDE, min_width=_HASH_SIDE,
                                        strict=False)
    return pixels[:, :, 0].astype(np.float64)


def _png(data: bytes) -> np.ndarray | None:
    stored = pngdata.stored_copy(data)  # DamagedPNG (a ValueError) when the image data is cut short or corrupt
    if stored is None:
        return None
    try:
        if data[25] == 2:
            # RGB as RGBX, 4 bytes a pixel as Pillow keeps RGB: Pillow then uses libspng's pixels where they are
            # (an RGB array it would copy and repack, 0.3 ms of a benchmark PNG's 1.05 ms after the inflate). The
            # same pixels, box averages and grey as RGB: the filler byte counts for nothing.
            pixels = pyspng.load(stored, format="RGBA")
            image = Image.frombuffer("RGBX", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGBX", 0, 1)
        else:
            image = Image.fromarray(pyspng.load(stored))
    except RuntimeError:  # whatever else libspng refuses (a chunk's checksum, say): Pillow decides, with its reasons
        return None
    factor = min(image.size) // _HASH_SIDE
    small = image.reduce(factor) if factor > 1 else image
    return np.asarray(small if small.mode == "L" else small.convert("L"), dtype=np.float64)
