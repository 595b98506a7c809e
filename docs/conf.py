"""Sphinx configuration of the returnflow docs site.

Build it (strict: any warning fails) with::

    python3 -m sphinx -W --keep-going -b html docs site

Pages are Markdown (MyST); the API reference is generated from the docstrings with autodoc;
the statechart on the concepts page is drawn from :class:`returnflow.ReturnChart` at build
time by the ``returnflow-statechart`` directive defined below, as an SVG embedded in the page
(python-statemachine's diagram support: pydot, from the ``docs`` extra, and Graphviz's
``dot`` program, which the build needs on ``PATH``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))  # document this checkout, not an installed copy

from returnflow import __version__  # noqa: E402

project = "returnflow"
author = "returnflow developers"
copyright = "returnflow developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "statemachine.contrib.diagram.sphinx_ext",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# -- Markdown -------------------------------------------------------------------------------

myst_heading_anchors = 3

# -- API reference --------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # the chart's base class documents itself
autodoc_typehints = "signature"
autodoc_use_type_comments = False  # annotations only: reading every source again is slow
add_module_names = False
python_display_short_literal_types = True

# -- HTML -----------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"returnflow {release}"
html_show_sourcelink = False


# -- the statechart, drawn from the code ----------------------------------------------------


# -- API reference: a Protocol is implemented, never constructed ------------------------------


def _protocol_signature(
    app: Any,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """A ``typing.Protocol`` (a port) has no constructor of its own: autodoc would show
    ``(*args, **kwargs)``, the signature of the placeholder ``typing`` gives it. Show the
    class without one; its methods keep their real signatures."""
    if what == "class" and getattr(obj, "_is_protocol", False):
        return "", return_annotation
    return None


def setup(app: Any) -> dict[str, Any]:
    from statemachine.contrib.diagram.sphinx_ext import StateMachineDiagram

    class Statechart(StateMachineDiagram):  # type: ignore[misc]
        """``returnflow-statechart``: :class:`ReturnChart` as the code has it now, an SVG
        embedded in the page (what ``returnflow diagram --format svg`` prints), linked to the
        full-size drawing. Without Graphviz the build warns, and so fails."""

        required_arguments = 0

        def run(self) -> Any:
            self.arguments = ["returnflow.lifecycle.chart.ReturnChart"]
            self.options.setdefault("target", "")
            self.options.setdefault("alt", "The statechart of a return")
            return super().run()

    app.add_directive("returnflow-statechart", Statechart)
    app.connect("autodoc-process-signature", _protocol_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
