"""The Cassandra tests share one node under xdist: which test ids belong to the group the scheduler keeps together."""

from __future__ import annotations

import pytest

from tests.fixtures.cassandra import in_cassandra_group


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
