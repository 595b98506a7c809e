"""Importable helpers for tests/test_durability.py: code that runs in child processes."""
