"""One check worker: a child process that checks downloaded files for the pool in ``checks.py``.

Run as ``python -m downloader.checkworker``: it imports Pillow, NumPy and the decoders, says it is ready, then reads
one request a line on stdin (JSON: the file's path and the filters) and writes one answer a line on stdout (the
image's format, size and perceptual hash, or why it is refused), until its stdin closes. It imports nothing else:
not the pool's asyncio, subprocess and threads, nor the rest of the package (about 0.1 s of CPU a worker, at the
start of every stage that starts workers).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DownloadError, InvalidImage, TooSmall, UnwantedFormat
from .options import DownloadOptions

logger = logging.getLogger(__name__)

# The refusals an answer names; any other DownloadError is answered as one.
REFUSALS: dict[str, type[DownloadError]] = {
    cls.__name__: cls for cls in (DownloadError, InvalidImage, TooSmall, UnwantedFormat)
}


def answer_to(request: dict[str, Any]) -> dict[str, Any]:
    """Check one file (in a worker); every outcome, a bug included, is an answer."""
    from .validate import inspect  # Pillow and NumPy: imported by serve() before the worker says it is ready

    fields = {key: value for key, value in request.items() if key != "path"}
    try:
        info = inspect(Path(request["path"]), DownloadOptions(**{**fields, "formats": frozenset(fields["formats"])}))
    except DownloadError as exc:
        kind = type(exc).__name__ if type(exc).__name__ in REFUSALS else "DownloadError"
        return {"refused": {"kind": kind, "reason": exc.reason}}
    except FileNotFoundError:  # its stage ended (and removed its files) while this request waited in the pipe
        logger.debug("no file to check at %s: its download stage has ended", request.get("path"))
        return {"refused": {"kind": "DownloadError", "reason": "the downloaded file was gone before its check"}}
    except Exception as exc:  # a bug must cost one image, not the worker
        logger.exception("unexpected error checking %s", request.get("path"))
        return {"refused": {"kind": "DownloadError", "reason": f"unexpected error ({type(exc).__name__}); see the log"}}
    thumbnail = base64.b64encode(info.thumbnail).decode("ascii") if info.thumbnail else None
    return {"info": {"format": info.format, "ext": info.ext, "width": info.width, "height": info.height,
                     "phash": info.phash, "thumbnail": thumbnail}}


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker's loop: one JSON request a line in, one JSON answer a line out, until ``requests`` ends.

    Pillow and NumPy, which make a worker slow to start, are imported before it says it is ready.
    """
    from . import validate  # noqa: F401

    answers.write(b'{"ready": true}\n')
    answers.flush()
    for line in requests:
        answers.write(json.dumps(answer_to(json.loads(line))).encode() + b"\n")
        answers.flush()


def _main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes our stdin
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    serve(sys.stdin.buffer, sys.stdout.buffer)
    # Every answer is written and flushed, and a worker holds nothing else: skip the interpreter's teardown (about
    # 0.1 s with Pillow and NumPy loaded), which the parent would otherwise wait for at its own exit.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    _main()
