"""Check downloaded files in worker processes, so that decoding never competes with the download loop for the GIL.

Decoding and hashing cost about 1.5-3 ms of CPU per image, the fetch well under 1 ms. Decoding beside the fetches in
one process costs them the interpreter lock (the stage once lost about 1.7 ms of CPU per image to 32 download threads
handing it to one another); here the stage's event loop only fetches, and each file is checked
(``validate.inspect``: the real format, a whole decode, the perceptual hash) by one of a few long-lived child
processes, one file at a time each.

A worker is ``python -m downloader.checkworker``: it reads one request a line on stdin (JSON: the file's path and the
filters) and writes one answer a line on stdout; it ends when its stdin closes, so it never outlives its parent.
One worker is started, and the others are forked from it once it has imported Pillow, NumPy and the decoders, so
they start with them imported (starting two took 0.23-0.32 s of CPU this way, 0.45-0.53 s as two processes); one
replaced after a crash is started anew. The first
checks wait for a worker to be ready (about 0.1-0.3 s);
whenever no worker can be had, a thread of the stage checks the file itself, with the same code and the same answer.
Requests queue in a worker's pipe, so it never waits idle while the loop is busy. A worker that
dies or takes longer than ``CHECK_TIMEOUT`` seconds on a file is killed and replaced; that one file is refused
with the reason (a decoder crash costs one image, never the job).
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from .checkworker import REFUSALS
from .errors import DownloadError, InvalidImage
from .options import DownloadOptions
from .records import ImageInfo

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 30.0  # seconds one file may take in a worker before the worker is killed and the file refused
START_WAIT = 10.0  # seconds a check waits for the first worker to be ready before checking in its own thread
MAX_RESTARTS = 8  # workers replaced after a crash or a timeout, per pool; then the stage's threads check alone
# Bytes of requests sent to one worker and not yet answered: well under a pipe's 64 KB, so a write to a worker never
# waits (it would hold up the event loop); past it, a check waits for that worker's next answer.
PIPE_BUDGET = 32 * 1024
MAX_ROOM_WAITS = 1000  # times one check waits for room at the workers before checking in a thread of its own
# glibc's malloc in a worker: allocations under 16 MiB come from its heap, and up to 32 MiB of freed heap is kept for
# the next file instead of being handed back to the kernel. By default the heap was trimmed and regrown around
# nearly every decode: 1,800 checks took 84,000-102,000 page faults and 0.60-0.67 s of system CPU in the workers,
# and 13,400-13,600 (the imports) and 0.26-0.38 s this way. Larger buffers (Pillow's 16 MiB blocks of a big image) are
# still mapped apart and returned when freed. Other C libraries ignore the variable.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=33554432"
_ROOT = Path(__file__).resolve().parents[1]


def request_of(path: Path, options: DownloadOptions) -> dict[str, Any]:
    """The plain data a worker needs to check ``path`` as ``inspect(path, options)`` would."""
    return {
        "path": os.path.abspath(path),  # the worker's working folder may differ
        "formats": sorted(options.formats),
        "min_side": options.min_side,
        "min_width": options.min_width,
        "min_height": options.min_height,
        "max_pixels": options.max_pixels,
        "thumbnails": options.thumbnails,
    }


def info_from(answer: dict[str, Any]) -> ImageInfo:
    """Turn a worker's answer back into the ImageInfo ``inspect`` returns, or raise its refusal."""
    if "refused" in answer:
        refused = answer["refused"]
        raise REFUSALS.get(refused["kind"], DownloadError)(refused["reason"])
    info = dict(answer["info"])
    thumbnail = info.pop("thumbnail")
    return ImageInfo(**info, thumbnail=base64.b64decode(thumbnail) if thumbnail else None)


class WorkerLost(Exception):
    """A worker died or took too long on a file; ``reason`` says so in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Resend(Exception):
    """The worker was lost while this request waited behind another one: it never saw it."""


class _Full(Exception):
    """The worker has ``PIPE_BUDGET`` bytes of requests waiting; ``head``, the oldest, frees room once answered."""

    def __init__(self, head: Future[dict[str, Any]]) -> None:
        super().__init__("the worker's queue is full")
        self.head = head


class _Worker:
    """One child process: requests go in as they come (up to PIPE_BUDGET bytes of them wait in its pipe, so it is
    never idle while there is work), and one reader thread hands each answer, in order, to the thread waiting for it."""

    def __init__(self, pool: CheckWorkers, stdin: IO[bytes], stdout: IO[bytes],
                 process: subprocess.Popen[bytes] | None = None) -> None:
        self.process = process  # None for a sibling: a child of another worker, known by its pid once it is ready
        self._pid = process.pid if process is not None else None
        self.stdin, self.stdout = stdin, stdout
        self.pool = pool
        self.lock = threading.Lock()  # guards pending, ready and lost; the reader takes it for each answer
        # Orders the writes to stdin with their places in pending. Not ``lock``: the reader takes that one for each
        # answer, and must never wait on a write (were a pipe ever full, the worker would wait on its answers unread).
        self.writing = threading.Lock()
        self.pending: deque[tuple[Future[dict[str, Any]], int]] = deque()  # each request's answer, and its bytes
        self.queued = 0  # the bytes of the requests in pending
        self.ready = False
        self.lost: str | None = None  # why the worker is gone, once it is
        self.killed_because: str | None = None
        threading.Thread(target=self._read, name=f"check-worker-{self._pid or 'sibling'}", daemon=True).start()

    @classmethod
    def start(cls, pool: CheckWorkers, siblings: int = 0) -> list[_Worker]:
        """Start one worker process and, forked from it once its imports are done, ``siblings`` more (each on a
        pair of pipes of its own); return them all, the process first."""
        # The caller's own GLIBC_TUNABLES come last, so theirs win.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   GLIBC_TUNABLES=":".join(filter(None, [MALLOC_TUNABLES, os.environ.get("GLIBC_TUNABLES")])),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])))
        pipes = [(os.pipe(), os.pipe()) for _ in range(siblings)]  # (requests r, w), (answers r, w) each
        theirs = [fd for requests, answers in pipes for fd in (requests[0], answers[1])]
        command = [sys.executable, "-m", "downloader.checkworker"]
        if pipes:
            command += ["--siblings", ",".join(f"{requests[0]}:{answers[1]}" for requests, answers in pipes)]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                       pass_fds=theirs)
        except BaseException:
            for requests, answers in pipes:
                os.close(requests[1])
                os.close(answers[0])
            raise
        finally:
            for fd in theirs:  # the worker's now; ours closed, so that its end (or a sibling's) reads as the end
                os.close(fd)
        assert process.stdin is not None and process.stdout is not None
        workers = [cls(pool, process.stdin, process.stdout, process)]
        for requests, answers in pipes:
            workers.append(cls(pool, os.fdopen(requests[1], "wb"), os.fdopen(answers[0], "rb")))
        return workers

    @property
    def pid(self) -> int | None:
        """The worker's process id (a sibling's once it is ready)."""
        return self._pid

    def exit_status(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def _read(self) -> None:
        try:
            line = self.stdout.readline()  # the "ready" line, once Pillow and NumPy are imported
            if not line:
                raise WorkerLost("the image checker did not start")
            pid = json.loads(line).get("pid")
            with self.lock:
                self._pid = pid if isinstance(pid, int) else self._pid
                self.ready = True
            self.pool._became_ready()
            for line in self.stdout:
                answer = json.loads(line)
                with self.lock:
                    waiting, size = self.pending.popleft()
                    self.queued -= size
                waiting.set_result(answer)
            raise WorkerLost("the image checker stopped while checking this file")
        except (WorkerLost, ValueError, OSError, IndexError) as exc:
            reason = self.killed_because or (exc.reason if isinstance(exc, WorkerLost) else
                                             "the image checker stopped while checking this file")
            with self.lock:
                self.lost = reason
                waiting_list, self.pending, self.queued = [each for each, _ in self.pending], deque(), 0
            for number, waiting in enumerate(waiting_list):  # the first was being checked; the others never were
                waiting.set_exception(WorkerLost(reason) if number == 0 else _Resend())
            self.stdout.close()
            self.pool._lost(self)

    def submit(self, request: bytes) -> tuple[Future[dict[str, Any]], int] | None:
        """Queue one request; return its future and its place in the queue (1: next), or None if the worker is gone;
        raise _Full when it has ``PIPE_BUDGET`` bytes waiting already."""
        with self.writing:
            with self.lock:
                if self.lost or not self.ready:
                    return None
                if self.pending and self.queued + len(request) > PIPE_BUDGET:
                    raise _Full(self.pending[0][0])
                future: Future[dict[str, Any]] = Future()
                self.pending.append((future, len(request)))
                self.queued += len(request)
                place = len(self.pending)
            try:
                self.stdin.write(request)
                self.stdin.flush()
            except (OSError, ValueError):  # a broken pipe, or a stdin already closed (the pool is closing)
                with self.lock:  # the reader sees the end of the pipe and retires the worker, unless it already has
                    if (future, len(request)) in self.pending:
                        self.pending.remove((future, len(request)))
                        self.queued -= len(request)
                return None
            return future, place

    def kill(self, reason: str) -> None:
        """Kill the worker because of ``reason``; its reader then fails what waits on it."""
        self.killed_because = reason
        if self.process is not None:
            self.process.kill()
        elif self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)

    def end_input(self) -> None:
        """Close the worker's stdin: it ends once it has answered what it was sent."""
        with self.writing:
            try:
                self.stdin.close()
            except OSError:
                pass

    def stop(self) -> None:
        """End the worker (close its stdin; kill it if it does not end within 5 s) and wait for it."""
        self.end_input()
        if self.process is None:  # a sibling: the worker it was forked from waits for it
            if self._pid is not None and not _ended(self._pid, 5):
                self.kill(self.killed_because or "did not end")
                _ended(self._pid, 5)
            return
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _ended(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` (not our child) has ended within ``seconds``: gone, or a zombie its parent has yet
    to wait for."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        except (OSError, IndexError):  # no /proc here, say: only the signal tells
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


class CheckWorkers:
    """A few check processes shared by every download stage of this process; see the module's docstring."""

    def __init__(self, count: int, timeout: float = CHECK_TIMEOUT) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.count = count
        self.timeout = timeout
        self.owner = os.getpid()  # a forked child must not talk to its parent's workers
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._started = threading.Event()  # a worker is ready, or none is left to become ready
        self._restarts = 0
        self._closed = False
        self._start(siblings=count - 1)  # one process, the others forked from it with its imports made

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers (a sibling's once it is ready)."""
        with self._lock:
            return sorted(worker.pid for worker in self._workers if worker.pid is not None)

    def ready_count(self) -> int:
        with self._lock:
            return sum(worker.ready and not worker.lost for worker in self._workers)

    def _start(self, siblings: int = 0) -> None:
        workers = _Worker.start(self, siblings)
        with self._lock:
            self._workers.update(workers)

    def _became_ready(self) -> None:
        self._started.set()

    def _lost(self, worker: _Worker) -> None:
        """Called by a worker's reader once the worker is gone: reap it and start another while restarts are left."""
        if not self._closed:
            logger.warning("image check worker %s ended (%s, exit status %s)", worker.pid or "(a sibling not started)",
                           worker.lost, worker.exit_status())
        with self._lock:
            self._workers.discard(worker)
            replace = not self._closed and self._restarts < MAX_RESTARTS
            self._restarts += replace
        worker.stop()
        if replace:
            self._start()
        elif not self.pids:
            self._started.set()  # no worker will ever be ready: nobody waits for one

    def check(self, path: Path, options: DownloadOptions) -> ImageInfo | None:
        """``check_async`` for a caller with no event loop of its own (it runs one for this file)."""
        return asyncio.run(self.check_async(path, options))

    async def check_async(self, path: Path, options: DownloadOptions) -> ImageInfo | None:
        """Check ``path`` in a worker; None when no worker can be had (the caller then checks it itself)."""
        if self._closed or os.getpid() != self.owner:
            return None
        if not self._started.is_set():
            # Just started: wait for a worker (about 0.1 s) rather than import Pillow and NumPy here too, which would
            # hold every other thread of this process on Python's import lock.
            await asyncio.get_running_loop().run_in_executor(None, self._started.wait, START_WAIT)
        request = json.dumps(request_of(path, options)).encode() + b"\n"
        attempts = room_waits = 0
        while attempts < MAX_RESTARTS + 2 and room_waits < MAX_ROOM_WAITS:
            with self._lock:
                usable = [worker for worker in self._workers if worker.ready and not worker.lost]
            if not usable:
                return None
            worker = min(usable, key=lambda each: each.queued)  # the fewest bytes waiting: the shortest queue
            try:
                queued = worker.submit(request)
            except _Full as full:  # so every worker has its fill: wait for this one's next answer
                room_waits += 1
                with contextlib.suppress(Exception):  # its outcome is its own check's; here it only frees room
                    await _awaitable(full.head, self.timeout)
                continue
            attempts += 1
            if queued is None:
                continue
            future, place = queued
            try:
                try:
                    answer = await _awaitable(future, self.timeout * place)
                except TimeoutError:
                    worker.kill(f"took longer than {self.timeout:.0f} s to check")
                    answer = await _awaitable(future, 10)  # the reader fails it now: WorkerLost or _Resend
            except TimeoutError:
                return None
            except _Resend:
                continue
            except WorkerLost as exc:
                logger.warning("image check worker %s lost on %s: %s", worker.pid, path.name, exc.reason)
                raise InvalidImage(exc.reason) from exc
            return info_from(answer)
        return None

    def close(self) -> None:
        """Stop every worker and wait for them (all are told first, so that they end together)."""
        self._closed = True
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.end_input()
        for worker in workers:
            worker.stop()


class _Inbox:
    """The answers the workers' reader threads hand to one event loop: one wake-up of the loop takes all that
    arrived meanwhile, rather than one wake-up (a write to its self-pipe, a hand-over of the GIL) per answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # not a strong one: the inbox must not keep its loop (its key) alive
        self.answers: deque[tuple[asyncio.Future[dict[str, Any]], Future[dict[str, Any]]]] = deque()
        self.scheduled = False

    def put(self, mirror: asyncio.Future[dict[str, Any]], source: Future[dict[str, Any]]) -> None:
        """From a reader thread: queue ``source``'s outcome for ``mirror``; wake the loop unless a wake-up is due."""
        self.answers.append((mirror, source))
        if not self.scheduled:
            self.scheduled = True
            loop = self.loop()
            try:
                if loop is None:
                    raise RuntimeError("the loop is gone")
                loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the stage's loop is closed: nobody waits for these answers any more
                self.answers.clear()

    def _deliver(self) -> None:
        self.scheduled = False  # first: an answer queued from now on schedules another delivery
        while self.answers:
            mirror, source = self.answers.popleft()
            if mirror.done():  # timed out, or its stage ended
                continue
            error = source.exception()
            if error is not None:
                mirror.set_exception(error)
            else:
                mirror.set_result(source.result())


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()


def _awaitable(future: Future[dict[str, Any]], timeout: float) -> asyncio.Future[dict[str, Any]]:
    """An asyncio future that takes ``future``'s outcome when the worker's reader sets it, or TimeoutError after
    ``timeout`` seconds. Its timeout or cancellation (the stage's end) leaves ``future`` alone, for the reader."""
    loop = asyncio.get_running_loop()
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes[loop] = _Inbox(loop)
    mirror: asyncio.Future[dict[str, Any]] = loop.create_future()

    def expire() -> None:
        if not mirror.done():
            mirror.set_exception(TimeoutError())

    timer = loop.call_later(timeout, expire)
    mirror.add_done_callback(lambda _mirror: timer.cancel())
    future.add_done_callback(lambda source: inbox.put(mirror, source))
    return mirror


_shared: CheckWorkers | None = None
_shared_lock = threading.Lock()


def shared_workers(count: int) -> CheckWorkers:
    """The check workers of this process (started on first use, stopped at exit); ``count`` of them."""
    global _shared
    with _shared_lock:
        if _shared is not None and (_shared.count != count or _shared.owner != os.getpid() or _shared._closed):
            if _shared.owner == os.getpid():
                _shared.close()
            _shared = None
        if _shared is None:
            _shared = CheckWorkers(count)
            atexit.register(_shared.close)
        return _shared


CHECK_WORKERS_FROM = 50  # smaller stages check in threads of their own: starting workers would cost more
_IN_THREAD = threading.BoundedSemaphore(os.cpu_count() or 1)  # more decodes at once only fight over the GIL


def start_workers(options: DownloadOptions, want: int) -> CheckWorkers | None:
    """The check workers a stage of ``want`` images uses (started now if need be), or None to check in-thread."""
    return shared_workers(options.check_workers) if options.check_workers and want >= CHECK_WORKERS_FROM else None


def check_here(path: Path, options: DownloadOptions) -> ImageInfo:
    """Check ``path`` in the calling thread (a few at once in a process)."""
    from .validate import inspect  # Pillow and NumPy: imported here only if this process checks a file

    with _IN_THREAD:
        return inspect(path, options)


def checker(options: DownloadOptions, want: int) -> Callable[[Path, Executor], Awaitable[ImageInfo]]:
    """Return how one stage checks a file, from its event loop: in a worker process when it has them, else in a
    thread of the executor it is given. No check makes a preview (``previewer`` does, for the images kept first):
    a preview is a colour decode and a JPEG encode, and most files are checked faster without one."""
    workers = start_workers(options, want)
    plain = replace(options, thumbnails=0)

    async def check(path: Path, threads: Executor) -> ImageInfo:
        if workers is not None:
            info = await workers.check_async(path, plain)
            if info is not None:
                return info
        return await asyncio.get_running_loop().run_in_executor(threads, check_here, path, plain)

    return check


def previewer(options: DownloadOptions, want: int) -> Callable[[Path], bytes | None]:
    """Return how one stage makes the preview of an image it has kept, once its event loop has ended: decoded again
    where its checks are made (a worker process, or this thread), since no check made one (see ``checker``)."""
    workers = start_workers(options, want)
    wanted = replace(options, thumbnails=max(1, options.thumbnails))

    def preview(path: Path) -> bytes | None:
        try:
            info = workers.check(path, wanted) if workers is not None else None
            return (info or check_here(path, wanted)).thumbnail
        except DownloadError as exc:  # it was checked whole once: only a file changed since would get here
            logger.warning("no preview of %s: %s", path.name, exc.reason)
            return None

    return preview
