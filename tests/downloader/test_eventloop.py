"""The stage's event loop thread and the mailbox it hands results back through."""

from __future__ import annotations

import asyncio
import threading

from downloader.eventloop import EventLoopThread, Mailbox


def test_what_one_pass_of_the_loop_puts_wakes_the_waiting_thread_once():
    runner = EventLoopThread("test-loop")
    try:
        mailbox: Mailbox[int] = Mailbox(runner.loop)
        notified: list[int] = []
        real_notify = mailbox._ready.notify

        def notify(n: int = 1) -> None:
            notified.append(1)
            real_notify(n)

        mailbox._ready.notify = notify  # type: ignore[method-assign]

        def one_pass(numbers: range) -> None:  # as tasks finishing in one pass of the loop each put their result
            for number in numbers:
                mailbox.put(number)

        runner.loop.call_soon_threadsafe(one_pass, range(5))
        got = []
        for _ in range(100):  # bounded: each take waits at most 0.1 s
            got += mailbox.take(timeout=0.1)
            if len(got) == 5:
                break
        assert got == [0, 1, 2, 3, 4]
        assert notified == [1]  # one wake-up for the five

        runner.loop.call_soon_threadsafe(one_pass, range(5, 6))  # a later pass: a wake-up of its own
        for _ in range(100):
            late = mailbox.take(timeout=0.1)
            if late:
                break
        assert late == [5] and notified == [1, 1]
        assert mailbox.take(timeout=0.01) == []  # nothing more: an empty answer once the time is up
    finally:
        runner.close()


def test_close_cancels_what_still_runs_and_ends_the_thread():
    runner = EventLoopThread("test-loop")
    done: list[str] = []
    runner.start([asyncio.sleep(60, result="slept")], done.append)
    runner.close()
    assert not [thread for thread in threading.enumerate() if thread.name == "test-loop"]
    assert done == []  # a cancelled task reports nothing
