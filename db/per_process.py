"""Values kept for one process: made on first use, and made again in a child after a fork.

A database session, a store or an S3 client must not cross a fork (gunicorn forks its workers after the app is
created): its sockets and threads belong to the parent. ``PerProcess`` keeps such values per process id; in a
child the parent's values are forgotten, never used or closed, and new ones are made on first use.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

_holders: weakref.WeakSet[PerProcess] = weakref.WeakSet()


class PerProcess(Generic[T]):
    """This process's values, one per key; making one is done by one thread while the others wait for it."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._values: dict[Hashable, T] = {}
        self._lock = threading.Lock()
        _holders.add(self)

    def get(self, make: Callable[[], T], key: Hashable = None) -> T:
        """Return this process's value for ``key``, made by ``make()`` on first use (none is kept if it raises)."""
        pid = os.getpid()
        if self._pid == pid and key in self._values:
            return self._values[key]
        with self._lock:
            if self._pid != pid:  # first use, or first use after a fork: the parent's values are not ours
                self._values, self._pid = {}, pid
            if key not in self._values:
                self._values[key] = make()
            return self._values[key]

    def pop(self, key: Hashable = None) -> T | None:
        """Forget the value for ``key`` and return it to be closed: None when this process made none."""
        with self._lock:
            if self._pid != os.getpid():
                self._values, self._pid = {}, None
                return None
            return self._values.pop(key, None)


def _after_fork_in_child() -> None:
    for holder in list(_holders):  # a lock held by a parent's thread at the fork would never be released here
        holder._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
