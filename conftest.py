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
    "pytester",  # tests of the test plugins themselves
]

