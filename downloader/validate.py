"""Decide whether a downloaded file is a whole image worth keeping, and hash what it looks like."""

from __future__ import annotations

import functools
import io
import os
import threading
from pathlib import Path

import numpy as np
from PIL import GifImagePlugin, Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError, WebPImagePlugin

from . import greyscale, pngdata
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


def _lanczos(length: int, size: int = 32, lobes: int = 3) -> np.ndarray:
    """The ``size x length`` matrix that resamples ``length`` pixels to ``size`` with a Lanczos filter weighted as
    Pillow's LANCZOS resize weighs them (its support widened by the reduction factor), in floating point.

    Only the band each output pixel reaches (``lobes`` times the widening on either side of its centre, a fifth of a
    row when reducing) is computed: the filter is zero beyond it. Over the whole matrix a new side length cost
    0.22-0.32 ms (lengths 64-263, one thread), over the bands 0.10 ms; the download benchmark's 2,001 images have
    180 side lengths at the size they are hashed from, and every check worker meets each once (``_hash_side``)."""
    scale = length / size
    stretch = max(scale, 1.0)
    centres = (np.arange(size) + 0.5) * scale
    first = np.floor(centres - lobes * stretch - 0.5).astype(np.intp)  # each row's leftmost pixel that may count
    width = int(np.ceil(2 * lobes * stretch)) + 2
    columns = first[:, None] + np.arange(width)[None, :]
    offsets = ((columns + 0.5) - centres[:, None]) / stretch
    angles = np.pi * offsets
    with np.errstate(divide="ignore", invalid="ignore"):  # sinc(x) * sinc(x / lobes); 1 at x = 0, set below
        band = np.sin(angles) * np.sin(angles / lobes) * lobes / (angles * angles)
    band[offsets == 0] = 1.0
    band[(np.abs(offsets) >= lobes) | (columns < 0) | (columns >= length)] = 0.0
    # Each row's band into a matrix wide enough for every band, then the ``length`` columns that are pixels.
    wide = np.zeros((size, length + 2 * width))
    for row, start in enumerate((first + width).tolist()):
        wide[row, start:start + width] = band[row]
    weights = wide[:, width:width + length]
    return weights / weights.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=1024)
def _hash_side(length: int) -> np.ndarray:
    """The 8 lowest DCT frequencies of the 32-pixel Lanczos resampling of a side of ``length`` pixels: 8 x length."""
    return _dct_rows() @ _lanczos(length)


def phash_of_grey(grey: np.ndarray) -> int:
    """The 64-bit perceptual hash of grey pixels (a 2-D array) as an int: the 8 x 8 lowest frequencies of the DCT of
    their 32 x 32 Lanczos resampling, each bit set when above their median, row by row (the bits of ImageHash's
    ``phash`` but for rounding: here the resampling and the DCT are one pair of matrix products, in floating point)."""
    height, width = grey.shape
    low = (_hash_side(height) @ grey @ _hash_side(width).T).ravel()
    ranked = np.sort(low)
    return int.from_bytes(np.packbits(low > (ranked[31] + ranked[32]) / 2).tobytes(), "big")


def phash_of(image: Image.Image) -> int:
    """Return the 64-bit perceptual hash of ``image`` as an int (``phash_of_grey`` of its pixels).

    A box reduction to 64-127 px first, in the image's own mode (one pass over the full pixels, then the grey
    conversion on the small copy): the hash only sees 32 x 32, and resampling a larger image costs far more.
    JPEG arrives here already at 1/8 scale (draft mode), so both paths hash from about the same size, as do the
    images ``greyscale`` decodes. Palette, bilevel and 16-bit images are made grey first: averaging palette indices
    means nothing.
    """
    source = image if image.mode in _REDUCIBLE else image.convert("L")
    factor = min(source.size) // 64
    small = source.reduce(factor) if factor > 1 else source
    grey = small if small.mode == "L" else small.convert("L")
    return phash_of_grey(np.asarray(grey, dtype=np.float64))


def thumbnail_of(image: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """A JPEG of at most ``side`` pixels a side, from an image already decoded (no second decode)."""
    small = image.copy()
    small.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if small.mode != "RGB":
        small = small.convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


def _decode(image: Image.Image, data: bytes | None, options: DownloadOptions) -> tuple[int, bytes | None]:
    """Decode once; return the perceptual hash and, when asked for, the preview made from the same pixels.

    A PNG of ordinary size is decoded from ``pngdata.stored_copy`` of its file: its image data inflated by ISA-L
    (checked whole there), which Pillow then only copies. A file larger than ``pngdata.MAX_RAW`` is left to Pillow
    as it is: its image data would almost always inflate to more than that.
    """
    if (image.format == "PNG" and data is not None and len(data) <= pngdata.MAX_RAW
            and (stored := pngdata.stored_copy(data)) is not None):
        with Image.open(io.BytesIO(stored), formats=("PNG",)) as copy:
            return _decode_loaded(copy, options)
    return _decode_loaded(image, options)


def _decode_loaded(image: Image.Image, options: DownloadOptions) -> tuple[int, bytes | None]:
    image.load()
    return phash_of(image), (thumbnail_of(image) if options.thumbnails else None)


def _read(path: Path, options: DownloadOptions) -> tuple[bytes | None, bytes]:
    """The whole file if it is at most ``options.max_bytes`` (every download is), else None; and its first 512
    bytes."""
    with path.open("rb", buffering=0) as handle:
        if os.fstat(handle.fileno()).st_size > options.max_bytes:
            return None, handle.read(512)
        data = handle.read()
        return data, data[:512]


def _check_size(fmt: str, width: int, height: int, options: DownloadOptions) -> None:
    """Refuse a decompression bomb, a format not asked for or an image too small, with the reason."""
    if width * height > options.max_pixels:
        raise InvalidImage(f"a decompression bomb: {width}x{height} pixels is over the {options.max_pixels:,} limit")
    if fmt not in options.formats:
        raise UnwantedFormat(f"a {fmt.upper()} image; asked for {', '.join(sorted(options.formats))}")
    min_width, min_height = options.min_size
    if width < min_width or height < min_height:
        raise TooSmall(f"too small: {width}x{height}, the minimum is {min_width}x{min_height}")


def _by_greyscale(data: bytes, options: DownloadOptions) -> ImageInfo | None:
    """``inspect``'s answer for a JPEG or PNG that ``greyscale`` decodes; None where Pillow should decide."""
    found = greyscale.header(data)
    if found is None:
        return None
    fmt, width, height = found
    if Image.MAX_IMAGE_PIXELS and width * height > Image.MAX_IMAGE_PIXELS:
        return None  # Pillow opens it, so that its own decompression bomb check applies as before
    _check_size(fmt, width, height, options)
    try:
        grey = greyscale.grey(fmt, data)
    except ValueError as exc:
        raise InvalidImage(f"a damaged or truncated {fmt.upper()} ({exc})") from exc
    if grey is None:
        return None
    return ImageInfo(fmt, KNOWN[fmt.upper()][1], width, height, phash_of_grey(grey), None)


def inspect(path: Path, options: DownloadOptions) -> ImageInfo:
    """Decode the file at ``path`` fully and return its real format, size and perceptual hash, or raise why not.

    The file is read once. A JPEG or an 8-bit PNG, when no preview is wanted, is decoded by ``greyscale`` in one
    call to libjpeg-turbo or libspng; every other image, and any file those leave alone, by Pillow.
    """
    data, head = _read(path, options)
    if not head:
        raise InvalidImage("empty file")
    text = _looks_like_text(head)
    if text:
        raise InvalidImage(text)
    if data is not None and not options.thumbnails:
        info = _by_greyscale(data, options)
        if info is not None:
            return info
    try:
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; our own max_pixels check below decides.
        image = Image.open(path if data is None else io.BytesIO(data), formats=tuple(KNOWN))
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("not a JPEG, PNG, WebP or GIF image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # cut short within its header, say
        raise InvalidImage(f"a damaged or truncated image ({exc})") from exc
    with image:
        fmt, ext = KNOWN[image.format or ""]
        width, height = image.size
        _check_size(fmt, width, height, options)
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
                    phash, preview = _decode(image, data, options)
            else:
                phash, preview = _decode(image, data, options)
            return ImageInfo(fmt, ext, width, height, phash, preview)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InvalidImage(f"a damaged or truncated {fmt.upper()} ({exc})") from exc
