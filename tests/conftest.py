"""Hypothesis settings profiles for the test suite.

``ci`` (the default) keeps the suite quick and repeatable: it draws the same examples on
every run, so a red run is a real regression and not a new draw. ``thorough`` runs the
property and stateful tests much longer, with fresh random examples each time. Choose one
with ``RETURNFLOW_HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from _builders import pg_dsn, way

__all__ = ["pg_dsn", "way"]  # fixtures shared by the test modules (see _builders)

# This file has no doctests; with ``--doctest-modules`` pytest would import it again as a
# module named ``conftest``, which clashes with any other rootless ``conftest.py`` collected
# in the same run (``examples/host_adapter/tests``).
collect_ignore = ["conftest.py"]

_SLOW_DRAWS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile(
    "ci",
    max_examples=25,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=_SLOW_DRAWS,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=500,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=_SLOW_DRAWS,
    print_blob=True,
)
settings.load_profile(os.environ.get("RETURNFLOW_HYPOTHESIS_PROFILE", "ci"))


def _import_every_returnflow_module() -> None:
    """Import the whole package before any test runs.

    Hypothesis draws some values from the literals of the project's modules loaded so far
    (its pool of "local constants", read again whenever ``sys.modules`` grows). Without this,
    a derandomized test draws differently after a test that imported, say, the Shopify
    adapter: the same test passed alone and failed after others. With every module loaded
    first, the pool, and so the draws, are the same whatever runs before."""
    import returnflow

    for module in pkgutil.walk_packages(returnflow.__path__, "returnflow."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra that is not installed: the same every run
            continue


_import_every_returnflow_module()


@pytest.fixture(autouse=True)
def _returnflow_logging_restored() -> Iterator[None]:
    """Put the ``returnflow`` loggers back as they were after each test: a docs example that
    routes them to a stream (docs/logging.md) must not keep building records for the rest
    of the suite."""
    names = [
        "returnflow",
        *(n for n in logging.Logger.manager.loggerDict if n.startswith("returnflow.")),
    ]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
    yield
    for name in [
        n
        for n in logging.Logger.manager.loggerDict
        if n == "returnflow" or n.startswith("returnflow.")
    ]:
        logger = logging.getLogger(name)
        level, handlers, propagate, disabled = saved.get(name, (logging.NOTSET, [], True, False))
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled
