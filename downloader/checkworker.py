"""One check worker: a child process that checks downloaded files for the pool in ``checks.py``.

Run as ``python -m downloader.checkworker``: it imports Pillow, NumPy and the decoders, says it is ready, then reads
one request a line on stdin (JSON: the file's path and the filters) and writes one answer a line on stdout (the
image's format, size and perceptual hash, or why it is refused), until its stdin closes. It imports nothing else:
not the pool's asyncio, subprocess and threads, nor the rest of the package (about 0.1 s of CPU a worker, at the
start of every stage that starts workers).

``--siblings R:W,R:W`` (file descriptors the pool passes on): once its imports are done, the worker forks one sibling
per pair, which serves requests from R and answers on W instead of stdin and stdout. A sibling starts with the
imports already made, which saved 0.2-0.4 s of CPU a sibling on the download benchmark's machine. The worker reaps its
siblings as they end, and waits for them before it ends itself, so that their CPU time is counted in its parent's.
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

    answers.write(json.dumps({"ready": True, "pid": os.getpid()}).encode() + b"\n")
    answers.flush()
    for line in requests:
        answers.write(json.dumps(answer_to(json.loads(line))).encode() + b"\n")
        answers.flush()


def sibling_pipes(argv: list[str]) -> list[tuple[int, int]]:
    """The (requests, answers) file descriptors of ``--siblings R:W,R:W`` in ``argv``; [] without it."""
    if len(argv) != 2 or argv[0] != "--siblings":
        return []
    return [(int(read), int(write)) for read, write in (pair.split(":") for pair in argv[1].split(","))]


def fork_siblings(pipes: list[tuple[int, int]]) -> list[int]:
    """Fork one sibling per pair of ``pipes``; return their pids (in a sibling: [], its pipes now its stdin and
    stdout). Every descriptor of ``pipes`` is closed in the worker and in each sibling but as its own stdin and
    stdout. A fork that fails leaves that pair's pipes closed: the pool sees no "ready" and starts a worker anew."""
    import threading  # already imported, by logging

    children: list[int] = []
    descriptors = [fd for pair in pipes for fd in pair]
    if threading.active_count() == 1:  # forking is safe only with no other thread (no decoder starts one here)
        signal.signal(signal.SIGCHLD, _reap_siblings)
        for requests_fd, answers_fd in pipes:
            try:
                pid = os.fork()
            except OSError as exc:
                logger.warning("could not start a sibling check worker: %s", exc)
                break
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.dup2(requests_fd, 0)
                os.dup2(answers_fd, 1)
                for fd in descriptors:
                    os.close(fd)
                return []
            children.append(pid)
    for fd in descriptors:
        os.close(fd)
    return children


def _reap_siblings(*_signal: object) -> None:
    """Wait for every sibling that has ended (on SIGCHLD), so that none stays a zombie while this worker serves."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_for_siblings(seconds: float = 10.0) -> None:
    """At the worker's end: wait up to ``seconds`` for its siblings, which end as their stdin closes (at the same
    time as this worker's), so that their CPU time goes to this worker's parent with this worker's."""
    import time

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes our stdin
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from . import validate  # noqa: F401  (before the forks: every sibling starts with it imported)

    siblings = fork_siblings(sibling_pipes(sys.argv[1:]))
    serve(sys.stdin.buffer, sys.stdout.buffer)
    if siblings:
        wait_for_siblings()
    # Every answer is written and flushed, and a worker holds nothing else: skip the interpreter's teardown (about
    # 0.1 s with Pillow and NumPy loaded), which the parent would otherwise wait for at its own exit.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    _main()
