"""Download, validate and de-duplicate images: candidates in, N good unique images and a zip out.

Public surface::

    from downloader import DownloadOptions, download_images, write_zip, DownloadResult, ImageRecord, Failure

    options = DownloadOptions.from_config(app.config, formats={"jpeg", "png"}, min_width=0, min_height=0)
    result = download_images(more, want, out_dir, options, progress=None, should_stop=None)
    size = write_zip(result, out_dir, zip_path)

- ``more(k)`` returns up to ``k`` new candidates (objects with ``image_url``, ``page_url``, ``title``, ``source``),
  ``[]`` when there are no more. It is only ever called from the calling thread.
- ``download_images`` fetches on one asyncio event loop (per-host limits, timeouts, back-off by cause that honours
  Retry-After, a size cap while streaming, at most 5 redirects), refuses non-public addresses unless
  ALLOW_PRIVATE_URLS, decodes every file with Pillow (for stages of 50 images or more in the check worker processes
  of ``checks.py``), drops exact (SHA-256) and near (perceptual hash) duplicates keeping the larger, and stops at N,
  when candidates run out, at the stage deadline, or when ``should_stop()`` is true. Images land in
  ``out_dir/images/0001.<real extension>`` in search-rank order; ``progress(delivered, want)`` is called from the
  calling thread. The result lists ``images`` (ImageRecord), ``failures`` (Failure: url, reason, kind),
  ``shortfall`` and ``shortfall_reason`` (a sentence for the user), and ``candidates_seen``.
- ``write_zip`` writes one result's images (ZIP_STORED), ``metadata.jsonl``, ``manifest.csv``, ``failures.csv`` and
  ``ATTRIBUTION.txt``; ``write_reports`` writes the two CSV files into ``out_dir``.
- ``write_dataset(Dataset(images=[DatasetImage(path, label, query, record, licence, credit)], failures=[...],
  split=None | "80/20" | "80/10/10", layout="imagefolder" | "webdataset"), zip_path)`` writes several classes:
  ``[<split>/]<class>/<number>.<ext>`` with a ``metadata.jsonl`` per split folder (torchvision ``ImageFolder`` and
  Hugging Face ``imagefolder`` at once), or WebDataset shards ``[<split>/]shard-000000.tar``; everything streamed.

Errors: one URL's problem is never raised; it becomes a Failure whose reason comes from this family::

    DownloadError                 reason (plain words), kind (summary bucket)
     +-- BlockedURL               not http(s), or the host resolves to a non-public address
     +-- FetchError               HTTP error status, timeout, reset, truncation, too many redirects
     |    +-- TooLarge            over MAX_IMAGE_BYTES
     +-- InvalidImage             HTML, empty, truncated or damaged, a decompression bomb
          +-- TooSmall            under the minimum width or height
          +-- UnwantedFormat      a format the user did not ask for

``download_images`` itself raises ValueError for a bad ``want``, OSError when ``out_dir`` cannot be written, and
lets an exception from ``more`` propagate unchanged (it belongs to the collector).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .candidates import CandidateLike, ListedURL
    from .dataset import LAYOUTS, LICENCE_FIELDS, SPLITS, Dataset, DatasetFailure, DatasetImage
    from .errors import (
        BlockedURL,
        DownloadError,
        FetchError,
        InvalidImage,
        NotForAI,
        TooLarge,
        TooSmall,
        UnwantedFormat,
    )
    from .options import DownloadOptions
    from .package import failures_csv, manifest_csv, write_dataset, write_reports, write_zip
    from .records import DownloadResult, Failure, ImageRecord
    from .stage import download_images

# Each public name is imported from its module on first use, so that importing one part of the package (a check
# worker imports only ``checkworker`` and ``validate``; `flask fetch --help` only the options) loads no other: the
# stage pulls in urllib3 and asyncio, the packaging zipfile and csv, the worker Pillow and NumPy.
_HOMES = {
    "candidates": ("CandidateLike", "ListedURL"),
    "dataset": ("LAYOUTS", "LICENCE_FIELDS", "SPLITS", "Dataset", "DatasetFailure", "DatasetImage"),
    "errors": ("BlockedURL", "DownloadError", "FetchError", "InvalidImage", "NotForAI", "TooLarge", "TooSmall",
               "UnwantedFormat"),
    "options": ("DownloadOptions",),
    "package": ("failures_csv", "manifest_csv", "write_dataset", "write_reports", "write_zip"),
    "records": ("DownloadResult", "Failure", "ImageRecord"),
    "stage": ("download_images",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


__all__ = [
    "LAYOUTS",
    "LICENCE_FIELDS",
    "SPLITS",
    "BlockedURL",
    "CandidateLike",
    "Dataset",
    "DatasetFailure",
    "DatasetImage",
    "DownloadError",
    "DownloadOptions",
    "DownloadResult",
    "Failure",
    "FetchError",
    "ImageRecord",
    "InvalidImage",
    "ListedURL",
    "NotForAI",
    "TooLarge",
    "TooSmall",
    "UnwantedFormat",
    "download_images",
    "failures_csv",
    "manifest_csv",
    "write_dataset",
    "write_reports",
    "write_zip",
]
