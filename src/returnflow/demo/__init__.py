"""What ``returnflow demo`` runs, and the demo defaults of ``worker`` and ``import``: the seed
scenarios on the fake ports (:mod:`.scenarios`), a service built on a store for the worker
(:mod:`.app`) and a return source of made-up external returns (:mod:`.import_source`).

Nothing here is part of a host's wiring; tests and benchmarks use the scenarios' orders.
"""
