"""Check workers: the same answers as a check in the download thread, and a lost worker costs one file at most.

Every test here starts real `python -m downloader.checkworker` processes and stops them by their own ids.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from downloader import DownloadOptions, download_images
from downloader.checks import CheckWorkers, checker, previewer
from downloader.errors import DownloadError, InvalidImage
from downloader.options import check_workers
from downloader.validate import inspect
from tests.downloader.test_stage import FAST, Feed
from tests.fixtures.images import _bomb, render


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


FILES = {
    "jpeg": render("w1", "jpg"),
    "png": render("w2", "png"),
    "webp": render("w3", "webp"),
    "gif": render("w4", "gif"),
    "empty": b"",
    "html": b"<!DOCTYPE html><html><body>captcha</body></html>",
    "truncated jpeg": render("cut", "jpg")[:6000],
    "truncated png": render("cut", "png")[:3000],
    "one pixel": _png(1, 1),
    "bomb": _bomb(9000),
}


@pytest.fixture(scope="module")
def workers():
    pool = CheckWorkers(2)
    try:
        _wait_ready(pool)
        yield pool
    finally:
        pool.close()


def _wait_ready(pool: CheckWorkers, count: int | None = None) -> None:
    deadline = time.monotonic() + 60
    while pool.ready_count() < (count or pool.count):
        assert time.monotonic() < deadline, "the check workers did not start within 60 s"
        time.sleep(0.05)


def _outcome(check, path: Path):
    try:
        return check(path)
    except DownloadError as exc:
        return type(exc).__name__, exc.reason


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("thumbnails", [0, 8])
def test_a_worker_answers_as_the_download_thread_would(workers, tmp_path, name, thumbnails):
    path = tmp_path / "download.part"
    path.write_bytes(FILES[name])
    options = DownloadOptions(thumbnails=thumbnails)
    in_thread = _outcome(lambda p: inspect(p, options), path)
    in_worker = _outcome(lambda p: workers.check(p, options), path)
    assert in_worker is not None, "a ready worker must take the file"
    assert in_worker == in_thread


def test_the_filters_travel_to_the_worker(workers, tmp_path):
    path = tmp_path / "download.part"
    path.write_bytes(FILES["png"])
    assert _outcome(lambda p: workers.check(p, DownloadOptions(formats=frozenset({"jpeg"}))), path)[0] == (
        "UnwantedFormat")
    assert _outcome(lambda p: workers.check(p, DownloadOptions(min_width=5000)), path)[0] == "TooSmall"


def test_a_relative_path_is_the_callers(workers, tmp_path, monkeypatch):
    (tmp_path / "here.part").write_bytes(FILES["webp"])
    monkeypatch.chdir(tmp_path)
    assert workers.check(Path("here.part"), DownloadOptions()).format == "webp"


@contextmanager
def _one_worker(tmp_path: Path, kind: str, timeout: float = 30.0) -> Iterator[tuple[CheckWorkers, int, Path]]:
    """A pool of one ready worker, its pid, and a file of ``kind`` to check; the pool is closed afterwards."""
    pool = CheckWorkers(1, timeout=timeout)
    try:
        _wait_ready(pool)
        path = tmp_path / "a.part"
        path.write_bytes(FILES[kind])
        yield pool, pool.pids[0], path
    finally:
        pool.close()


def test_a_stuck_worker_is_killed_and_replaced_and_costs_that_file_only(tmp_path):
    with _one_worker(tmp_path, "jpeg", timeout=1.0) as (pool, stuck, path):
        os.kill(stuck, signal.SIGSTOP)
        with pytest.raises(InvalidImage, match="took longer than 1 s to check"):
            pool.check(path, DownloadOptions())
        assert _gone(stuck)
        _wait_ready(pool)
        assert pool.pids != [stuck]
        assert pool.check(path, DownloadOptions()).format == "jpeg"


def test_a_worker_that_dies_mid_check_refuses_that_file_with_the_reason(tmp_path):
    with _one_worker(tmp_path, "png") as (pool, dying, path):
        os.kill(dying, signal.SIGSTOP)  # it holds the request unanswered until it is killed
        outcome: list = []
        asker = threading.Thread(target=lambda: outcome.append(_outcome(lambda p: pool.check(p, DownloadOptions()),
                                                                        path)))
        asker.start()
        time.sleep(0.5)
        os.kill(dying, signal.SIGKILL)
        asker.join(timeout=30)
        assert outcome == [("InvalidImage", "the image checker stopped while checking this file")]
        _wait_ready(pool)
        assert pool.check(path, DownloadOptions()).format == "png"


def test_a_worker_that_died_idle_costs_nothing(tmp_path):
    with _one_worker(tmp_path, "gif") as (pool, dead, path):
        os.kill(dead, signal.SIGKILL)
        assert _gone(dead)
        deadline = time.monotonic() + 10
        while dead in pool.pids:  # its reader has seen the end of the pipe
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Nothing is refused: while its replacement starts, the caller is told to check the file itself.
        assert pool.check(path, DownloadOptions()) is None
        _wait_ready(pool)
        assert dead not in pool.pids
        assert pool.check(path, DownloadOptions()).format == "gif"


def test_workers_end_with_the_pool_and_with_a_killed_parent():
    pool = CheckWorkers(2)
    _wait_ready(pool)
    pids = pool.pids
    pool.close()
    assert all(_gone(pid) for pid in pids)

    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from downloader.checks import CheckWorkers; w = CheckWorkers(2); "
         "[time.sleep(0.05) for _ in range(1200) if w.ready_count() < 2]; print(*w.pids, flush=True); "
         "time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(children) == 2
    finally:
        parent.kill()
        parent.wait(timeout=10)
        parent.stdout.close()
    assert all(_gone(pid, seconds=20) for pid in children), "a check worker outlived its killed parent"


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_the_other_workers_are_forked_from_the_first_once_it_has_imported(tmp_path):
    pool = CheckWorkers(3)
    try:
        _wait_ready(pool)
        first = [pid for pid in pool.pids if _parent_of(pid) == os.getpid()]
        assert len(first) == 1, "one worker is our child"
        siblings = [pid for pid in pool.pids if pid not in first]
        assert len(siblings) == 2 and all(_parent_of(pid) == first[0] for pid in siblings)
        path = tmp_path / "a.part"
        path.write_bytes(FILES["png"])
        with ThreadPoolExecutor(6) as threads:  # enough at once for every worker to get some
            answers = list(threads.map(lambda _: pool.check(path, DownloadOptions()), range(60)))
        assert {answer.format for answer in answers if answer is not None} == {"png"}
        os.kill(siblings[0], signal.SIGKILL)  # a sibling lost is replaced by a worker started anew
        assert _gone(siblings[0])
        deadline = time.monotonic() + 30
        while siblings[0] in pool.pids or pool.ready_count() < 3:
            assert time.monotonic() < deadline, "the lost sibling was not replaced"
            time.sleep(0.05)
        (replacement,) = set(pool.pids) - set(first) - set(siblings)
        assert _parent_of(replacement) == os.getpid()
        pids = pool.pids
    finally:
        pool.close()
    assert all(_gone(pid) for pid in pids)


def test_a_worker_waits_for_its_siblings_so_that_their_cpu_time_is_counted():
    """A sibling's CPU time reaches the pool's process only through the worker it was forked from, if that one
    waits for it: the benchmark's CPU figures for a whole command count the check workers this way."""
    code = """
import os, resource, sys, time
from downloader import checkworker
requests, theirs = os.pipe()
answers_read, answers = os.pipe()
if os.fork() == 0:  # the worker: one sibling, which spends CPU, then both end
    siblings = checkworker.fork_siblings([(requests, answers)])
    if not siblings:
        started = time.process_time()
        while time.process_time() - started < 0.4:
            pass
        os.write(1, b"done")
        os._exit(0)
    checkworker.wait_for_siblings()
    os._exit(0)
os.close(requests); os.close(answers)
os.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(usage.ru_utime + usage.ru_stime, os.read(answers_read, 10).decode())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    cpu, said = done.stdout.split()
    assert said == "done"
    assert float(cpu) >= 0.4


def _gone(pid: int, seconds: float = 10) -> bool:
    """Whether process ``pid`` has ended (reaped, or a zombie no one has waited for yet) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_small_stages_check_in_their_own_threads(tmp_path):
    path = tmp_path / "a.part"
    path.write_bytes(FILES["jpeg"])
    before = set(_children())
    with ThreadPoolExecutor(1) as threads:
        for options, want in ((DownloadOptions(check_workers=2), 49), (DownloadOptions(check_workers=0), 500)):
            assert asyncio.run(checker(options, want)(path, threads)).format == "jpeg"
    assert set(_children()) == before


def _children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(os.getpid()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_stage_with_workers_keeps_the_same_images_as_one_without(image_server, tmp_path):
    paths = [f"/img/cw{i}.{'jpg' if i % 3 else 'png'}" for i in range(56)]
    paths += ["/fault/truncated.jpg", "/fault/html.jpg", "/fault/bomb.png", "/fault/pixel.png", "/dup/copy/cw1.jpg"]
    results = {}
    for workers in (0, 2):
        feed = Feed([image_server.url + path for path in paths])
        # Timeouts well past FAST's 2 s: this compares outcomes. In one suite run on a loaded machine the stage without
        # workers kept 53 of the 56 (in 3.8 s; the image server is threads of this process, beside that stage's own
        # checks); the refusals are now in the message, should it happen again.
        options = DownloadOptions(**{**FAST, "read_timeout": 15.0, "connect_timeout": 15.0}, check_workers=workers,
                                  thumbnails=4)
        results[workers] = download_images(feed, 60, tmp_path / str(workers), options)
    without, with_workers = results[0], results[2]
    refused = {workers: sorted((f.url, f.reason) for f in result.failures) for workers, result in results.items()}
    assert len(with_workers.images) == len(without.images) == 56, refused
    assert [(i.file, i.sha256, i.phash, i.width, i.height) for i in with_workers.images] == [
        (i.file, i.sha256, i.phash, i.width, i.height) for i in without.images]
    assert sorted((f.url, f.reason) for f in with_workers.failures) == sorted(
        (f.url, f.reason) for f in without.failures)
    assert sorted(p.name for p in (tmp_path / "2" / "thumbnails").iterdir()) == [f"{n:04d}.jpg" for n in range(1, 5)]
    for workers, result in results.items():  # previews of the first four images kept, made once the stage had them
        for number, image in enumerate(result.images[:4], start=1):
            preview = (tmp_path / str(workers) / "thumbnails" / f"{number:04d}.jpg").read_bytes()
            assert preview == inspect(tmp_path / str(workers) / image.file, DownloadOptions(thumbnails=1)).thumbnail


@pytest.mark.parametrize(("setting", "expected"), [("auto", min(os.cpu_count() or 1, 4)), (0, 0), (3, 3)])
def test_the_setting(setting, expected):
    assert check_workers(setting) == expected
    assert DownloadOptions.from_config({"DOWNLOAD_CHECK_WORKERS": setting}).check_workers == expected


def test_answers_that_arrive_together_reach_the_loop_in_one_wake_up():
    from concurrent.futures import Future

    from downloader.checks import _awaitable

    async def main() -> tuple[list, int]:
        loop = asyncio.get_running_loop()
        wakeups = []
        real = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *args: (wakeups.append(args), real(*args))[1]
        sources = [Future() for _ in range(5)]
        mirrors = [_awaitable(source, timeout=30) for source in sources]
        # Answered from another thread while the loop is busy (here: blocked in time.sleep) ...
        answering = threading.Thread(target=lambda: [source.set_result({"n": n}) for n, source in enumerate(sources)])
        answering.start()
        answering.join()
        time.sleep(0.1)
        # ... and one stays unanswered until after: its own wake-up.
        late = Future()
        late_mirror = _awaitable(late, timeout=30)
        got = await asyncio.gather(*mirrors)
        threading.Thread(target=lambda: late.set_exception(InvalidImage("late"))).start()
        with pytest.raises(InvalidImage, match="late"):
            await late_mirror
        return got, len(wakeups)

    got, wakeups = asyncio.run(main())
    assert got == [{"n": n} for n in range(5)]
    assert wakeups == 2  # one for the five together, one for the late one


def test_a_worker_with_its_fill_of_requests_never_holds_up_the_event_loop(tmp_path):
    """Past PIPE_BUDGET bytes waiting at a worker, a check waits for room without blocking its loop on the pipe."""
    deep = tmp_path.joinpath(*["d" * 200] * 17)  # about 3.5 KB of request: 40 of them overfill a pipe's 64 KB
    deep.mkdir(parents=True)
    long_path = deep / "one.jpg"
    long_path.write_bytes(render("pipe", "jpg"))
    pool = CheckWorkers(1)
    resumed_by: list[str] = []
    lock = threading.Lock()
    try:
        _wait_ready(pool)
    except BaseException:
        pool.close()
        raise
    (worker,) = pool._workers

    def resume(who: str) -> None:
        with lock:
            if not resumed_by:
                resumed_by.append(who)
                os.kill(worker.pid, signal.SIGCONT)

    # Were the loop stuck writing to the stopped worker, only this would resume it.
    fallback = threading.Timer(20, resume, ("the fallback timer",))
    try:
        os.kill(worker.pid, signal.SIGSTOP)  # it reads nothing more until it is resumed
        fallback.start()

        async def main() -> list:
            checks = [asyncio.ensure_future(pool.check_async(long_path, DownloadOptions())) for _ in range(40)]
            for _ in range(20):  # the loop keeps running while the worker's pipe is full ...
                await asyncio.sleep(0.01)
            resume("the event loop")  # ... so it is the one to resume the worker
            return list(await asyncio.gather(*checks))

        infos = asyncio.run(asyncio.wait_for(main(), timeout=60))
        assert resumed_by == ["the event loop"]
        assert [(info.format, info.width) for info in infos] == [("jpeg", infos[0].width)] * 40
        assert worker.queued == 0 and not worker.pending
    finally:
        fallback.cancel()
        resume("the test's end")
        pool.close()


def test_a_file_gone_before_its_check_is_refused_without_a_traceback(tmp_path, caplog):
    """A stage that ends removes its files while requests for them may still wait at a worker."""
    from downloader.checks import request_of
    from downloader.checkworker import answer_to

    with caplog.at_level(logging.DEBUG, logger="downloader.checkworker"):
        answer = answer_to(request_of(tmp_path / "gone.part", DownloadOptions()))
    assert answer == {"refused": {"kind": "DownloadError", "reason": "the downloaded file was gone before its check"}}
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def _minor_faults(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def test_a_worker_reuses_its_memory_from_one_file_to_the_next(tmp_path):
    """With glibc's defaults the heap was handed back and regrown around nearly every decode: a worker took about 50
    page faults a check (3,210 for 60 of these files); with MALLOC_TUNABLES about 1 (67); 25 are checked here."""
    files = []
    for i in range(50):
        files.append(tmp_path / f"{i}.img")
        files[-1].write_bytes(render(f"faults-{i}", "png" if i % 2 else "jpg", kb=60 + (i * 37) % 300))
    pool = CheckWorkers(1)
    try:
        _wait_ready(pool)
        pid = pool.pids[0]
        for path in files[:25]:  # the decoders' first buffers
            assert pool.check(path, DownloadOptions()) is not None
        before = _minor_faults(pid)
        for path in files[25:]:
            assert pool.check(path, DownloadOptions()) is not None
        assert _minor_faults(pid) - before < 250
    finally:
        pool.close()


def test_a_worker_imports_only_what_it_checks_with():
    """Not the pool's asyncio and threads, nor the rest of the package: a worker starts in less time."""
    names = ["asyncio", "concurrent.futures", "zipfile", "csv", "ssl", "urllib3", "downloader.checks",
             "downloader.stage", "downloader.package", "downloader.dataset", "numpy", "PIL.Image"]
    code = (f"import sys, downloader.checkworker; from downloader import validate; "
            f"print(' '.join(name for name in {names!r} if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["numpy", "PIL.Image"]  # what it checks with, and nothing of the rest


def test_checks_make_no_preview_and_the_previewer_makes_it_for_a_kept_image(tmp_path):
    """A preview costs a colour decode and a JPEG encode: only the images kept first get one, at the stage's end."""
    path = tmp_path / "kept.jpg"
    path.write_bytes(render("cw-preview", "jpg"))
    options = DownloadOptions(thumbnails=8)
    with ThreadPoolExecutor(1) as threads:
        info = asyncio.run(checker(options, 1)(path, threads))
    assert info.thumbnail is None and info.format == "jpeg"
    assert previewer(options, 1)(path) == inspect(path, DownloadOptions(thumbnails=1)).thumbnail
