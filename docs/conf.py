"""Sphinx configuration of the returnflow docs site.

Build it (strict: any warning fails) with::

    python3 -m sphinx -W --keep-going -b html docs site

Pages are Markdown (MyST); the API reference is generated from the docstrings with autodoc;
the statechart on the concepts page is drawn from :class:`returnflow.ReturnChart` at build
time by the ``returnflow-statechart`` directive defined below, and rendered by Mermaid.
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
    "sphinxcontrib.mermaid",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# -- Markdown -------------------------------------------------------------------------------

myst_heading_anchors = 3
myst_fence_as_directive = ["mermaid"]

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
mermaid_height = "auto"
mermaid_fullscreen = True


# -- the statechart, drawn from the code ----------------------------------------------------


def setup(app: Any) -> dict[str, Any]:
    from sphinxcontrib.mermaid import Mermaid

    from returnflow.lifecycle.chart import ReturnChart

    class Statechart(Mermaid):
        """``returnflow-statechart``: the Mermaid diagram of :class:`ReturnChart` as the code
        has it now (what ``returnflow diagram --format mermaid`` prints)."""

        has_content = False
        required_arguments = 0

        def get_mm_code(self) -> str:
            return f"{ReturnChart:mermaid}"

    app.add_directive("returnflow-statechart", Statechart)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
