"""``python -m returnflow``: the ``returnflow`` command (:func:`returnflow.cli.main`), for an
environment where the package is importable but its script is not installed (a checkout on
``PYTHONPATH``, a zipapp, a container without the entry point)."""

from returnflow.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
