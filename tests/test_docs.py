"""Every code block in the README and docs/ is executed or checked, and the examples run.

Each fenced block is of a kind this module knows, and each kind is handled:

* ``python``: run on its own (a block that defines test classes is also run by pytest);
* ``console`` / ``sh`` / ``bash``: every command runs, and a ``console`` block's shown output
  must be what the command prints (``...`` stands for any text, as in doctest). A
  ``returnflow ...`` command runs through :func:`returnflow.cli.main`, ``python3
  examples/NAME.py`` runs the example script, in a temporary working directory. The only
  commands not run here are listed in ``NOT_RUN_HERE``, each with the place that runs it;
* ``mermaid``, ``text``: data, shown as they are;
* ``toml``: data, parsed here;
* ``{directive}`` blocks (MyST): the docs build renders them (tests/test_docs_site.py);
  an included file must be an example script, which ``test_example_runs`` runs, and an
  ``eval-rst`` block may hold ``automodule`` and ``autodata`` directives only (no code
  hides in reST).

A block of any other kind fails ``test_every_block_is_of_a_handled_kind``.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from returnflow.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

PYTHON = frozenset({"python"})
SHELL = frozenset({"console", "sh", "bash"})
DATA = frozenset({"mermaid", "text"})
TOML = frozenset({"toml"})
DIRECTIVES = frozenset({"toctree", "eval-rst", "literalinclude", "returnflow-statechart"})
# options may name members (":exclude-members: FeePolicy"), nothing else
AUTODOC = re.compile(
    r"(\.\. auto(module|data):: [\w.]+\n(   :[\w-]+:( [\w.]+(, [\w.]+)*)?\n)*\n?)+"
)

NOT_RUN_HERE = {
    # The README's own commands, which CI itself runs (.ci/run) before and as this suite.
    "python3 -m pip install .": "CI installs the package (editable, with the dev extra)",
    "python3 -m pip install -e '.[dev]'": "the install command of CI",
    "python3 -m pytest": "the test command of CI: this suite",
    # A server that runs until stopped: the example's own tests start this script on a free
    # port, drive it over HTTP and stop it with SIGINT (test_webhook_flow.py).
    "RETURNFLOW_WEBHOOK_SECRET=whsec-demo python examples/webhook_receiver/receiver.py "
    "--port 8000 --db returns.db": "examples/webhook_receiver/tests/test_webhook_flow.py",
    # Mutation testing of the rules: run by hand, not here or in CI (it runs the money and
    # policy tests once per mutant, for tens of minutes).
    "python3 -m pip install mutmut==3.8.1": "by hand (docs/testing.md)",
    "mutmut run": "by hand (docs/testing.md)",
    "mutmut results": "by hand (docs/testing.md)",
    # The docs build, run with exactly these arguments by tests/test_docs_site.py.
    "python3 -m sphinx -W --keep-going -b html docs site": "tests/test_docs_site.py",
}


@attrs.frozen
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    body: str

    @property
    def kind(self) -> str:
        word = self.info.split()[0] if self.info.split() else ""
        return word[1:-1] if word.startswith("{") and word.endswith("}") else word

    @property
    def directive(self) -> bool:
        return self.info.startswith("{")

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (``` or ~~~ fences, CommonMark rules)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        stripped = lines[index].lstrip(" ")
        indent = len(lines[index]) - len(stripped)
        fence = stripped[:3]
        if indent < 4 and fence in ("```", "~~~"):
            width = len(stripped) - len(stripped.lstrip(fence[0]))
            info = stripped[width:].strip()
            body: list[str] = []
            end = index + 1
            while end < len(lines):
                closing = lines[end].strip()
                if closing.startswith(fence[0] * width) and not closing.strip(fence[0]):
                    break
                body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
                end += 1
            found.append(Block(path, index + 1, info, "\n".join(body) + "\n"))
            index = end + 1
        else:
            index += 1
    return found


BLOCKS = [block for path in DOCS for block in _blocks(path)]


def _of(kinds: frozenset[str], *, directive: bool = False) -> list[Block]:
    return [block for block in BLOCKS if block.kind in kinds and block.directive == directive]


def test_every_block_is_of_a_handled_kind() -> None:
    unhandled = [
        f"{block.name} ```{block.info}"
        for block in BLOCKS
        if not (
            (block.directive and block.kind in DIRECTIVES)
            or (not block.directive and block.kind in PYTHON | SHELL | DATA | TOML)
        )
    ]
    assert not unhandled, (
        "code blocks of a kind no test runs or checks (run them in tests/test_docs.py, or "
        f"declare them data there): {unhandled}"
    )


def test_the_readme_has_code_to_run() -> None:
    assert any(block.path.name == "README.md" for block in _of(PYTHON))


# -- python ----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of(PYTHON), ids=lambda block: block.name)
def test_doc_block_runs(block: Block, tmp_path: Path) -> None:
    code = block.body
    namespace: dict[str, object] = {"__name__": f"doc_{block.line}"}
    exec(compile(code, block.name, "exec"), namespace)
    if "class Test" in code or "TestCase" in code:
        # A block that defines tests is a test module a host would write: pytest runs it.
        module = tmp_path / f"test_doc_block_{block.line}.py"
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


# -- shell -------------------------------------------------------------------------------------


@attrs.frozen
class Command:
    line: str
    shown: str  # the output the block shows under it ("" when it shows none)


def _commands(block: Block) -> list[Command]:
    """The commands of a shell block: ``$ `` lines and the output under them in a ``console``
    block, every line but comments in ``sh`` and ``bash`` blocks; a trailing ``\\`` joins
    a command's lines."""
    console = block.kind == "console"
    lines: list[str] = []
    for line in block.body.splitlines():
        if lines and lines[-1].endswith("\\") and (lines[-1].startswith("$ ") or not console):
            lines[-1] = f"{lines[-1][:-1].rstrip()} {line.strip()}"
        else:
            lines.append(line)
    if not console:
        lines = [f"$ {line}" for line in lines if line.strip() and not line.startswith("#")]
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            assert not line.endswith("\\"), f"{block.name}: {line!r} continues nowhere"
            found.append((line[2:].strip(), []))
        elif found:
            found[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"{block.name}: output before any command: {line!r}")
    return [Command(command, "\n".join(output)) for command, output in found]


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _environment(assignments: list[str]) -> Iterator[None]:
    """``NAME=value`` before a command; ``PYTHONPATH`` (relative to the repository's root)
    also goes on ``sys.path``, as a new interpreter would have it."""
    saved_environ, saved_path = dict(os.environ), list(sys.path)
    try:
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            os.environ[name] = value
            if name == "PYTHONPATH":
                sys.path[:0] = [str(ROOT / entry) for entry in value.split(os.pathsep)]
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        sys.path[:] = saved_path


def _run(part: str) -> tuple[int, str]:
    argv = shlex.split(part)
    assignments = []
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        assignments.append(argv.pop(0))
    out = io.StringIO()
    if argv[0] == "returnflow":
        with _environment(assignments):
            return main(argv[1:], out=out), out.getvalue()
    if argv[0] == "python3" and len(argv) == 2 and argv[1].startswith("examples/"):
        script = ROOT / argv[1]
        assert script in EXAMPLES, f"{argv[1]} is not an example script"
        with _argv([str(script)]), contextlib.redirect_stdout(out):
            runpy.run_path(str(script), run_name="__main__")
        return 0, out.getvalue()
    raise AssertionError(
        f"{part!r}: a shell command this module does not run; run it here, or name in "
        "NOT_RUN_HERE the test that runs it"
    )


def _same_output(shown: str, printed: str) -> bool:
    def tidy(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"

    checker = doctest.OutputChecker()
    return checker.check_output(tidy(shown), tidy(printed), doctest.ELLIPSIS)


@pytest.mark.parametrize("block", _of(SHELL), ids=lambda block: block.name)
def test_shell_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # `returnflow demo` without --db
    commands = _commands(block)
    assert commands, f"{block.name}: a shell block without a command"
    for command in commands:
        printed = ""
        for part in (part.strip() for part in command.line.split("&&")):
            if part in NOT_RUN_HERE:
                continue
            code, output = _run(part)
            assert code == 0, f"{block.name}: {part!r} exited {code}:\n{output}"
            printed += output
        if command.shown.strip():
            assert _same_output(command.shown, printed), (
                f"{block.name}: {command.line!r} printed\n{printed}\nbut the docs show\n"
                f"{command.shown}"
            )


def test_commands_not_run_here_are_shown_as_they_are_run() -> None:
    shown = {
        part.strip()
        for block in _of(SHELL)
        for command in _commands(block)
        for part in command.line.split("&&")
    }
    assert set(NOT_RUN_HERE) <= shown, set(NOT_RUN_HERE) - shown
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "-e '.[dev]'" in ci
    assert "python3 -m pytest" in ci


def test_the_shell_parser_sees_commands_and_their_output() -> None:
    block = Block(ROOT / "README.md", 1, "console", "$ returnflow a \\\n  --b\nout 1\n$ c\n")
    assert _commands(block) == [Command("returnflow a --b", "out 1"), Command("c", "")]
    assert _same_output("a\n...\nz", "a\nb\nc\nz\n")
    assert not _same_output("a\nz", "a\nb\nz\n")
    with pytest.raises(AssertionError, match="does not run"):
        _run("rm -rf build")


# -- data and directives -------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of(TOML), ids=lambda block: block.name)
def test_toml_block_parses(block: Block) -> None:
    tomllib = pytest.importorskip("tomllib")  # the standard library from Python 3.11
    tomllib.loads(block.body)


@pytest.mark.parametrize(
    "block", [block for block in BLOCKS if block.kind == "literalinclude"], ids=lambda b: b.name
)
def test_included_files_are_example_scripts(block: Block) -> None:
    included = (block.path.parent / block.info.split(maxsplit=1)[1]).resolve()
    assert included in EXAMPLES, f"{block.name} includes {included}, not an example script"


@pytest.mark.parametrize(
    "block", [block for block in BLOCKS if block.kind == "eval-rst"], ids=lambda b: b.name
)
def test_rest_blocks_only_document_modules(block: Block) -> None:
    assert AUTODOC.fullmatch(block.body), f"{block.name} holds more than autodoc directives"


# -- examples --------------------------------------------------------------------------------------


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(
    script: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(script)])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip(), f"{script.name} printed nothing"


RECIPES = sorted((ROOT / "docs" / "recipes").glob("*.md"))


SCRIPT = re.compile(r"examples/([\w-]+\.py)")


def _scripts_named(recipe: Path) -> set[Path]:
    return {ROOT / "examples" / name for name in SCRIPT.findall(recipe.read_text("utf-8"))}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_a_recipe_names_its_example_script(recipe: Path) -> None:
    scripts = _scripts_named(recipe)
    assert len(scripts) == 1, f"{recipe.name} names {len(scripts)} example scripts: {scripts}"
    assert scripts <= set(EXAMPLES), f"{recipe.name} names a script that does not exist"


def test_every_seed_example_has_its_recipe() -> None:
    named = {script for recipe in RECIPES for script in _scripts_named(recipe)}
    seeds = {script for script in EXAMPLES if script.name.startswith("seed_")}
    assert seeds <= named, f"seed examples without a recipe: {sorted(seeds - named)}"


# The recipes of this site show their script whole and what it prints, checked above.
SHOWN = [
    "smartpack-tags",
    "helpdesk-tickets",
    "clickpost-qc",
    "loop-native-exchanges",
    "loop-xoro-import",
    "instant-exchange",
]


@pytest.mark.parametrize("name", SHOWN)
def test_a_recipe_shows_its_script_and_what_it_prints(name: str) -> None:
    recipe = ROOT / "docs" / "recipes" / f"{name}.md"
    (script,) = _scripts_named(recipe)
    relative = script.relative_to(ROOT).as_posix()
    blocks = _blocks(recipe)
    included = {
        (recipe.parent / block.info.split(maxsplit=1)[1]).resolve()
        for block in blocks
        if block.kind == "literalinclude"
    }
    assert included == {script}, f"{recipe.name} does not include {relative}"
    runs = [
        command
        for block in blocks
        if block.kind == "console"
        for command in _commands(block)
        if command.line == f"python3 {relative}"
    ]
    assert runs, f"{recipe.name} does not run `python3 {relative}`"
    assert runs[0].shown.strip(), f"{recipe.name} does not show what {relative} prints"
