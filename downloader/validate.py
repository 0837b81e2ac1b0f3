"""Decide whether a downloaded file is a whole image worth keeping, and hash what it looks like."""

from __future__ import annotations

import functools
import io
import threading
from pathlib import Path

import numpy as np
from PIL import GifImagePlugin, Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError, WebPImagePlugin

from . import pngdata
from .errors import InvalidImage, TooSmall, UnwantedFormat
from .options import DownloadOptions
from .records import ImageInfo

# Pillow's format name -> (our format name, file extension). Only these decoders are ever tried.
KNOWN = {"JPEG": ("jpeg", "jpg"), "PNG": ("png", "png"), "WEBP": ("webp", "webp"), "GIF": ("gif", "gif")}
# Their plugins, imported here: otherwise the first Image.open imports every plugin Pillow has (about 90 modules).
_PLUGINS = (JpegImagePlugin, PngImagePlugin, WebPImagePlugin, GifImagePlugin)
# Full decodes of large non-JPEG images take width x height x 4 bytes: few at a time keeps memory bounded.
_LARGE_PIXELS = 8_000_000
_LARGE_DECODES = threading.BoundedSemaphore(2)
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr"})  # modes whose pixels can be averaged
THUMBNAIL_SIDE = 128  # pixels, the longer side of a preview


def _looks_like_text(head: bytes) -> str | None:
    start = head.lstrip()[:256].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in start:
        return "an HTML page, not an image"
    if start.startswith((b"<?xml", b"<svg")):
        return "an XML or SVG document, not a raster image"
    if start.startswith((b"{", b"[")):
        return "a JSON document, not an image"
    return None


@functools.cache
def _dct_rows(size: int = 32, keep: int = 8) -> np.ndarray:
    """The first ``keep`` rows of the unnormalised DCT-II matrix (as scipy.fftpack.dct computes it)."""
    k = np.arange(keep)[:, None]
    n = np.arange(size)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))


def phash_of(image: Image.Image) -> int:
    """Return the 64-bit perceptual hash of ``image`` as an int: the bits of ImageHash's ``phash``, row by row.

    The 8 x 8 lowest frequencies of the DCT of a 32 x 32 grey thumbnail, each bit set when above their median;
    two small matrix products instead of SciPy's FFT (whose import alone costs more than a thousand hashes).
    """
    # A box reduction to 64-127 px first, in the image's own mode (one pass over the full pixels, then the grey
    # conversion on the small copy): the hash only sees 32 x 32, and Lanczos from a larger size costs far more.
    # JPEG arrives here already at 1/8 scale (draft mode), so both paths hash from about the same size.
    # Palette, bilevel and 16-bit images are made grey first: averaging palette indices means nothing.
    source = image if image.mode in _REDUCIBLE else image.convert("L")
    factor = min(source.size) // 64
    small = source.reduce(factor) if factor > 1 else source
    grey = small if small.mode == "L" else small.convert("L")
    pixels = np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    rows = _dct_rows()
    low = rows @ pixels @ rows.T
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def thumbnail_of(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """A JPEG of at most ``side`` pixels a side, from an image already decoded (no second decode)."""
    small = image.copy()
    small.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if small.mode != "RGB":
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


def _decode(image: Image.Image, path: Path, options: DownloadOptions) -> tuple[int, bytes | None]:
    """Decode once; return the perceptual hash and, when asked for, the preview made from the same pixels.

    A PNG of ordinary size is decoded from ``pngdata.stored_copy`` of its file: its image data inflated by ISA-L
    (checked whole there), which Pillow then only copies. A file larger than ``pngdata.MAX_RAW`` is left to Pillow
    without being read whole first: its image data would almost always inflate to more than that.
    """
    if (image.format == "PNG" and path.stat().st_size <= pngdata.MAX_RAW
            and (stored := pngdata.stored_copy(path.read_bytes())) is not None):
        with Image.open(io.BytesIO(stored), formats=("PNG",)) as copy:
            return _decode_loaded(copy, options)
    return _decode_loaded(image, options)


def _decode_loaded(image: Image.Image, options: DownloadOptions) -> tuple[int, bytes | None]:
    image.load()
    return phash_of(image), (thumbnail_of(image) if options.thumbnails else None)


def inspect(path: Path, options: DownloadOptions) -> ImageInfo:
    """Decode the file at ``path`` fully and return its real format, size and perceptual hash, or raise why not."""
    with path.open("rb") as handle:
        head = handle.read(512)
    if not head:
        raise InvalidImage("empty file")
    text = _looks_like_text(head)
    if text:
        raise InvalidImage(text)
    try:
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; our own max_pixels check below decides.
        image = Image.open(path, formats=tuple(KNOWN))
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not a JPEG, PNG, WebP or GIF image") from exc
    with image:
        fmt, ext = KNOWN[image.format or ""]
        width, height = image.size
        if width * height > options.max_pixels:
            raise InvalidImage(
                f"a decompression bomb: {width}x{height} pixels is over the {options.max_pixels:,} limit"
            )
        if fmt not in options.formats:
            raise UnwantedFormat(f"a {fmt.upper()} image; asked for {', '.join(sorted(options.formats))}")
        min_width, min_height = options.min_size
        if width < min_width or height < min_height:
            raise TooSmall(f"too small: {width}x{height}, the minimum is {min_width}x{min_height}")
        try:
            if fmt == "jpeg":
                # Decoding at 1/8 scale still reads every byte (truncation is caught) and is 10x faster; in colour
                # (at the preview's size) only when a preview is wanted.
                if options.thumbnails:
                    image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                else:
                    image.draft("L", (64, 64))
            if fmt != "jpeg" and width * height > _LARGE_PIXELS:
                with _LARGE_DECODES:
                    phash, preview = _decode(image, path, options)
            else:
                phash, preview = _decode(image, path, options)
            return ImageInfo(fmt, ext, width, height, phash, preview)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InvalidImage(f"a damaged or truncated {fmt.upper()} ({exc})") from exc
