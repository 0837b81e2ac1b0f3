"""Benchmark downloads: `flask fetch` beside img2dataset on the same local servers and URL lists, and the stage alone.

Run: ``.venv/bin/python bench/download.py`` (img2dataset from ``bench/.venv``: see bench/requirements.txt;
``--img2dataset PATH`` points elsewhere, ``--skip-peer`` leaves it out).

Every server is the test image server (``tests.fixtures.images``) in a child process on 127.0.0.1; rendered images
are kept in ``--cache`` between runs and every URL is fetched once before timing, so no figure pays for rendering.
The checkout's bytecode is compiled first, as pip compiles an installed package such as img2dataset (where
PYTHONDONTWRITEBYTECODE is set, nothing else would write it).
In one run it prints:

1. 500 URLs on one host, 10% broken (404, 500, truncated, reset, HTML), no added latency: the whole
   ``flask --app app fetch`` command beside the whole ``img2dataset`` command (``--processes_count 2
   --thread_count 64``, no resizing, no re-encoding), wall time of each and the ratio, in ``--rounds`` rounds (3
   by default) that alternate the two commands, then the median of each command's times and their ratio: on this
   virtual machine one command's time moves by a fifth or more from one run to the next;
2. the same with 2,000 URLs over 16 hosts (ports) and 50 +- 50 ms added to every response;
3. the download stage alone (``download_images``, in this process, with the app's default options) on 500 good
   URLs under 50 host names, twice: first while its check workers start (as in a fresh process), then with them
   running (as in an app after its first job); beside the raw-fetch ceiling of the same server (the same URLs
   with urllib3 and 32 threads, bodies thrown away), with the peak resident memory of the stage (this process and
   its check workers), and of the whole ``flask fetch`` commands (their process tree);
4. the floor the checks set: the CPU time of checking (decoding and hashing, ``downloader.validate.inspect``) the
   2,000-URL list's good images once each, in one thread; with the CPU time the image server (on the same CPUs)
   spent answering our run, the least wall time any run that checks them can take on this machine's CPUs,
   beside what twice img2dataset's speed would need;
5. how long ``flask --app app fetch --help`` takes to start (best of 5).

``--work DIR`` puts the runs' images under DIR (default: ``bench/.work`` in the checkout, as the app writes its
jobs under ``instance/data`` in it; ``--work /tmp`` for the system's temporary folder). Creating files costs CPU
too, and how much depends on the folder: on this machine, /tmp cost 0.6-1.6 ms of system CPU per 200 KB file
created against 0.1-0.2 ms in the checkout's folder, on the same ext4 disk.

``--warm-pages MB`` writes and deletes MB megabytes in the work folder just before each of the two whole commands
(default 0: not done). On this virtual machine, memory freed more than a few seconds earlier is handed back to the
host, and the first touch of it again costs several times as much CPU (345 MB written to /dev/shm: 0.50-0.59 s of
CPU the first time, 0.14 s right after); warming shows how much of each command's time that is.

Beside each figure: the CPU time spent (user + system; the commands' whole process trees, the stage's own process
per image), which stays meaningful when other work loads the machine, and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import compileall
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from downloader import DownloadOptions, ListedURL, download_images  # noqa: E402
from tests.fixtures.images import cached_render  # noqa: E402

THREADS = 32
STAGE_HOSTS = 50
BROKEN = ("/fault/404?{i}", "/fault/500.jpg?{i}", "/fault/truncated.jpg?{i}", "/fault/reset.jpg?{i}",
          "/fault/html.jpg?{i}")
PEER_DEFAULT = ROOT / "bench" / ".venv" / "bin" / "img2dataset"


def image_paths(count: int, prefix: str = "bench") -> list[tuple[str, str, int]]:
    """(key, ext, kb) of ``count`` distinct JPEG and PNG images of 55-390 KB."""
    rng = random.Random(4)
    return [(f"{prefix}{i}", "jpg" if i % 2 else "png", rng.randint(55, 390)) for i in range(count)]


def url_paths(count: int, broken_share: float) -> list[str]:
    """``count`` paths; every 1/broken_share-th is a broken one, the faults taken in turn."""
    every = round(1 / broken_share) if broken_share else 0
    paths, goods = [], iter(image_paths(count))
    for i in range(count):
        if every and i % every == every - 1:
            paths.append(BROKEN[(i // every) % len(BROKEN)].format(i=i))
        else:
            key, ext, kb = next(goods)
            paths.append(f"/img/{key}.{ext}?kb={kb}")
    return paths


def prerender(cache: Path, count: int) -> None:
    """Render every image the runs use into the cache, in as many processes as there are CPUs."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = image_paths(count)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_render_one, [(cache, key, ext, kb) for key, ext, kb in todo], chunksize=20))


def _render_one(job: tuple[Path, str, str, int]) -> None:
    cache, key, ext, kb = job
    cached_render(cache, key, ext, kb)


class Servers:
    """The image server on ``ports`` ports in a child process; stopped by closing its stdin."""

    def __init__(self, cache: Path, ports: int = 1, latency: float = 0.0, jitter: float = 0.0) -> None:
        command = [sys.executable, "-m", "tests.fixtures.images", "--ports", str(ports), "--cache", str(cache),
                   "--latency", str(latency), "--jitter", str(jitter)]
        self.child = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.child.stdout is not None
        self.urls = self.child.stdout.readline().split()

    def cpu(self) -> float:
        """CPU seconds (user + system) the server process has spent so far."""
        times = psutil.Process(self.child.pid).cpu_times()
        return times.user + times.system

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        try:
            self.child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait(timeout=10)


def raw_fetch(urls: list[str]) -> float:
    """Fetch every URL with THREADS threads and urllib3, bodies thrown away; return the seconds taken."""
    pool = urllib3.PoolManager(maxsize=THREADS, retries=False, timeout=urllib3.Timeout(connect=5, read=30))

    def get(url: str) -> int:
        try:
            response = pool.request("GET", url, preload_content=False)
            size = sum(len(chunk) for chunk in response.stream(65536))
            response.release_conn()
            return size
        except urllib3.exceptions.HTTPError:  # the broken URLs break on purpose
            return 0

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as workers:
        list(workers.map(get, urls))
    return time.perf_counter() - started


class PeakRSS:
    """Sample the resident memory of a process (and its children) every 10 ms in a background thread."""

    def __init__(self, pid: int | None = None, children: bool = True, exclude: frozenset[int] = frozenset()) -> None:
        self.process = psutil.Process(pid or os.getpid())
        self.children = children
        self.exclude = exclude  # child processes not to count (the image server, beside the stage's own workers)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tree: list[psutil.Process] = []
        listed = 0.0
        while not self._stop.is_set():
            if self.children and time.monotonic() - listed > 0.25:  # listing children walks /proc: not every time
                try:
                    tree = [child for child in self.process.children(recursive=True) if child.pid not in self.exclude]
                except psutil.Error:
                    tree = []
                listed = time.monotonic()
            total = 0
            for process in (self.process, *tree):
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self._stop.wait(0.01)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak / 1e6


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process and its waited-for descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def run_timed(
    command: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Run ``command``; return its wall seconds, peak MB and CPU seconds of its process tree, and the process."""
    cpu = children_cpu()
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = PeakRSS(child.pid)
    out, err = child.communicate(timeout=900)
    seconds = time.perf_counter() - started
    peak = memory.stop()
    return seconds, peak, children_cpu() - cpu, subprocess.CompletedProcess(command, child.returncode, out, err)


def app_env(work: Path) -> dict[str, str]:
    return dict(
        os.environ,
        SECRET_KEY="bench",
        SCHEDULER="off",
        ALLOW_PRIVATE_URLS="on",
        DATABASE_URL=f"sqlite:///{work}/bench.sqlite3",
        DATA_DIR=str(work / "data"),
        MAIL_OUTBOX=str(work / "outbox"),
        LOG_LEVEL="WARNING",
    )


def ours_fetch(urls: list[str], work: Path) -> tuple[float, float, float, int]:
    """Run ``flask --app app fetch`` on ``urls``; return seconds, peak MB, CPU seconds and the images delivered."""
    listing = work / "ours.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = work / "ours-out"
    flask = [str(ROOT / ".venv" / "bin" / "flask"), "--app", str(ROOT / "app.py"), "fetch", str(listing), str(out)]
    seconds, peak, cpu, done = run_timed(flask, app_env(work), work)
    if done.returncode != 0:
        raise SystemExit(f"flask fetch failed: {done.stderr[-2000:]}")
    return seconds, peak, cpu, len(list((out / "images").iterdir()))


def peer_fetch(peer: Path, urls: list[str], work: Path) -> tuple[float, float, float, int]:
    """Run img2dataset on ``urls`` (no resizing, no re-encoding); return seconds, peak MB, CPU s and images."""
    listing = work / "peer.txt"
    listing.write_text("\n".join(urls) + "\n", encoding="utf-8")
    out = work / "peer-out"
    command = [str(peer), "--url_list", str(listing), "--input_format", "txt", "--output_folder", str(out),
               "--output_format", "files", "--processes_count", "2", "--thread_count", "64", "--resize_mode", "no",
               "--disable_all_reencoding", "True", "--retries", "0", "--timeout", "10", "--enable_wandb", "False"]
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", WANDB_MODE="disabled", HOME=str(work))
    seconds, peak, cpu, done = run_timed(command, env, work)
    if done.returncode != 0:
        raise SystemExit(f"img2dataset failed: {done.stderr[-2000:]}")
    images = [p for p in out.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".jpeg", ".webp")]
    return seconds, peak, cpu, len(images)


def warm_pages(folder: Path, megabytes: int) -> None:
    """Write and delete ``megabytes`` MB in ``folder``, so the command after it finds that much memory just used."""
    if megabytes <= 0:
        return
    block = bytes(1 << 20)
    scratch = folder / "warm-pages.bin"
    with scratch.open("wb") as out:
        for _ in range(megabytes):
            out.write(block)
    scratch.unlink()


def compare(
    label: str, urls: list[str], peer: Path | None, server: Servers, warm_mb: int, rounds: int
) -> tuple[float, float | None]:
    """Run both whole commands ``rounds`` times, alternating (each after ``warm_pages(warm_mb)``); print every
    round's figures and, over several rounds, the median of each command's seconds and their ratio. Return the image
    server's median CPU seconds while ours ran, and img2dataset's median seconds (None without it)."""
    ours_runs: list[float] = []
    peer_runs: list[float] = []
    served_runs: list[float] = []
    for round_number in range(1, rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bench-download-") as folder:
            work = Path(folder)
            raw_fetch(urls)  # warm-up: every image is in the server's memory
            warm_pages(work, warm_mb)
            served = server.cpu()
            ours_s, ours_mb, ours_cpu, ours_n = ours_fetch(urls, work)
            served = server.cpu() - served
            ours_runs.append(ours_s)
            served_runs.append(served)
            line = (f"{label}{f', round {round_number} of {rounds}' if rounds > 1 else ''}: flask fetch "
                    f"{ours_s:.2f} s ({ours_n} images, peak {ours_mb:.0f} MB, CPU {ours_cpu:.2f} s, "
                    f"the image server's CPU {served:.2f} s, {load()})")
            if peer is not None:
                warm_pages(work, warm_mb)
                peer_served = server.cpu()
                peer_s, peer_mb, peer_cpu, peer_n = peer_fetch(peer, urls, work)
                peer_served = server.cpu() - peer_served
                peer_runs.append(peer_s)
                line += (f"; img2dataset {peer_s:.2f} s ({peer_n} images, peak {peer_mb:.0f} MB, CPU {peer_cpu:.2f} "
                         f"s, the image server's CPU {peer_served:.2f} s, {load()}); {peer_s / ours_s:.2f}x")
            print(line, flush=True)
    if rounds > 1:
        summary = f"{label}, median of {rounds} rounds: flask fetch {statistics.median(ours_runs):.2f} s"
        if peer_runs:
            summary += (f"; img2dataset {statistics.median(peer_runs):.2f} s; "
                        f"{statistics.median(peer_runs) / statistics.median(ours_runs):.2f}x")
        print(summary, flush=True)
    return statistics.median(served_runs), statistics.median(peer_runs) if peer_runs else None


def check_floor(cache: Path, count: int, served: float, peer_s: float | None) -> None:
    """Print the CPU time the checks of ``count`` good images cost in one thread and, with the image server's CPU
    time while it served our run (``served``), the least wall time a run that checks them can take here."""
    from downloader.validate import inspect

    options = DownloadOptions.from_config({}, allow_private=True)
    good = sum(1 for path in url_paths(count, 0.1) if path.startswith("/img/"))  # the list's first images, in order
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        files = []
        for i, (key, ext, kb) in enumerate(image_paths(count)[:good]):
            files.append(Path(folder) / f"{i}.{ext}")
            files[-1].write_bytes(cached_render(cache, key, ext, kb))
        cpu = {"jpg": 0.0, "png": 0.0}
        for file in files:
            started = time.process_time()
            inspect(file, options)
            cpu[file.suffix[1:]] += time.process_time() - started
    total, cpus = sum(cpu.values()), os.cpu_count() or 1
    jpegs = sum(1 for file in files if file.suffix == ".jpg")
    line = (f"checks alone, the {len(files)} good images of the 2,000-URL list, one thread: CPU {total:.2f} s "
            f"({1000 * cpu['jpg'] / max(1, jpegs):.2f} ms per JPEG, "
            f"{1000 * cpu['png'] / max(1, len(files) - jpegs):.2f} ms per PNG); with the image server's "
            f"{served:.2f} s, on {cpus} CPUs no run that checks them takes less than {(total + served) / cpus:.2f} s")
    if peer_s is not None:
        line += f"; twice img2dataset's speed would need {peer_s / 2:.2f} s in all"
    print(line + f" ({load()})", flush=True)


def stage_alone(server: Servers, count: int, label: str) -> None:
    base = server.urls[0]
    port = int(base.rsplit(":", 1)[1])
    paths = [f"/img/{key}.{ext}?kb={kb}" for key, ext, kb in image_paths(count)]
    raw_fetch([base + path for path in paths])
    raw = raw_fetch([base + path for path in paths])
    candidates = [ListedURL(f"http://h{i % STAGE_HOSTS:02d}.bench:{port}{path}") for i, path in enumerate(paths)]
    queue = iter(candidates)
    options = DownloadOptions.from_config({}, allow_private=True, resolver=lambda host, port: ["127.0.0.1"],
                                          deadline=600)  # the app's defaults: 64 threads, check workers
    with tempfile.TemporaryDirectory(prefix="bench-stage-") as folder:
        # This process and the stage's check workers; not the image server, which is a child process too.
        memory = PeakRSS(exclude=frozenset({server.child.pid}))
        started, cpu = time.perf_counter(), time.process_time()
        workers_cpu = checks_cpu()
        result = download_images(lambda k: [c for _, c in zip(range(k), queue, strict=False)], count, Path(folder),
                                 options)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        cpu += checks_cpu() - workers_cpu
        peak = memory.stop()
    print(f"stage alone, {label}, {count} images on {STAGE_HOSTS} host names, no latency: "
          f"{len(result.images) / seconds:.0f} img/s ({len(result.images)} in {seconds:.2f} s, "
          f"{len(result.failures)} refused; CPU {1000 * cpu / max(1, len(result.images)):.2f} ms per image with the "
          f"{options.check_workers} check workers', {load()}); raw-fetch ceiling {count / raw:.0f} img/s; "
          f"peak RSS {peak:.0f} MB", flush=True)


def checks_cpu() -> float:
    """CPU seconds (user + system) the running check workers of this process have spent so far."""
    from downloader.checks import _shared

    total = 0.0
    for pid in _shared.pids if _shared is not None else []:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def compile_bytecode() -> None:
    """Byte-compile the checkout, as pip does for an installed package (img2dataset's is): where
    PYTHONDONTWRITEBYTECODE is set (this machine's shell sets it), every ``flask fetch`` and check worker would
    otherwise compile our modules from source each time they start."""
    started = time.perf_counter()
    skip = re.compile(r"[/\\](\.venv|\.git|instance|cassandra-run|\.work)[/\\]")
    done = compileall.compile_dir(ROOT, quiet=1, rx=skip)
    print(f"bytecode of the checkout compiled in {time.perf_counter() - started:.1f} s"
          f"{'' if done else ' (some files failed)'}; PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}", flush=True)


def start_time() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-start-") as folder:
        flask = [str(ROOT / ".venv" / "bin" / "flask"), "--app", str(ROOT / "app.py"), "fetch", "--help"]
        best = min(run_timed(flask, app_env(Path(folder)), Path(folder))[0] for _ in range(5))
    print(f"flask --app app fetch --help: {best:.2f} s (best of 5, {load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img2dataset", type=Path, default=PEER_DEFAULT)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "aid-bench-images")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / ".work",
                        help="where the runs write their images (default: bench/.work in the checkout)")
    parser.add_argument("--rounds", type=int, default=3, metavar="N",
                        help="run each whole-command comparison N times, alternating the two tools (default 3)")
    parser.add_argument("--warm-pages", type=int, default=0, metavar="MB",
                        help="write and delete MB megabytes in the work folder before each whole command")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(args.work)  # every run's folder is made (and removed) in it
    peer = None if args.skip_peer else args.img2dataset
    if peer is not None and not peer.exists():
        raise SystemExit(f"no img2dataset at {peer}: see bench/requirements.txt, or pass --skip-peer")
    warming = f", {args.warm_pages} MB written and deleted there before each whole command" if args.warm_pages else ""
    print(f"download bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at start, images written under {tempfile.gettempdir()}{warming}",
          flush=True)
    started = time.perf_counter()
    prerender(args.cache, 2000)
    print(f"images rendered or found in {args.cache} in {time.perf_counter() - started:.0f} s", flush=True)
    compile_bytecode()
    with Servers(args.cache) as one:
        compare("500 URLs, one host, 10% broken, no latency", [one.urls[0] + p for p in url_paths(500, 0.1)], peer, one,
                args.warm_pages, args.rounds)
        stage_alone(one, 500, "the first in a new process (its check workers starting)")
        stage_alone(one, 500, "a later one (the check workers running, as in an app after its first job)")
    with Servers(args.cache, ports=16, latency=0.05, jitter=0.05) as many:
        paths = url_paths(2000, 0.1)
        urls = [many.urls[i % len(many.urls)] + path for i, path in enumerate(paths)]
        served, peer_s = compare("2,000 URLs, 16 hosts, 10% broken, 50 +- 50 ms", urls, peer, many,
                                  args.warm_pages, args.rounds)
    check_floor(args.cache, 2000, served, peer_s)
    start_time()
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)


if __name__ == "__main__":
    main()
