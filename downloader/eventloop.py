"""The event loop one download stage's fetches run on, in a thread of its own, and how it ends."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
STOP_WAIT = 5.0  # seconds the cancelled fetches get to end once their connections are dropped


class Mailbox(Generic[T]):
    """What a loop hands to the thread that waits on it: everything put during one pass of the loop wakes that thread
    once. Each wake-up hands the interpreter lock over and back; a 2,000-URL stage woke its thread about 2,200 times
    with one item at a time, and 800-1,300 times this way."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: list[T] = []
        self._ready = threading.Condition(threading.Lock())
        self._scheduled = False  # a wake-up is due at the loop's next pass

    def put(self, item: T) -> None:
        """From the loop's thread: add ``item``; the waiting thread is woken once this pass of the loop is over."""
        with self._ready:
            self._items.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon(self._wake)

    def _wake(self) -> None:
        with self._ready:
            self._scheduled = False
            self._ready.notify()

    def take(self, timeout: float) -> list[T]:
        """Everything put so far, waiting up to ``timeout`` seconds for something; [] if nothing came."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            items, self._items = self._items, []
        return items


class EventLoopThread:
    """Run coroutines on a private loop from any thread; ``close()`` cancels what still runs and ends the thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def start(self, coroutines: list[Coroutine[Any, Any, T]], done: Callable[[T], None]) -> None:
        """Start ``coroutines`` as tasks on the loop, with one wake-up of it; call ``done`` (in the loop's thread)
        with each one's result. One that is cancelled (the loop closing) reports nothing; one that raises is a bug,
        logged."""

        def finished(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                return
            error = task.exception()
            if error is not None:
                logger.error("a download task failed", exc_info=error)
                return
            done(task.result())

        def begin() -> None:
            for coroutine in coroutines:
                self.loop.create_task(coroutine).add_done_callback(finished)

        self.loop.call_soon_threadsafe(begin)

    def close(self, before: Callable[[], None] | None = None) -> None:
        """Cancel every task, call ``before`` on the loop (to drop connections), let the tasks end, stop the loop."""

        async def cancel_all() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if before is not None:
                before()
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_WAIT)

        if self.loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=STOP_WAIT + 5)
        except Exception:  # the loop is stopped regardless; a task that would not end is logged, not raised
            logger.exception("download tasks did not end cleanly")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=STOP_WAIT + 5)
