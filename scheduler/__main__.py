"""The worker process: `python -m scheduler` runs due jobs without serving HTTP (Procfile `worker`).

It runs until SIGTERM or SIGINT, then stops taking jobs and gives running ones SHUTDOWN_GRACE_SECONDS to stop
at a safe point and go back to the queue.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from app import create_app

log = logging.getLogger("scheduler.worker")


def main() -> int:
    app = create_app({"SCHEDULER_START": True})
    scheduler = app.extensions.get("scheduler")
    if scheduler is None:
        log.error("SCHEDULER=off: this worker has nothing to do")
        return 1
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("worker ready: running due jobs (SCHEDULER=%s)", app.config["SCHEDULER"])
    while not stop.wait(1.0):
        pass
    return 0 if scheduler.stop() else 1


if __name__ == "__main__":
    sys.exit(main())
