"""What a store target names: a PostgreSQL URL or a SQLite path; and URLs fit to print.

>>> is_postgres_url("postgresql://app@db.internal/returns"), is_postgres_url("returns.db")
(True, False)
>>> redacted("postgresql://app:s3cret@db.internal:5432/returns?sslmode=require")
'postgresql://app:***@db.internal:5432/returns?sslmode=require'
>>> redacted("host=db.internal password=s3cret dbname=returns")
'host=db.internal password=*** dbname=returns'
"""

from __future__ import annotations

import re

__all__ = ["is_postgres_url", "redacted"]

_SCHEMES = ("postgresql://", "postgres://")
_URL_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:/@?#]*:)[^@/?#]*@", re.IGNORECASE)
_PARAM_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", re.IGNORECASE)


def is_postgres_url(target: str) -> bool:
    """Whether ``target`` is a ``postgresql://`` or ``postgres://`` URL."""
    return target.lower().startswith(_SCHEMES)


def redacted(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``, for messages and errors."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", dsn))
