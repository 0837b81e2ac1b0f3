"""The licence table, the names sources write, the filters and the credit line."""

from __future__ import annotations

import pytest

from scraper import licences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cc-by-sa-4.0", ("by-sa", "4.0")),
        ("CC BY-SA 4.0", ("by-sa", "4.0")),
        ("cc-by-sa-3.0-de", ("by-sa", "3.0")),
        ("cc-by-sa-4.0,3.0,2.5", ("by-sa", "4.0")),
        ("CC BY-NC-ND 2.0", ("by-nc-nd", "2.0")),
        ("cc-by", ("by", None)),
        ("CC0", ("cc0", "1.0")),
        ("Public domain", ("pdm", None)),
        ("PD-old-100", ("pdm", None)),
        ("GFDL 1.2", ("gfdl", None)),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_reads_the_names_sources_write(text, expected):
    assert licences.parse(text) == expected


@pytest.mark.parametrize(
    ("code", "open_", "commercial", "modification"),
    [
        ("by", True, True, True),
        ("by-sa", True, True, True),
        ("by-nd", True, True, False),
        ("by-nc", True, False, True),
        ("by-nc-sa", True, False, True),
        ("by-nc-nd", True, False, False),
        ("cc0", True, True, True),
        ("pdm", True, True, True),
        ("gfdl", False, False, False),
        (None, False, False, False),
    ],
)
def test_the_table_and_the_filters_agree(code, open_, commercial, modification):
    assert (licences.is_open(code), licences.allows_commercial(code), licences.allows_modification(code)) == (
        open_, commercial, modification,
    )
    assert licences.passes(code, "any")
    assert licences.passes(code, "open") is open_
    assert licences.passes(code, "commercial") is commercial
    assert licences.passes(code, "modification") is modification


def test_an_unknown_filter_is_refused_by_name():
    assert licences.check_filter(" Commercial ") == "commercial"
    assert licences.check_filter("") == "any"
    with pytest.raises(ValueError, match="licence must be one of any, open, commercial, modification"):
        licences.check_filter("free")


def test_credit_line_built_from_the_fields():
    record = {"license": "by-sa", "license_version": "4.0", "title": "Red panda 3", "creator": "Example & Sons",
              "page_url": "https://commons.wikimedia.org/wiki/File:Red_panda_3.jpg", "license_url": None}
    assert licences.credit_line(record) == (
        "“Red panda 3” by Example & Sons is licensed under CC BY-SA 4.0 "
        "(https://creativecommons.org/licenses/by-sa/4.0/); source: https://commons.wikimedia.org/wiki/File:Red_panda_3.jpg"
    )


def test_credit_line_prefers_the_sources_attribution_and_skips_what_needs_none():
    given = {"license": "by", "attribution": '"Cat" by Jo is licensed under CC BY 2.0.\n To view ...'}
    assert licences.credit_line(given) == '"Cat" by Jo is licensed under CC BY 2.0. To view ...'
    assert licences.credit_line({"license": "cc0", "creator": "Jo"}) is None
    assert licences.credit_line({"license": "pdm"}) is None
    assert licences.credit_line({"license": None, "title": "from a search engine"}) is None
    assert licences.credit_line({"license": "gfdl", "creator": "Jo"}) == "This image by Jo is licensed under GFDL"
