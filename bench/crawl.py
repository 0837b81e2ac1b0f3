"""Benchmark `flask crawl` on a local site of 2,000 pages and 20,000 images of 20-200 KB, beside Scrapy.

Run: ``.venv/bin/python bench/crawl.py`` (Scrapy from ``bench/.venv-scrapy``: see bench/requirements-scrapy.txt;
``--scrapy PATH`` points elsewhere, ``--skip-scrapy`` leaves it out; ``--browser-pages N`` sizes the browser run).

The site is the test fixture (``tests.fixtures.site``: 2,000 photo pages with 10 images each, galleries, tags,
orphans, the traps) in a child process on 127.0.0.1, its images prepared once into ``--cache`` (20,000 distinct
JPEGs, sizes drawn from 20-200 KB). Politeness delay 0 (``CRAWL_DELAY_SECONDS=0``, robots.txt Crawl-delay 0), no
added latency, other settings at their defaults unless ``--per-host`` is given. It prints:

1. ``http`` mode, the whole command: wall time, pages visited per second, images kept per second, the peak resident
   memory of the crawl process, and its growth between the moment 1,000 pages were visited and the end;
2. ``browser`` mode with two discovery workers (CRAWL_BROWSER_WORKERS=2) on ``--browser-pages`` pages: pages/s;
3. Scrapy with ImagesPipeline (a minimal spider: ``img[src]``, ``a[href]`` and the ``<loc>`` of /sitemap.xml,
   ROBOTSTXT_OBEY, the same depth, Scrapy's default concurrency of 16 requests, 8 per domain): wall time, pages/s
   and images/s from its own stats.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.download import Servers  # noqa: E402

PHOTOS = 2000
EXTRA = 9  # images per photo page besides its photo: 10 per page, 20,000 in all
DEPTH = 3  # the sitemap puts every photo page at depth 1
SCRAPY_DEFAULT = ROOT / "bench" / ".venv-scrapy" / "bin" / "scrapy"
BYTES_PER_PIXEL = 0.43  # measured for these noisy JPEGs at quality 90
_NOISE = np.random.default_rng(7).integers(-24, 25, size=(1200, 1200, 3), dtype=np.int16)

SPIDER = '''
import scrapy


class Site(scrapy.Spider):
    name = "site"
    allowed_domains = ["127.0.0.1"]

    def __init__(self, start=None, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start, start + "sitemap.xml"]  # the sitemap too, as our crawler reads it

    def parse(self, response):
        if b"xml" in response.headers.get("Content-Type", b""):
            for loc in response.xpath("//*[local-name()='loc']/text()").getall():
                yield response.follow(loc.strip(), self.parse)
            return
        yield {"image_urls": [response.urljoin(src) for src in response.css("img::attr(src)").getall()]}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, self.parse)
'''


def keys() -> list[tuple[str, int]]:
    """(key, kilobytes) of the 20,000 images the site's photo pages show."""
    rng = random.Random(13)
    found = []
    for pid in range(PHOTOS):
        found.append((f"p{pid}", rng.randint(20, 200)))
        found += [(f"m{pid}-{k}", rng.randint(20, 200)) for k in range(EXTRA)]
    return found


def make_image(key: str, kb: int) -> bytes:
    """A JPEG of about ``kb`` KB whose perceptual hash is random per key (as the image fixture's are), quickly."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    coeffs = rng.uniform(0.4, 1.0, size=(8, 8)) * rng.choice([-1.0, 1.0], size=(8, 8))
    coeffs[0, 0] = 0.0
    aspect = rng.uniform(0.7, 1.4)
    pixels = kb * 1024 / BYTES_PER_PIXEL
    width = max(64, min(1200, round((pixels * aspect) ** 0.5)))
    height = max(64, min(1200, round(pixels / width)))

    def waves(n: int) -> np.ndarray:
        return np.cos(np.pi * np.outer(np.arange(8), np.arange(n) + 0.5) / n)

    lum = waves(height).T @ coeffs @ waves(width)
    lum = (lum - lum.min()) / (lum.max() - lum.min())
    tint = rng.uniform(0.55, 1.0, size=3)
    y, x = int(rng.integers(0, 1200 - height + 1)), int(rng.integers(0, 1200 - width + 1))
    noisy = 20 + 215 * lum[:, :, None] * tint[None, None, :] + _NOISE[y:y + height, x:x + width]
    out = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _prepare_one(job: tuple[Path, str, int]) -> None:
    folder, key, kb = job
    path = folder / f"{key}.jpg"
    if not path.exists():
        partial = path.with_name(f"{key}.{os.getpid()}.partial")
        partial.write_bytes(make_image(key, kb))
        partial.replace(path)


def prepare(folder: Path) -> tuple[int, int]:
    """Write every image into ``folder`` (once; later runs reuse them); return (count, total bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(folder, key, kb) for key, kb in keys() if not (folder / f"{key}.jpg").exists()]
    if todo:
        print(f"preparing {len(todo)} images in {folder} ...", flush=True)
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_prepare_one, todo, chunksize=50))
    sizes = [(folder / f"{key}.jpg").stat().st_size for key, _ in keys()]
    return len(sizes), sum(sizes)


class SiteProcess(Servers):
    """The fixture site in a child process; stopped by closing its stdin (as the download benchmark's servers)."""

    def __init__(self, images: Path) -> None:  # not Servers.__init__: that would start an image server
        command = [sys.executable, "-m", "tests.fixtures.site", "--photos", str(PHOTOS), "--extra", str(EXTRA),
                   "--image-dir", str(images)]
        self.child = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.child.stdout is not None
        self.url, self.other = self.child.stdout.readline().split()


class Watch:
    """Sample a process tree's resident memory and the crawl's visited pages (from its state file) every 0.1 s."""

    def __init__(self, pid: int, state: Path | None) -> None:
        self.process, self.state = psutil.Process(pid), state
        self.peak = 0
        self.at_1000: int | None = None
        self.last = 0
        self.started = time.perf_counter()
        self.visited = 0
        self.visited_at = 0.0  # seconds from the start to the last page visited: discovery's own time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _visited(self) -> int:
        if self.state is None or not self.state.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=1) as db:
                return int(db.execute("SELECT COUNT(*) FROM crawl_pages WHERE status = 'visited'").fetchone()[0])
        except sqlite3.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.process.memory_info().rss
                rss += sum(child.memory_info().rss for child in self.process.children(recursive=True)
                           if "chrom" not in child.name())
            except psutil.Error:
                break
            if not rss:  # the command has exited and is not yet reaped: a zombie reports no memory
                break
            self.peak = max(self.peak, rss)
            self.last = rss
            visited = self._visited()
            if visited > self.visited:
                self.visited, self.visited_at = visited, time.perf_counter() - self.started
            if self.at_1000 is None and visited >= 1000:
                self.at_1000 = rss
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def crawl_env(work: Path, site: SiteProcess, per_host: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWL_", "GUARD_"))}
    env.update(SECRET_KEY="bench", SCHEDULER="off", ALLOW_PRIVATE_URLS="off", LOG_LEVEL="WARNING",
               DATABASE_URL=f"sqlite:///{work}/app.sqlite3", GUARD_TRUSTED_HOSTS=site.url.split("/")[2],
               CRAWL_DELAY_SECONDS="0", CRAWL_BROWSER_WORKERS="2")
    if per_host:
        env["CRAWL_PER_HOST"] = str(per_host)
    return env


def ours(site: SiteProcess, work: Path, render: str, max_pages: int, per_host: int | None) -> dict:
    out = work / f"out-{render}"
    command = [str(ROOT / ".venv" / "bin" / "flask"), "--app", str(ROOT / "app.py"), "crawl", site.url, str(out),
               "-n", "100000", "--max-pages", str(max_pages), "--depth", str(DEPTH), "--render", render]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=crawl_env(work, site, per_host), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    watch = Watch(child.pid, out / "crawl-state.sqlite3")
    stdout, stderr = child.communicate(timeout=3600)
    seconds = time.perf_counter() - started
    watch.stop()
    if child.returncode != 0:
        raise SystemExit(f"flask crawl failed ({child.returncode}): {stderr[-2000:]}")
    with sqlite3.connect(out / "crawl-state.sqlite3") as db:
        pages = db.execute("SELECT COUNT(*) FROM crawl_pages WHERE status = 'visited'").fetchone()[0]
        images = db.execute("SELECT COUNT(*) FROM crawl_images WHERE status = 'saved'").fetchone()[0]
    return {"seconds": seconds, "pages": pages, "images": images, "pages_seconds": watch.visited_at or seconds,
            "peak_mb": watch.peak / 1e6,
            "at_1000_mb": (watch.at_1000 or 0) / 1e6, "end_mb": watch.last / 1e6, "summary": stdout.strip()}


def scrapy(site: SiteProcess, work: Path, binary: Path) -> dict:
    spider = work / "spider.py"
    spider.write_text(SPIDER, encoding="utf-8")
    store = work / "scrapy-images"
    command = [str(binary), "runspider", str(spider), "-a", f"start={site.url}", "-s", f"IMAGES_STORE={store}",
               "-s", "ITEM_PIPELINES={\"scrapy.pipelines.images.ImagesPipeline\": 1}", "-s", "ROBOTSTXT_OBEY=True",
               "-s", f"DEPTH_LIMIT={DEPTH}", "-s", "LOG_LEVEL=INFO", "-s", "TELNETCONSOLE_ENABLED=False"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    stats = done.stderr

    def stat(name: str) -> int:
        found = re.search(rf"'{re.escape(name)}': (\d+)", stats)
        return int(found.group(1)) if found else 0

    images = stat("file_status_count/downloaded")
    pages = stat("response_received_count") - images - stat("robotstxt/response_count")
    return {"seconds": seconds, "pages": pages, "images": images, "returncode": done.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "aid-crawl-bench-images")
    parser.add_argument("--scrapy", type=Path, default=SCRAPY_DEFAULT)
    parser.add_argument("--skip-scrapy", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--browser-pages", type=int, default=300)
    parser.add_argument("--per-host", type=int, default=None, help="CRAWL_PER_HOST for our runs (default: 2)")
    args = parser.parse_args()
    count, total = prepare(args.cache)
    print(f"site: {PHOTOS} photo pages, {count} images, {total / count / 1024:.0f} KB on average; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, dict] = {}
    site = SiteProcess(args.cache)
    with tempfile.TemporaryDirectory(prefix="aid-crawl-bench-") as tmp, site:
        work = Path(tmp)
        http = results["http"] = ours(site, work, "http", 5000, args.per_host)
        print(f"http:    {http['seconds']:.1f} s, {http['pages']} pages visited in {http['pages_seconds']:.1f} s "
              f"({http['pages'] / http['pages_seconds']:.0f} pages/s),"
              f" {http['images']} images kept ({http['images'] / http['seconds']:.0f} images/s); peak"
              f" {http['peak_mb']:.0f} MB, {http['at_1000_mb']:.0f} MB at 1,000 pages, {http['end_mb']:.0f} MB at"
              f" the end (growth {http['end_mb'] - http['at_1000_mb']:.0f} MB)", flush=True)
        if not args.skip_browser:
            browser = results["browser"] = ours(site, work, "browser", args.browser_pages, args.per_host)
            print(f"browser: {browser['seconds']:.1f} s, {browser['pages']} pages visited in "
                  f"{browser['pages_seconds']:.1f} s ({browser['pages'] / browser['pages_seconds']:.1f} pages/s, 2 "
                  f"browsers, their start included), {browser['images']} images kept", flush=True)
        if not args.skip_scrapy:
            peer = results["scrapy"] = scrapy(site, work, args.scrapy)
            print(f"scrapy:  {peer['seconds']:.1f} s, {peer['pages']} pages ({peer['pages'] / peer['seconds']:.0f} "
                  f"pages/s), {peer['images']} images ({peer['images'] / peer['seconds']:.0f} images/s)"
                  f"{'' if peer['returncode'] == 0 else ' (exit ' + str(peer['returncode']) + ')'}", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
