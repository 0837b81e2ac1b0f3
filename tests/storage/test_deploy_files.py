"""Heroku's app.json and .python-version stay in step with config.SETTINGS and the Procfile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import config

ROOT = Path(__file__).resolve().parents[2]
CHROME_FOR_TESTING = "https://github.com/heroku/heroku-buildpack-chrome-for-testing"


def app_json() -> dict:
    return json.loads((ROOT / "app.json").read_text(encoding="utf-8"))


def test_app_json_lists_every_setting_with_its_help():
    env = app_json()["env"]
    assert set(env) == {s.name for s in config.SETTINGS}
    for setting in config.SETTINGS:
        assert env[setting.name]["description"] == setting.help, setting.name


def test_only_the_secret_key_is_required_and_it_is_generated():
    env = app_json()["env"]
    assert env["SECRET_KEY"]["generator"] == "secret" and env["SECRET_KEY"]["required"] is True
    assert all(entry["required"] is False for name, entry in env.items() if name != "SECRET_KEY")
    assert all(isinstance(entry.get("value", ""), str) for entry in env.values()), "Heroku wants string values"


def test_app_json_buildpacks_and_chrome_paths():
    app = app_json()
    assert [b["url"] for b in app["buildpacks"]] == [CHROME_FOR_TESTING, "heroku/python"]
    assert app["addons"] == []
    env = app["env"]
    # Where the Chrome for Testing buildpack unpacks its zips ($HOME is /app on a dyno).
    assert env["CHROME_BIN"]["value"] == "/app/.chrome-for-testing/chrome-linux64/chrome"
    assert env["CHROMEDRIVER"]["value"] == "/app/.chrome-for-testing/chromedriver-linux64/chromedriver"


def test_formation_names_only_procfile_processes():
    formation = app_json()["formation"]
    assert formation["web"]["quantity"] == 1 and formation["worker"]["quantity"] == 0
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8")
    processes = set(re.findall(r"^([a-z]+):", procfile, flags=re.M))
    assert set(formation) <= processes


def test_python_version_pins_311():
    assert (ROOT / ".python-version").read_text(encoding="utf-8").strip() == "3.11"
