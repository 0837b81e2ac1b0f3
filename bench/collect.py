"""Benchmark the collector on the local Bing fixture: browser start, 500 candidates, peak memory of the browser.

Run: .venv/bin/python bench/collect.py [--runs 3]
Targets: 500 candidates (browser start included) <= 15 s; browser start alone <= 3 s.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scraper import Collector, browser  # noqa: E402
from tests.fixtures.engines import start_engines  # noqa: E402

WANT = 500


class PeakRss:
    """Sample the summed RSS of the given processes' trees in a thread and keep the peak."""

    def __init__(self, pids_of) -> None:
        self.pids_of, self.peak, self.peak_uss, self._stop = pids_of, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            rss = uss = 0
            for pid in self.pids_of():
                try:
                    info = psutil.Process(pid).memory_full_info()
                except psutil.Error:
                    continue
                rss, uss = rss + info.rss, uss + info.uss
            self.peak, self.peak_uss = max(self.peak, rss), max(self.peak_uss, uss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def bench_start() -> float:
    began = time.perf_counter()
    started = browser.start()
    elapsed = time.perf_counter() - began
    started.quit()
    return elapsed


def bench_collect(urls: dict[str, str], sample: bool = False) -> tuple[float, int, int, int]:
    """Time one job of WANT candidates; with `sample`, also sample memory (which slows the job: 2 cores)."""
    collector = Collector(
        "red panda",
        sources=["bing"],
        base_urls=urls,
        safe_search=True,
        chrome_bin="/usr/bin/chromium",
        chromedriver="/usr/bin/chromedriver",
        timeout=60,
    )
    with PeakRss(lambda: collector.browser_pids if sample else ()) as peak:
        began = time.perf_counter()
        with collector:
            got = len(collector.collect(WANT))
        elapsed = time.perf_counter() - began
    return elapsed, got, peak.peak, peak.peak_uss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engines = start_engines("http://127.0.0.1:9")
    try:
        starts = [bench_start() for _ in range(args.runs)]
        runs = [bench_collect(engines.urls) for _ in range(args.runs)]
        memory = bench_collect(engines.urls, sample=True)
    finally:
        engines.stop()
    version = browser.chromium_major_version("/usr/bin/chromium")
    print(f"chromium {version}, {psutil.cpu_count()} cpus, {args.runs} runs")
    print(f"browser start:            best {min(starts):.2f} s, worst {max(starts):.2f} s  (target <= 3 s)")
    print(f"{WANT} candidates from Bing: best {min(r[0] for r in runs):.2f} s, worst {max(r[0] for r in runs):.2f} s"
          f"  (target <= 15 s; browser start included; got {min(r[1] for r in runs)})")
    print(f"the same job while sampling memory every 50 ms: {memory[0]:.2f} s")
    rss, uss = memory[2] / 2**20, memory[3] / 2**20
    print(f"peak memory of Chromium (all processes) + chromedriver: RSS summed {rss:.0f} MiB (counts shared pages"
          f" once per process), USS summed {uss:.0f} MiB (private memory only)")


if __name__ == "__main__":
    main()
