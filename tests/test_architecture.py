"""The rooms of the code: what may import what, no cycles, no module too long to read.

The import graph is read from the source with :mod:`ast`: an import inside
``if TYPE_CHECKING:`` is a type-only import and does not count as an edge (except where a rule
says "also for types").
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "returnflow"
PACKAGE = "returnflow"

# The functional core (the rules, and the chart they fire) may not import the shell around
# it: the service and its write paths, the dispatcher and its task-queue host, the timers, the
# importer, the stores, the testing kit, the CLI or the demo.
CORE = ("returnflow.domain", "returnflow.decisions", "returnflow.lifecycle")
SHELL = (
    "returnflow.service",
    "returnflow.commits",
    "returnflow.opening",
    "returnflow.dispatch",
    "returnflow.integrations",
    "returnflow.timers",
    "returnflow.importing",
    "returnflow.retention",
    "returnflow.stores",
    "returnflow.testing",
    "returnflow.cli",
    "returnflow.cli_prune",
    "returnflow._cli_support",
    "returnflow.demo",
)
LONGEST = 600  # lines; the testing kit is exempt (see below)
LONG_BY_DESIGN: set[str] = set()  # none: a module over LONGEST is split into rooms


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.glob("**/*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(
    source: str, module: str, known: Iterable[str], *, with_types: bool = False
) -> set[str]:
    """The ``returnflow`` modules ``module`` imports (``known``: every module there is).

    ``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``.
    Imports under ``if TYPE_CHECKING:`` count only ``with_types``."""
    names = set(known)
    is_package = module in names and any(other.startswith(module + ".") for other in names)
    found: set[str] = set()

    def visit(nodes: Iterable[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                if with_types:
                    visit(node.body)
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    found.add(full if full in names else target)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(ast.parse(source).body)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def import_graph(*, with_types: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: imports_of(path.read_text("utf-8"), name, modules, with_types=with_types) - {name}
        for name, path in modules.items()
    }


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same node, or ``None``."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def walk(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in done:
                cycle = walk(nxt)
                if cycle:
                    return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for node in sorted(graph):
        if node not in done:
            cycle = walk(node)
            if cycle:
                return cycle
    return None


def _within(name: str, roots: Iterable[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


# -- the checker itself ------------------------------------------------------------------------


def test_the_checker_reads_relative_type_only_and_from_imports() -> None:
    known = {"returnflow", "returnflow.a", "returnflow.a.b", "returnflow.a.c", "returnflow.d"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "from returnflow.a import b, thing\n"
        "from . import c\n"
        "import returnflow.d\n"
        "if TYPE_CHECKING:\n"
        "    from returnflow import service\n"
        "def f():\n"
        "    from returnflow.a.c import later\n"
    )
    assert imports_of(source, "returnflow.a.x", known) == {
        "returnflow.a.b",
        "returnflow.a",
        "returnflow.a.c",
        "returnflow.d",
    }
    assert "returnflow" in imports_of(source, "returnflow.a.x", known, with_types=True)


def test_the_checker_finds_a_planted_cycle_and_none_where_there_is_none() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


# -- the rules ----------------------------------------------------------------------------------


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    # The package's __init__ re-exports the public names: importing it is not a dependency
    # on what it re-exports, so it is left out of the cycle check.
    graph = {name: deps - {PACKAGE} for name, deps in graph.items() if name != PACKAGE}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def shell_imports_of_the_core(graph: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Per core module, the shell modules (or the package root, which re-exports the
    service) it imports."""
    found = {
        name: sorted(dep for dep in deps if _within(dep, SHELL) or dep == PACKAGE)
        for name, deps in graph.items()
        if _within(name, CORE)
    }
    return {name: deps for name, deps in found.items() if deps}


def test_the_checker_finds_a_planted_core_import_of_the_shell() -> None:
    graph = {
        "returnflow.decisions.a": {"returnflow.domain.model", "returnflow.service"},
        "returnflow.lifecycle.b": {"returnflow.stores.sqlite"},
        "returnflow.domain.c": {"returnflow"},
        "returnflow.service": {"returnflow.decisions.a"},
        "returnflow.decisions.d": {"returnflow.ports.store", "returnflow.errors"},
    }
    assert shell_imports_of_the_core(graph) == {
        "returnflow.decisions.a": ["returnflow.service"],
        "returnflow.lifecycle.b": ["returnflow.stores.sqlite"],
        "returnflow.domain.c": ["returnflow"],
    }


@pytest.mark.parametrize("module", sorted(n for n in _modules() if _within(n, CORE)))
def test_the_core_never_imports_the_shell(module: str) -> None:
    graph = import_graph(with_types=True)
    assert module in graph
    wrong = shell_imports_of_the_core({module: graph[module]})
    assert not wrong, f"{module} imports {wrong[module]}"


def test_every_shell_room_exists() -> None:
    modules = _modules()
    missing = [room for room in SHELL if not any(_within(name, (room,)) for name in modules)]
    assert not missing, f"SHELL names rooms that are gone: {missing}"


def test_nothing_the_importer_depends_on_imports_it_also_for_types() -> None:
    graph = import_graph(with_types=True)
    below: set[str] = set()
    todo = ["returnflow.service"]
    while todo:  # the service and everything it needs, type-only imports included
        name = todo.pop()
        if name not in below:
            below.add(name)
            todo.extend(graph.get(name, ()) - {PACKAGE})
    assert "returnflow.importing" not in below, sorted(
        name for name in below if "returnflow.importing" in graph.get(name, ())
    )
    assert "returnflow.service" in graph["returnflow.importing"]


def test_the_shell_around_the_service_never_needs_the_service_at_run_time() -> None:
    graph = import_graph()
    for module in (
        "returnflow.commits",
        "returnflow.opening",
        "returnflow.dispatch",
        "returnflow.timers",
    ):
        assert "returnflow.service" not in graph[module], module


def test_the_dispatcher_has_no_isinstance_chain_over_effects() -> None:
    tree = ast.parse((SRC / "dispatch.py").read_text("utf-8"))
    checks = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "isinstance"
    ]
    assert len(checks) <= 2, "effects are dispatched through HANDLERS, not isinstance"


def test_every_effect_type_has_a_handler() -> None:
    from returnflow.dispatch import HANDLERS
    from returnflow.lifecycle import effects as fx

    kinds = {getattr(fx, name) for name in fx.__all__ if isinstance(getattr(fx, name), type)}
    concrete = {kind for kind in kinds if kind is not fx.Effect}
    assert set(HANDLERS) == concrete


@pytest.mark.parametrize(
    "module", sorted(n for n in _modules() if not _within(n, ("returnflow.testing",)))
)
def test_no_module_outside_the_testing_kit_is_too_long_to_read(module: str) -> None:
    lines = len(_modules()[module].read_text("utf-8").splitlines())
    if module in LONG_BY_DESIGN:
        return
    assert lines <= LONGEST, f"{module}: {lines} lines"


def test_the_service_is_thin() -> None:
    lines = len((SRC / "service.py").read_text("utf-8").splitlines())
    assert lines <= 500, f"service.py: {lines} lines"


def test_the_architecture_page_names_only_modules_that_exist() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text("utf-8")
    paths = set(re.findall(r"returnflow/[\w/]+(?:\.py|/)", page))
    assert paths
    missing = sorted(path for path in paths if not (SRC.parent / path).exists())
    assert not missing, f"docs/architecture.md names {missing}"
    from returnflow.decisions import carrier, completion, facts, results
    from returnflow.dispatch import Dispatcher

    for name, owner in (
        ("receive", facts),
        ("drain", facts),
        ("carrier_update", carrier),
        ("pay_early", completion),
        ("apply_result", results),
        ("dispatch_return", Dispatcher),
        ("dispatch_pending", Dispatcher),
    ):
        assert name in page, name
        assert hasattr(owner, name), name


def test_the_readme_layout_lists_the_tree_as_it_is() -> None:
    """Every public module and package at the top of ``src/returnflow`` has its line in the
    README's layout block, and every entry the block starts a line with exists."""
    readme = (ROOT / "README.md").read_text("utf-8")
    block = readme.split("## Layout", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    listed = set(re.findall(r"^  ([\w.]+/?)", block, flags=re.MULTILINE))
    named = set(re.findall(r"[\w.]+\.py|[\w]+/", block))
    tree = {
        path.name + ("/" if path.is_dir() else "")
        for path in SRC.iterdir()
        if not path.name.startswith(("_", ".")) and (path.is_dir() or path.suffix == ".py")
    }
    assert sorted(tree - named) == [], "missing from README's layout"
    assert sorted(listed - tree) == [], "in README's layout but not in the tree"
