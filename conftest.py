"""Pytest plugins shared by every test: the local servers the tests run against."""

pytest_plugins = [
    "tests.fixtures.smtp",
    "tests.fixtures.images",
    "tests.fixtures.engines",
    "tests.fixtures.openlicence",
    "tests.fixtures.s3",
    "tests.fixtures.cassandra",
    "tests.fixtures.apps",
    "tests.fixtures.processes",
    "tests.fixtures.redis",
]


def pytest_collection_modifyitems(config, items):
    """Keep every test of the one Cassandra node in one pytest-xdist worker (`--dist loadgroup`): one node starts,
    and the outage test's restart of it cannot pull the node from under a test in another worker."""
    import pytest

    for item in items:
        if item.get_closest_marker("cassandra") or {"cassandra_server", "cassandra_url"} & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group("cassandra"))
