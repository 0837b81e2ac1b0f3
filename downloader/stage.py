"""Turn candidates into N valid, unique images on disk: concurrent, polite, bounded by a deadline."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .candidates import CandidateLike
from .checks import checker, previewer
from .client import Client
from .duplicates import Copy, Duplicates
from .errors import DownloadError
from .eventloop import EventLoopThread, Mailbox
from .fetch import Fetched, Fetcher, host_key
from .guard import Guard, check_url
from .hosts import Hosts
from .options import DownloadOptions
from .records import DownloadResult, Failure, ImageInfo, ImageRecord

logger = logging.getLogger(__name__)

IMAGES_DIR = "images"
THUMBNAILS_DIR = "thumbnails"  # previews of the first images (options.thumbnails), made once the stage has them
MAX_CANDIDATES_PER_IMAGE = 10  # a collector that only yields junk is not asked for ever
# Downloaded files waiting for their check, beyond the downloads in flight: the fetches run ahead of the checks (on
# disk, not in memory), so that a slow answer or a retry's pause overlaps the checking instead of coming after it.
MAX_AWAITING_CHECK = 256
RANK_GRACE_SECONDS = 5.0  # once N images are in, how long better-ranked downloads in flight may still take
_PARTS_DIR = ".parts"
_OURS = re.compile(r"^\d{4,}\.(jpg|png|webp|gif)$")
_LABELS = {  # failure kind -> words in the shortfall sentence
    "broken": "broken links",
    "blocked": "blocked addresses",
    "not_image": "not images or damaged",
    "too_small": "too small",
    "filtered": "in formats not asked for",
    "too_large": "too large",
    "noai": "asked not to be used for AI",
    "duplicate": "duplicates",
    "unfinished": "unfinished",
}


@dataclass
class _Task:
    index: int
    candidate: CandidateLike
    host: str

    @property
    def url(self) -> str:
        return self.candidate.image_url


@dataclass
class _Done:
    task: _Task
    part: Path
    fetched: Fetched | None = None
    info: ImageInfo | None = None
    error: DownloadError | None = None

    def copy(self) -> Copy:
        """The facts the duplicate check needs about this checked image."""
        assert self.fetched is not None and self.info is not None
        area = self.info.width * self.info.height
        return Copy(self.task.index, self.task.url, self.fetched.sha256, self.info.phash, area)


async def _work(
    task: _Task, fetcher: Fetcher, parts: Path, check: Callable[[Path, Executor], Awaitable[ImageInfo]],
    checking: Executor, downloaded: Callable[[int], None],
) -> _Done:
    """Download one candidate and check it, on the stage's event loop (the check itself runs in a worker process,
    or in a ``checking`` thread); ``downloaded(index)`` says when the download is over and the check begins.
    Failures come back as data."""
    done = _Done(task, parts / f"{task.index}.part")
    try:
        with done.part.open("wb") as out:
            done.fetched = await fetcher.fetch(task.url, out, referer=task.candidate.page_url)
        downloaded(task.index)
        done.info = await check(done.part, checking)
    except DownloadError as exc:
        done.error = exc
    except Exception as exc:  # a bug must cost one image, not the whole job
        logger.exception("unexpected error downloading %s", task.url)
        done.error = DownloadError(f"unexpected error ({type(exc).__name__}); see the log")
    if done.error is not None:
        done.part.unlink(missing_ok=True)
    return done


class _Stage:
    """The state of one run of download_images; everything here runs in the calling thread."""

    def __init__(
        self,
        more: Callable[[int], Sequence[CandidateLike]],
        want: int,
        out_dir: Path,
        options: DownloadOptions,
        progress: Callable[[int, int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.more = more
        self.want = want
        self.out_dir = out_dir
        self.options = options
        self.progress = progress
        self.should_stop = should_stop
        self.result = DownloadResult(want=want)
        self.deadline_at = time.monotonic() + options.deadline
        self.pending: deque[_Task] = deque()
        self.in_flight: dict[int, _Task] = {}  # rank -> the task being downloaded or checked
        self.fetching: set[int] = set()  # the ranks of those still being downloaded
        self.busy: Counter[str] = Counter()  # host -> its downloads in flight (politeness counts no checks)
        self.hosts = Hosts(options.per_host, options.per_host_max)
        self.seen_urls: set[str] = set()
        self.exhausted = False
        self.capped = False
        self.duplicates = Duplicates(options.near_distance)
        self.kept: dict[int, _Done] = {}  # rank -> the checked download, for every copy the duplicates keep
        self.reported = -1
        self.check = checker(options, want)  # in a check worker process, or in a thread of this process
        self.preview = previewer(options, want)  # the same way, for the first images kept, at the end

    # -- candidates ---------------------------------------------------------------------------------------------

    def ask(self, count: int) -> None:
        """Take up to ``count`` more candidates from the collector; note when it has no more to give."""
        limit = MAX_CANDIDATES_PER_IMAGE * self.want + 100
        if self.result.candidates_seen >= limit:
            self.exhausted = self.capped = True
            return
        found = list(self.more(min(count, limit - self.result.candidates_seen)) or [])
        fresh = 0
        for candidate in found:
            index = self.result.candidates_seen
            self.result.candidates_seen += 1
            url = candidate.image_url
            if url in self.seen_urls:
                self.fail(url, "the same URL as an earlier result", "duplicate")
                continue
            self.seen_urls.add(url)
            fresh += 1
            try:
                check_url(url)
            except DownloadError as exc:
                self.fail(url, exc.reason, exc.kind)
                continue
            self.pending.append(_Task(index, candidate, host_key(url)))
        if not fresh:  # nothing new: asking again would loop forever
            self.exhausted = True

    def fail(self, url: str, reason: str, kind: str) -> None:
        self.result.failures.append(Failure(url, reason, kind))

    # -- scheduling ---------------------------------------------------------------------------------------------

    def dispatch(self, runner: EventLoopThread, fetcher: Fetcher, parts: Path, checking: Executor) -> None:
        remaining = self.want - len(self.kept)
        # Enough in flight to cover the failures we expect, not so many that we fetch far more than asked.
        wanted = max(4, 2 * remaining)
        fetches = min(self.options.threads, wanted)
        tasks = min(fetches + MAX_AWAITING_CHECK, wanted)
        now = time.monotonic()
        skipped: deque[_Task] = deque()
        full: set[str] = set()  # hosts seen busy or held in this pass: their other tasks need no second look
        started: list[_Task] = []
        while self.pending and len(self.fetching) < fetches and len(self.in_flight) < tasks:
            task = self.pending.popleft()
            if task.host in full or not self.hosts.ready(task.host, self.busy[task.host], now):
                full.add(task.host)
                skipped.append(task)
                continue
            self.busy[task.host] += 1
            self.in_flight[task.index] = task
            self.fetching.add(task.index)
            started.append(task)
        self.pending.extendleft(reversed(skipped))  # skipped ones keep their place in the queue
        if started:  # one wake-up of the loop for the whole batch
            put = self.finished.put
            runner.start([_work(task, fetcher, parts, self.check, checking, put) for task in started], put)

    def downloaded(self, index: int) -> None:
        """The download of the task of rank ``index`` is over: its host and the stage may start another."""
        if index in self.fetching:
            self.fetching.remove(index)
            self.busy[self.in_flight[index].host] -= 1

    def receive(self, done: _Done) -> None:
        """Take one finished download: list its failure, or keep it unless a better copy is already kept."""
        if done.error is not None:
            self.fail(done.task.url, done.error.reason, done.error.kind)
            return
        dropped = self.duplicates.add(done.copy())
        if dropped is None or dropped.copy.rank != done.task.index:
            self.kept[done.task.index] = done
        if dropped is not None:
            loser = self.kept.pop(dropped.copy.rank, done)
            loser.part.unlink(missing_ok=True)
            self.fail(dropped.copy.url, dropped.reason, "duplicate")

    def report(self) -> None:
        delivered = min(len(self.kept), self.want)
        if self.progress is not None and delivered != self.reported:
            self.reported = delivered
            self.progress(delivered, self.want)

    # -- the loop -----------------------------------------------------------------------------------------------

    def run(self) -> DownloadResult:
        images = self.out_dir / IMAGES_DIR
        parts = self.out_dir / _PARTS_DIR
        images.mkdir(parents=True, exist_ok=True)
        for old in images.iterdir():  # a retried job starts clean; only our own numbered files are removed
            if _OURS.match(old.name):
                old.unlink()
        parts.mkdir(exist_ok=True)
        options = self.options
        guard = Guard(options.allow_private, options.trusted_hosts, options.resolver)
        resolving = ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")  # the guard's DNS lookups
        client = Client(guard, max_idle=options.per_host_max, resolving=resolving)
        fetcher = Fetcher(client, options, self.deadline_at, self.hosts)
        # Threads that check files themselves: in a stage without check workers, or while none can be had.
        checking = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="check")
        runner = EventLoopThread("download-loop")
        # Filled from the event loop's thread: a finished task, or the rank of one whose download is over (its check
        # begins), which frees its download's place.
        self.finished: Mailbox[_Done | int] = Mailbox(runner.loop)
        started = time.monotonic()
        try:
            try:
                self.report()
                self.ask(math.ceil(1.5 * self.want) + 10)
                self.loop(runner, fetcher, parts, checking)
            finally:
                runner.close(before=client.close)  # cancels every fetch and drops its connection at once
                checking.shutdown(wait=False, cancel_futures=True)
                resolving.shutdown(wait=False, cancel_futures=True)
            if self.result.stopped:
                reason = "not finished before the deadline" if self.result.stopped == "deadline" else "stopped early"
                for task in self.in_flight.values():
                    self.fail(task.url, reason, "unfinished")
            self.finish(images)
        finally:
            shutil.rmtree(parts, ignore_errors=True)
        self.report()
        logger.info(
            "download stage: %d of %d images from %d candidates (%d refused) in %.1f s%s",
            len(self.result.images),
            self.want,
            self.result.candidates_seen,
            len(self.result.failures),
            time.monotonic() - started,
            f", stopped: {self.result.stopped}" if self.result.stopped else "",
        )
        return self.result

    def loop(self, runner: EventLoopThread, fetcher: Fetcher, parts: Path, checking: Executor) -> None:
        grace_until = None
        while True:
            now = time.monotonic()
            if len(self.kept) >= self.want:
                # Enough images: wait a moment for better-ranked downloads still in flight, so the delivered set is
                # the top N of the search (not whichever finished first), then leave the rest unfinished.
                grace_until = grace_until or now + RANK_GRACE_SECONDS
                worst = sorted(self.kept)[self.want - 1]
                if now >= min(grace_until, self.deadline_at) or all(t.index > worst for t in self.in_flight.values()):
                    return
            else:
                if self.should_stop is not None and self.should_stop():
                    self.result.stopped = "cancelled"
                    return
                if now >= self.deadline_at:
                    self.result.stopped = "deadline"
                    return
                remaining = self.want - len(self.kept)
                self.dispatch(runner, fetcher, parts, checking)
                if not self.exhausted and len(self.pending) + len(self.in_flight) < 1.5 * remaining + 5:
                    self.ask(max(10, math.ceil(1.5 * remaining) + 10 - len(self.pending) - len(self.in_flight)))
                    continue
                if not self.in_flight:
                    if not self.pending and self.exhausted:
                        return
                    time.sleep(min(0.05, max(0.0, self.deadline_at - now)))  # every pending host asked us to wait
                    continue
            batch = self.finished.take(timeout=min(0.25, max(0.0, self.deadline_at - now)))
            for item in batch:
                if isinstance(item, int):
                    self.downloaded(item)
                    continue
                self.downloaded(item.task.index)  # a failed download says so only here
                del self.in_flight[item.task.index]
                self.receive(item)
            self.report()

    def finish(self, images: Path) -> None:
        chosen = sorted(self.kept.values(), key=lambda done: done.task.index)
        for surplus in chosen[self.want :]:  # several finished at once: keep the best-ranked
            surplus.part.unlink(missing_ok=True)
        chosen = chosen[: self.want]
        width = max(4, len(str(len(chosen))))
        previews = self.out_dir / THUMBNAILS_DIR
        folder = os.fspath(images)  # names joined as text: a Path per file was about half of this loop's time
        for number, done in enumerate(chosen, start=1):
            assert done.fetched is not None and done.info is not None  # only checked downloads are kept
            name = f"{number:0{width}d}.{done.info.ext}"
            os.replace(done.part, os.path.join(folder, name))
            if number <= self.options.thumbnails and (preview := self.preview(images / name)) is not None:
                previews.mkdir(exist_ok=True)
                (previews / f"{number:0{width}d}.jpg").write_bytes(preview)
            candidate = done.task.candidate
            self.result.images.append(
                ImageRecord(
                    file=f"{IMAGES_DIR}/{name}",
                    image_url=candidate.image_url,
                    page_url=candidate.page_url,
                    title=candidate.title,
                    source=candidate.source or "",
                    width=done.info.width,
                    height=done.info.height,
                    bytes=done.fetched.bytes,
                    sha256=done.fetched.sha256,
                    phash=f"{done.info.phash:016x}",
                )
            )
        self.result.shortfall = self.want - len(chosen)
        if self.result.shortfall:
            self.result.shortfall_reason = self.explain(len(chosen))

    def explain(self, delivered: int) -> str:
        counts = Counter(failure.kind for failure in self.result.failures)
        parts = [f"{self.result.candidates_seen} candidates"]
        parts += [f"{counts[kind]} {label}" for kind, label in _LABELS.items() if counts[kind]]
        sentence = f"found {delivered} of {self.want} images: " + ", ".join(parts)
        if self.result.stopped == "deadline":
            sentence += f"; stopped at the {self.options.deadline:g}-second deadline"
        elif self.result.stopped == "cancelled":
            sentence += "; stopped on request"
        elif self.capped:
            sentence += f"; gave up after {self.result.candidates_seen} candidates"
        elif self.exhausted:
            sentence += "; no more candidates"
        return sentence


def download_images(
    more: Callable[[int], Sequence[CandidateLike]],
    want: int,
    out_dir: Path,
    options: DownloadOptions,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DownloadResult:
    """Download until ``want`` valid, unique images are in ``out_dir/images`` or the candidates run out."""
    if want < 1:
        raise ValueError("want must be at least 1")
    return _Stage(more, want, Path(out_dir), options, progress, should_stop).run()
