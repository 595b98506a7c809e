"""Every Python block in the README and docs/ runs, and the examples run as scripts."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for path in DOCS:
        for index, match in enumerate(BLOCK.finditer(path.read_text(encoding="utf-8"))):
            found.append((path.relative_to(ROOT).as_posix(), index, match.group(1)))
    return found


def test_the_readme_has_code_to_run() -> None:
    assert any(name == "README.md" for name, _, _ in _blocks())


@pytest.mark.parametrize(("name", "index", "code"), _blocks(), ids=lambda v: str(v)[:30])
def test_doc_block_runs(name: str, index: int, code: str, tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"doc_{index}"}
    exec(compile(code, f"{name}[{index}]", "exec"), namespace)
    if "class Test" in code or "TestCase" in code:
        # A block that defines tests is a test module a host would write: pytest runs it.
        module = tmp_path / f"test_doc_block_{index}.py"
        module.write_text(code, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert " passed" in done.stdout.splitlines()[-1]


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sys.argv = [str(script)]
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{script.name} printed nothing"
