"""The docs site builds in strict mode, shows every page, and draws the chart from the code.

The build runs the README's own build command (``python3 -m sphinx -W --keep-going ...``)
into a temporary directory: Sphinx turns every warning into an error, and anything else the
build prints to stderr (a Python warning shown under Python's default filters) fails the
test too. It needs the ``docs`` extra (part of ``dev``, which CI installs); outside CI the
tests are skipped when Sphinx is missing.
"""

from __future__ import annotations

import html
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import attrs
import pytest

import returnflow
from returnflow.domain.policy import ReturnPolicy
from returnflow.domain.settlement import FeePolicy
from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.table import TABLE
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.events import EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.store import ReturnStore
from returnflow.ports.warehouse import Warehouse

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "returnflow"
PAGES = sorted(DOCS.glob("**/*.md"))

if not os.environ.get("CI"):
    pytest.importorskip("sphinx", reason="the docs extra is not installed")
    pytest.importorskip("pydot", reason="the docs extra is not installed")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz (dot) is not installed", allow_module_level=True)


def _build_command() -> list[str]:
    """The README's build command, exactly as a reader would type it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = {
        line.strip().removeprefix("$ ")
        for line in readme.splitlines()
        if line.strip().removeprefix("$ ").startswith("python3 -m sphinx")
    }
    assert len(found) == 1, f"the README shows {len(found)} docs build commands: {found}"
    return shlex.split(found.pop())


@attrs.frozen
class Site:
    path: Path
    stdout: str
    stderr: str
    returncode: int

    def page(self, name: str) -> str:
        return (self.path / f"{name}.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    command = _build_command()
    assert command[:3] == ["python3", "-m", "sphinx"], command
    assert command[-2] == "docs", command
    out = tmp_path_factory.mktemp("site") / "site"
    argv = [sys.executable, *command[1:3], "-q", *command[3:-1], str(out)]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(ROOT / "src")
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    return Site(out, done.stdout, done.stderr, done.returncode)


def test_the_site_builds_in_strict_mode_without_a_warning(site: Site) -> None:
    assert site.returncode == 0, site.stderr
    assert not site.stderr.strip(), f"the docs build warned:\n{site.stderr}"


def test_the_build_command_is_strict() -> None:
    command = _build_command()
    assert "-W" in command
    assert "--keep-going" in command
    assert command[command.index("-b") + 1] == "html"


class _Links(HTMLParser):
    """The links inside the element with class ``sidebar-tree`` (the site's navigation)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if self.depth:
            self.depth += 1
            if tag == "a" and found.get("href"):
                self.links.add(str(found["href"]).split("#")[0])
        elif "sidebar-tree" in (found.get("class") or "").split():
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1


def test_every_page_is_in_the_navigation(site: Site) -> None:
    parser = _Links()
    parser.feed(site.page("index"))
    assert parser.links, "no navigation found on the index page"
    wanted = {page.relative_to(DOCS).with_suffix(".html").as_posix() for page in PAGES}
    wanted.discard("index.html")  # the root is the site's title link
    missing = sorted(wanted - parser.links)
    assert not missing, f"pages not in the navigation: {missing}"
    for page in PAGES:
        assert (site.path / page.relative_to(DOCS).with_suffix(".html")).is_file()


def test_the_concepts_page_embeds_the_statechart_as_an_svg_with_every_state(site: Site) -> None:
    page = site.page("concepts")
    figure = re.findall(r'<div role="img" aria-label="([^"]*)">(<svg\b.*?</svg>)</div>', page, re.S)
    drawn = [svg for label, svg in figure if 'class="graph"' in svg]  # Graphviz's, not icons
    assert len(drawn) == 1, f"{len(drawn)} Graphviz drawings on the concepts page"
    svg = drawn[0]
    # Graphviz titles each node with its id: every state of both regions is drawn.
    titles = {html.unescape(title) for title in re.findall(r"<title>([^<]*)</title>", svg)}
    for state in ReturnChart.states_map:  # a compound state is a cluster
        assert state in titles or f"cluster_{state}" in titles, state
    edges = {title for title in titles if "->" in title}
    for region in (TABLE.lifecycle, TABLE.exchange):
        for source, row in region.items():
            for target in row.values():
                assert f"{source}->{target}" in edges, (source, target)
    assert "import mermaid" not in page, "the page still loads Mermaid"
    assert "<script" not in svg


def test_the_statechart_is_generated_not_pasted() -> None:
    concepts = (DOCS / "concepts.md").read_text(encoding="utf-8")
    assert "```{returnflow-statechart}" in concepts
    assert "stateDiagram" not in concepts


def test_the_concepts_page_names_every_state_and_event() -> None:
    concepts = (DOCS / "concepts.md").read_text(encoding="utf-8")
    names = [*TABLE.lifecycle_states, *TABLE.exchange_states, *TABLE.events]
    missing = [name for name in names if f"`{name}`" not in concepts]
    assert not missing, f"docs/concepts.md does not name: {missing}"


@pytest.mark.parametrize(
    "port",
    [CommercePlatform, Warehouse, Carrier, Payments, Notifier, EventPublisher, ReturnStore],
    ids=lambda port: port.__name__,
)
def test_the_ports_page_describes_every_method(port: type) -> None:
    text = (DOCS / "ports.md").read_text(encoding="utf-8")
    methods = [name for name in vars(port) if not name.startswith("_")]
    assert methods
    missing = [name for name in methods if f"`{name}(" not in text]
    assert not missing, f"docs/ports.md does not describe {port.__name__}.{missing}"


@pytest.mark.parametrize("policy", [ReturnPolicy, FeePolicy], ids=lambda cls: cls.__name__)
def test_the_configuration_page_describes_every_policy_field(policy: type) -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [field.name for field in attrs.fields(policy) if f"`{field.name}`" not in text]
    assert not missing, f"docs/configuration.md does not describe {policy.__name__}.{missing}"


def _public_modules() -> list[str]:
    modules = []
    for path in sorted(SRC.glob("**/*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        modules.append(".".join(parts))
    return modules


def test_the_api_reference_documents_every_public_module() -> None:
    text = "\n".join(page.read_text(encoding="utf-8") for page in (DOCS / "api").glob("*.md"))
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", text, re.M))
    missing = sorted(set(_public_modules()) - documented)
    assert not missing, f"public modules missing from docs/api/: {missing}"


def test_the_api_index_links_every_public_name_to_its_documentation(site: Site) -> None:
    page = site.page("api/index")
    names = sorted(set(returnflow.__all__) - {"__version__"})
    missing = [
        name for name in names if not re.search(rf'href="[^"]*#returnflow\.[\w.]*\.{name}"', page)
    ]
    assert not missing, f"docs/api/index.md does not link to the documentation of: {missing}"


def test_the_api_reference_has_the_docstrings(site: Site) -> None:
    page = site.page("api/service")
    assert 'id="returnflow.service.ReturnsService"' in page
    assert "Apply an inbound fact once." in page  # ReturnsService.handle's docstring


def test_the_api_reference_shows_no_private_default(site: Site) -> None:
    pages = sorted((site.path / "api").glob("*.html"))
    assert pages
    for page in pages:
        text = html.unescape(page.read_text(encoding="utf-8"))
        assert "<function _" not in text, page.name
        assert " object at 0x" not in text, page.name


def _signature(page: str, ident: str) -> str:
    found = re.search(
        rf'<dt class="sig sig-object py" id="{re.escape(ident)}">(.*?)</dt>', page, re.S
    )
    assert found, ident
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())


@pytest.mark.parametrize(
    "port",
    [CommercePlatform, Warehouse, Carrier, Payments, Notifier, EventPublisher, ReturnStore],
    ids=lambda port: port.__name__,
)
def test_the_api_reference_shows_ports_with_their_methods_real_signatures(
    site: Site, port: type
) -> None:
    page = site.page("api/ports")
    ident = f"{port.__module__}.{port.__name__}"
    assert _signature(page, ident) == f"class {port.__name__}¶"  # not (*args, **kwargs)
    for name in [name for name in vars(port) if not name.startswith("_")]:
        shown = _signature(page, f"{ident}.{name}")
        parameters = [p for p in inspect.signature(getattr(port, name)).parameters if p != "self"]
        assert shown.startswith(f"{name}("), shown
        for parameter in parameters:
            assert re.search(rf"\b{parameter}\b", shown), (name, parameter, shown)
