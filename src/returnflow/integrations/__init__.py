"""Wiring returnflow into what hosts already run: :mod:`returnflow.integrations.celery`."""
