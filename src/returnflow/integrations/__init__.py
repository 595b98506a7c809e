"""Wiring returnflow into what hosts already run: :mod:`returnflow.integrations.celery` (task
queues) and :mod:`returnflow.integrations.shopify` (Shopify's native returns)."""
