"""Imports go one way: app -> web -> scheduler -> jobs -> crawler -> (scraper, downloader, storage, mailer) -> db
-> config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Highest first. A package may import from the layers below its own, never from its own layer's other packages
# (the four stages do not know each other) nor from a layer above.
LAYERS: list[set[str]] = [
    {"app"},
    {"web"},
    {"scheduler"},
    {"jobs"},
    {"crawler"},  # beside the jobs' stages: it uses downloader and scraper, and jobs may use it
    {"scraper", "downloader", "storage", "mailer"},
    {"db"},
    {"config"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Entry points stand above every layer, like app.py: `python -m scheduler` builds the app it runs.
ENTRY_POINTS = {"scheduler/__main__.py"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of this project's packages imported anywhere in ``path`` (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & RANK.keys()


def upward_imports(package: str) -> list[str]:
    """``file: imported`` for every import of ``package``'s modules that breaks the direction."""
    base = ROOT / package
    files = sorted(base.rglob("*.py")) if base.is_dir() else [ROOT / f"{package}.py"]
    bad = []
    for path in files:
        if str(path.relative_to(ROOT)) in ENTRY_POINTS:
            continue
        for name in sorted(imported_packages(path) - {package}):
            if RANK[name] <= RANK[package]:
                bad.append(f"{path.relative_to(ROOT)}: imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(RANK))
def test_no_import_goes_up_or_sideways(package: str) -> None:
    assert upward_imports(package) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("import os\nfrom web.views import x\ndef f():\n    import jobs.runner\n")
    assert imported_packages(module) == {"web", "jobs"}
