"""A list of image URLs as an image source: a text file or an http(s) URL (URL_LIST), one image URL a line.

No browser is involved: the list is read once per job, then handed out in order like an engine's results. Blank
lines and lines starting with ``#`` are skipped, and so is anything that is not an http(s) URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from .candidate import Candidate
from .engine import BLOCK_STATUSES, EngineRun
from .errors import EngineBlocked, EngineTimeout

log = logging.getLogger(__name__)

NAME = "urls"
MAX_LIST_BYTES = 5 * 1024 * 1024  # about 50,000 URLs; a larger list is refused, not truncated
CHUNK_BYTES = 64 * 1024


def parse(text: str) -> tuple[list[Candidate], int]:
    """The list's image URLs as Candidates, in order, and how many lines were skipped as not http(s) URLs."""
    found: list[Candidate] = []
    skipped = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = urlsplit(line)
        if parts.scheme.lower() in ("http", "https") and parts.hostname and not any(c.isspace() for c in line):
            found.append(Candidate(image_url=line, source=NAME))
        else:
            skipped += 1
    return found, skipped


def read(location: str, timeout: float, deadline: Callable[[], float]) -> str:
    """The text of the list at `location` (an http(s) URL, a file:// URL or a path), at most MAX_LIST_BYTES."""
    if not location:
        raise ValueError("URL_LIST is not set: name a text file or an http(s) URL of image URLs")
    scheme = urlsplit(location).scheme.lower()
    if scheme in ("http", "https"):
        data = _download(location, timeout, deadline)
    else:
        path = Path(unquote(urlsplit(location).path)) if scheme == "file" else Path(location)
        with path.open("rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
    if len(data) > MAX_LIST_BYTES:
        raise ValueError(f"URL_LIST is larger than {MAX_LIST_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def _download(url: str, timeout: float, deadline: Callable[[], float]) -> bytes:
    data = bytearray()
    try:
        with requests.get(url, timeout=(timeout, timeout), stream=True) as response:
            if response.status_code in BLOCK_STATUSES:
                raise EngineBlocked(f"HTTP {response.status_code} on the URL list")
            response.raise_for_status()
            for chunk in response.iter_content(CHUNK_BYTES):
                data += chunk
                if len(data) > MAX_LIST_BYTES:
                    break
                if time.monotonic() >= deadline():
                    raise EngineTimeout("timeout")
    except requests.Timeout as exc:
        raise EngineTimeout("timeout") from exc
    except requests.ConnectionError as exc:
        raise ConnectionError(f"could not load the URL list from {urlsplit(url).netloc}") from exc
    return bytes(data)


def results(location: str, *, page_timeout: float, deadline: Callable[[], float]) -> EngineRun:
    """Yield the list's image URLs in order; return why it stopped. `deadline` is the round's time.monotonic()."""
    remaining = deadline() - time.monotonic()
    if remaining <= 0:
        raise EngineTimeout("timeout")
    found, skipped = parse(read(location, max(1.0, min(page_timeout, remaining)), deadline))
    if skipped:
        log.warning("urls: %d lines of the list are not http(s) URLs and were skipped", skipped)
    if not found:
        return "ran dry: the list has no image URLs"
    yield from found
    return f"ran dry after {len(found)} URLs of the list" + (f" ({skipped} lines skipped)" if skipped else "")
