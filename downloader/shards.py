"""Write WebDataset tar shards: ``<key>.<ext>`` and ``<key>.json`` per image, a new shard every N images or bytes.

Each shard is streamed into an open (binary, write-only) file object, so a shard inside a zip never sits in
memory: ``tarfile`` in stream mode (``w|``) writes headers and copies each image in chunks.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable
from typing import IO

from .dataset import Entry

SHARD_IMAGES = 1000
SHARD_BYTES = 1_000_000_000  # 1 GB, the usual advice for a tar shard
_BLOCK = tarfile.BLOCKSIZE


def shard_name(number: int, part: str | None = None) -> str:
    """``shard-000000.tar``, under the split folder when there is one."""
    name = f"shard-{number:06d}.tar"
    return f"{part}/{name}" if part else name


def _member_bytes(size: int) -> int:
    """What one member costs in the tar: its header block plus its data padded to whole blocks."""
    return _BLOCK + -(-size // _BLOCK) * _BLOCK


def plan_shards(entries: Iterable[Entry], max_images: int = SHARD_IMAGES,
                max_bytes: int = SHARD_BYTES) -> list[tuple[str, list[Entry]]]:
    """Group entries into shards per split part, in order: at most ``max_images`` and about ``max_bytes`` each."""
    shards: list[tuple[str, list[Entry]]] = []
    current: dict[str | None, tuple[list[Entry], int]] = {}
    counters: dict[str | None, int] = {}
    for entry in entries:
        cost = _member_bytes(entry.image.path.stat().st_size) + _member_bytes(len(sample_json(entry)))
        batch, used = current.get(entry.part, ([], 0))
        if batch and (len(batch) >= max_images or used + cost > max_bytes):
            batch, used = [], 0
        if not batch:
            number = counters.get(entry.part, 0)
            counters[entry.part] = number + 1
            shards.append((shard_name(number, entry.part), batch))
        batch.append(entry)
        current[entry.part] = (batch, used + cost)
    return shards


def sample_json(entry: Entry) -> bytes:
    """The ``<key>.json`` of one sample: the metadata row, with the key and the image's member name."""
    row = {"key": entry.key, **entry.metadata(f"{entry.key}.{entry.ext}"), "split": entry.part}
    return json.dumps(row, ensure_ascii=False, sort_keys=False).encode("utf-8")


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0  # fixed mtime: the same images give the same shard bytes
    return info


def write_shard(out: IO[bytes], entries: Iterable[Entry]) -> int:
    """Stream one shard into ``out``; return how many samples it holds."""
    written = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            with entry.image.path.open("rb") as image:
                tar.addfile(_info(f"{entry.key}.{entry.ext}", entry.image.path.stat().st_size), image)
            data = sample_json(entry)
            tar.addfile(_info(f"{entry.key}.json", len(data)), io.BytesIO(data))
            written += 1
    return written


def write_shards(open_member: Callable[[str], IO[bytes]], entries: Iterable[Entry], max_images: int = SHARD_IMAGES,
                 max_bytes: int = SHARD_BYTES) -> list[str]:
    """Write every shard through ``open_member(name)`` (a context manager giving a writable file); return the names."""
    names = []
    for name, batch in plan_shards(entries, max_images, max_bytes):
        with open_member(name) as out:
            write_shard(out, batch)
        names.append(name)
    return names
