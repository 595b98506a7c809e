"""The package metadata says what the project supports, under which license.

Read from pyproject.toml (what the wheel's METADATA is built from): the Python-version
classifiers run from ``requires-python``'s lower bound to the newest version tested, the
license is an SPDX expression with its text shipped, and each extra the docs tell a reader to
install exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEWEST_TESTED = (3, 13)

tomllib = pytest.importorskip("tomllib")  # the standard library from Python 3.11


def _project() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data["project"])


def test_the_python_classifiers_cover_every_supported_version_and_no_other() -> None:
    project = _project()
    low = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    assert low, project["requires-python"]
    assert low.group(1) == "3"
    wanted = {f"3.{minor}" for minor in range(int(low.group(2)), NEWEST_TESTED[1] + 1)}
    found = {
        match.group(1)
        for classifier in project["classifiers"]
        if (match := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", classifier))
    }
    assert found == wanted == {"3.10", "3.11", "3.12", "3.13"}


def test_the_license_is_an_spdx_expression_and_its_text_ships() -> None:
    project = _project()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639


def test_every_extra_the_docs_name_exists() -> None:
    extras = set(_project()["optional-dependencies"])
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    named = {
        extra
        for path in texts
        for extra in re.findall(r"returnflow\[(\w+)\]", path.read_text(encoding="utf-8"))
    }
    assert named
    assert named <= extras, sorted(named - extras)
    assert any(req.startswith("pydot") for req in _project()["optional-dependencies"]["diagram"])
