"""Write the README's settings table, .env.example and app.json's env from config.SETTINGS (after adding one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402


def _default(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def table() -> str:
    rows = ["| Setting | Default | What it does |", "|---|---|---|"]
    for s in config.SETTINGS:
        default = _default(s.default)
        rows.append(f"| `{s.name}` | {f'`{default}`' if default else '—'} | {s.help.replace('|', '/')} |")
    return "\n".join(rows)


def env_example() -> str:
    lines = ["# Copy to .env for local runs (python-dotenv loads it). Every setting is optional: see README.md.", ""]
    for s in config.SETTINGS:
        lines += [f"# {s.help}", f"# {s.name}={_default(s.default)}"]
    return "\n".join(lines) + "\n"


def update_app_json(path: Path) -> None:
    """Keep Heroku's app.json env in step: every setting with its help; values chosen there are kept."""
    app = json.loads(path.read_text(encoding="utf-8"))
    old = app.get("env", {})
    env = {}
    for s in config.SETTINGS:
        entry = {"description": s.help, "required": False}
        for key in ("value", "generator", "required"):
            if key in old.get(s.name, {}):
                entry[key] = old[s.name][key]
        env[s.name] = entry
    app["env"] = env
    path.write_text(json.dumps(app, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def update_files() -> None:
    """Rewrite .env.example, app.json's env and the table between the README's settings markers."""
    root = Path(__file__).resolve().parents[1]
    update_app_json(root / "app.json")
    (root / ".env.example").write_text(env_example(), encoding="utf-8")
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- settings:start -->", "<!-- settings:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table()}\n{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    update_files()
