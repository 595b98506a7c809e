"""Put the adapter (one folder up) on the import path, as a host's own package would be."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Two conftest modules in folders without __init__.py share the module name "conftest";
# with --doctest-modules pytest would also import this file as a module: it is not one.
collect_ignore = ["conftest.py"]
