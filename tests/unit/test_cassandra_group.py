"""The Cassandra tests share one node under xdist: which test ids belong to the group the scheduler keeps together."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cassandra import in_cassandra_group

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("nodeid", [
    "tests/db/test_cassandra.py::test_parse_url",
    "tests/e2e/test_cassandra_outage.py::test_an_outage_refuses_new_jobs_clearly_and_loses_none",
    "tests/db/test_store_contract.py::test_create_and_get_round_trip[cassandra]",
    "tests/jobs/test_scheduling.py::test_two_processes_on_one_database_run_each_job_once[cassandra-5]",
    "tests/web/test_x.py::test_y[chromium-cassandra]",
])
def test_these_run_in_the_group(nodeid):
    assert in_cassandra_group(nodeid)


@pytest.mark.parametrize("nodeid", [
    "tests/db/test_store_contract.py::test_create_and_get_round_trip[sqlite]",
    "tests/jobs/test_scheduling.py::test_two_processes_on_one_database_run_each_job_once[sqlite-3]",
    "tests/unit/test_fast_start.py::test_fetch_imports_no_browser_s3_or_cassandra_driver",
    "tests/web/test_x.py::test_y[cassandraish]",
    "tests/db/test_cassandra_extra.py::test_z",
])
def test_these_do_not(nodeid):
    assert not in_cassandra_group(nodeid)


def test_a_test_that_needs_cassandra_outside_the_group_stops_the_collection(pytester):
    pytester.makeconftest('pytest_plugins = ["tests.fixtures.cassandra"]')
    pytester.makepyfile(test_stray="""
        import pytest

        @pytest.mark.cassandra
        def test_needs_the_node():
            pass
    """)
    result = pytester.runpytest_inprocess("--collect-only", "-p", "no:cacheprovider", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*need Cassandra but their ids are outside the group*test_needs_the_node*"])


def test_a_crashed_worker_does_not_hang_the_grouped_run(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("CRASH_MARK", str(pytester.path / "crashed-once"))
    pytester.makeconftest('pytest_plugins = ["tests.fixtures.cassandra"]')
    quick = "\n".join(f"def test_quick_{i}():\n    time.sleep(0.05)\n" for i in range(12))
    pytester.makepyfile(test_crash=f"""
import os
import signal
import time
from pathlib import Path

{quick}

def test_crashes_its_worker_once():
    mark = Path(os.environ["CRASH_MARK"])
    if not mark.exists():
        mark.touch()
        os.kill(os.getpid(), signal.SIGKILL)
""")
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", timeout=120)
    result.stdout.fnmatch_lines(["*crashed while running*test_crashes_its_worker_once*"])
    assert result.parseoutcomes().get("passed", 0) >= 12
