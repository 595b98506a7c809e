"""The statechart as a picture, drawn from the code by python-statemachine's diagram support.

``mermaid`` is text python-statemachine writes itself; ``dot`` (the Graphviz language) needs
`pydot`; ``svg`` and ``png`` also need Graphviz's ``dot`` program on ``PATH``. pydot comes with
the ``returnflow[diagram]`` extra; Graphviz is a system package (Debian and Ubuntu:
``apt-get install graphviz``; macOS: ``brew install graphviz``).

``returnflow diagram --format svg`` prints the same picture; the docs site embeds the SVG
drawn at build time.
"""

from __future__ import annotations

from typing import Literal

from returnflow.errors import ConfigurationError, InvalidPayload
from returnflow.lifecycle.chart import ReturnChart

__all__ = ["FORMATS", "Format", "render"]

Format = Literal["svg", "png", "dot", "mermaid"]

FORMATS: tuple[Format, ...] = ("svg", "png", "dot", "mermaid")
"""The formats :func:`render` draws: two pictures and two texts."""

_EXTRA = "pip install 'returnflow[diagram]'"
_GRAPHVIZ = "apt-get install graphviz, or brew install graphviz"


def render(fmt: str) -> str | bytes:
    """The statechart of :class:`~returnflow.lifecycle.chart.ReturnChart` in ``fmt``.

    ``svg``, ``dot`` and ``mermaid`` are text (``str``); ``png`` is ``bytes``. Raises
    :class:`~returnflow.errors.InvalidPayload` (field ``format``) for another format, and
    :class:`~returnflow.errors.ConfigurationError` (field ``format``) when what ``fmt``
    needs is not installed: pydot for ``dot``, ``svg`` and ``png`` (the ``diagram`` extra),
    Graphviz for ``svg`` and ``png``, or when Graphviz fails.
    """
    if fmt not in FORMATS:
        raise InvalidPayload("format", fmt, f"must be one of: {', '.join(FORMATS)}")
    if fmt == "mermaid":
        return f"{ReturnChart:mermaid}"
    try:
        import pydot  # noqa: F401  (the dot renderer needs it)
        from statemachine.contrib.diagram import GraphvizError, GraphvizNotFoundError, formatter
        from statemachine.contrib.diagram.graphviz import run_graphviz
    except ImportError as error:
        raise ConfigurationError(
            f"needs pydot ({_EXTRA}): {error}", field="format", value=fmt
        ) from None
    source = formatter.render(ReturnChart, "dot")
    if fmt == "dot":
        return source
    try:
        drawn = run_graphviz(source, fmt)
    except GraphvizNotFoundError:
        raise ConfigurationError(
            f"needs Graphviz's dot program on PATH ({_GRAPHVIZ})", field="format", value=fmt
        ) from None
    except GraphvizError as error:
        raise ConfigurationError(f"Graphviz failed: {error}", field="format", value=fmt) from None
    return drawn if fmt == "png" else drawn.decode("utf-8")
