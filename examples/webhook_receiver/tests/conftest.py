"""Put the receiver (one folder up) on the import path, as a host's own package would be;
fixtures: a receiver serving on a free loopback port, with or without its worker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver_site import SERVERS, Site, open_site

# Two conftest modules in folders without __init__.py share the module name "conftest";
# with --doctest-modules pytest would also import this file as a module: it is not one.
collect_ignore = ["conftest.py"]


@pytest.fixture(params=SERVERS)
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The receiver with its worker thread, on each server."""
    yield from open_site(tmp_path, server=request.param)


@pytest.fixture(params=SERVERS)
def bare_site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    """The receiver alone: effects stay in the outbox until something delivers them."""
    yield from open_site(tmp_path, worker=False, server=request.param)
