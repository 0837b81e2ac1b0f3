"""Settings: parsed from the environment with defaults; the README table and .env.example list the same names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_parsing():
    values = config.load({"MAX_IMAGES": "800", "ALLOW_PRIVATE_URLS": "on", "IMAGE_SOURCES": "Google, bing",
                          "SMTP_SECURITY": "SSL"})
    assert values["MAX_IMAGES"] == 800
    assert values["ALLOW_PRIVATE_URLS"] is True
    assert values["IMAGE_SOURCES"] == ["google", "bing"]
    assert values["SMTP_SECURITY"] == "ssl"
    defaults = config.load({})
    assert defaults["LINK_TTL_MINUTES"] == 30 and defaults["RETENTION_MINUTES"] == 30
    assert defaults["MAX_IMAGES"] == 500 and defaults["ALLOW_PRIVATE_URLS"] is False


@pytest.mark.parametrize(("name", "value"), [("MAX_IMAGES", "lots"), ("SMTP_SECURITY", "tls13"),
                                             ("SAFE_SEARCH", "maybe")])
def test_a_bad_value_names_the_setting(name, value):
    with pytest.raises(ValueError, match=name):
        config.load({name: value})


def test_readme_table_lists_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.M))
    assert documented == {s.name for s in config.SETTINGS}


def test_env_example_lists_every_setting():
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^# ([A-Z0-9_]+)=", example, flags=re.M))
    assert listed == {s.name for s in config.SETTINGS}
