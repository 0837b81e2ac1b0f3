"""Per-host limits on their own: additive increase on quick answers, halving on overload, holds until a time."""

from __future__ import annotations

import pytest

from downloader.hosts import Hosts


def test_quick_answers_raise_the_limit_up_to_the_most():
    hosts = Hosts(start=2, most=4, fast=1.0)
    assert hosts.limit("a:80") == 2
    for _ in range(5):
        hosts.answered("a:80", 0.1)
    assert hosts.limit("a:80") == 4
    assert hosts.limit("b:80") == 2  # each host on its own


def test_slow_answers_do_not_raise_it():
    hosts = Hosts(start=2, most=8, fast=1.0)
    hosts.answered("a:80", 3.0)
    assert hosts.limit("a:80") == 2


def test_overload_halves_down_to_one():
    hosts = Hosts(start=8, most=8)
    hosts.overloaded("a:80")
    assert hosts.limit("a:80") == 4
    for _ in range(5):
        hosts.overloaded("a:80")
    assert hosts.limit("a:80") == 1


def test_ready_counts_busy_downloads_and_holds():
    hosts = Hosts(start=2, most=2)
    assert hosts.ready("a:80", busy=1, now=10.0) and not hosts.ready("a:80", busy=2, now=10.0)
    hosts.hold("a:80", until=12.0)
    assert not hosts.ready("a:80", busy=0, now=11.9) and hosts.ready("a:80", busy=0, now=12.0)
    hosts.hold("a:80", until=11.0)  # an earlier time never shortens a hold
    assert hosts.not_before("a:80") == 12.0


def test_limits_must_make_sense():
    with pytest.raises(ValueError):
        Hosts(start=5, most=4)
