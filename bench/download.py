"""Benchmark the download stage against the local image server, beside the raw-fetch ceiling of the same server.

Run: ``.venv/bin/python bench/download.py [--count 500] [--latency 0 0.05]``

The image server runs in its own process (as a real server would), serving 500 generated JPEG and PNG images of
50-400 KB under 50 host names (a resolver seam maps them all to 127.0.0.1, so the per-host cap of 4 applies as it
would on the web). For each added latency it measures, in the same run:

- the raw-fetch ceiling: the same URLs fetched with the same number of threads and plain requests sessions, bodies
  read and thrown away (no per-host cap, no checks);
- our stage: ``download_images`` (fetch, stream to disk, decode, hash, de-duplicate, rename) plus ``write_zip``;
- the peak resident memory of this process during our stage.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from downloader import DownloadOptions, download_images, write_zip  # noqa: E402
from downloader.validate import phash_of  # noqa: E402
from scraper.candidate import Candidate  # noqa: E402

HOSTS = 50
THREADS = 32


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    """Start the image server in a child process; return it and its base URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.images", "--latency", str(latency)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return child, child.stdout.readline().strip()


def stop_server(child: subprocess.Popen) -> None:
    child.stdin.close()  # the server stops when its stdin closes
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)


def paths(count: int) -> list[str]:
    rng = random.Random(4)
    return [f"/img/bench{i}.{'jpg' if i % 2 else 'png'}?kb={rng.randint(55, 390)}" for i in range(count)]


def raw_fetch(urls: list[str]) -> tuple[float, int]:
    """Fetch every URL with THREADS threads and plain sessions; return seconds and total bytes."""
    local = threading.local()

    def get(url: str) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.get(url, timeout=(5, 30))
        response.raise_for_status()
        return len(response.content)

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        total = sum(pool.map(get, urls))
    return time.perf_counter() - started, total


class PeakRSS:
    """Sample this process's resident memory every 10 ms in a background thread."""

    def __init__(self) -> None:
        self.process = psutil.Process(os.getpid())
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def ours(base: str, url_paths: list[str]) -> dict:
    port = int(base.rsplit(":", 1)[1])
    candidates = [
        Candidate(image_url=f"http://h{i % HOSTS:02d}.bench:{port}{path}", source="bench")
        for i, path in enumerate(url_paths)
    ]
    queue = iter(candidates)
    options = DownloadOptions(
        threads=THREADS, per_host=4, allow_private=True, resolver=lambda host, port: ["127.0.0.1"], deadline=600
    )
    with tempfile.TemporaryDirectory(prefix="bench-download-") as folder, PeakRSS() as memory:
        out = Path(folder)
        started = time.perf_counter()
        result = download_images(
            lambda k: [c for _, c in zip(range(k), queue, strict=False)], len(candidates), out, options
        )
        stage = time.perf_counter() - started
        size = write_zip(result, out, out / "bench.zip")
        total = time.perf_counter() - started
    return {
        "images": len(result.images),
        "failures": len(result.failures),
        "stage": stage,
        "total": total,
        "zip_mb": size / 1e6,
        "peak_mb": memory.peak / 1e6,
        "bytes": sum(image.bytes for image in result.images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    args = parser.parse_args()
    url_paths = paths(args.count)
    # A long-running app pays for importing SciPy's DCT (inside imagehash) once; so does the bench, before timing.
    phash_of(Image.new("RGB", (64, 64)))
    print(
        f"download bench: {args.count} images (JPEG and PNG) on {HOSTS} host names, {THREADS} threads, "
        f"4 per host, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    for latency in args.latency:
        child, base = start_server(latency)
        try:
            urls = [base + path for path in url_paths]
            raw_fetch(urls)  # warm-up: the server generates and caches every image once
            raw_seconds, raw_bytes = raw_fetch(urls)
            measured = ours(base, url_paths)
        finally:
            stop_server(child)
        sizes = f"mean {raw_bytes / len(urls) / 1024:.0f} KB"
        print(
            f"latency {latency * 1000:.0f} ms ({sizes}): "
            f"raw fetch ceiling {len(urls) / raw_seconds:.0f} img/s ({raw_bytes / raw_seconds / 1e6:.0f} MB/s); "
            f"ours {measured['images'] / measured['total']:.0f} img/s "
            f"(stage {measured['stage']:.2f} s + zip {measured['total'] - measured['stage']:.2f} s, "
            f"{measured['images']} delivered, {measured['failures']} refused); "
            f"peak RSS {measured['peak_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
