"""Durable state behind one interface: SQLite (WAL) by default, PostgreSQL for several nodes."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from solr_policy.errors import StoreUnavailable
from solr_policy.store.base import Store
from solr_policy.store.sqlite import SqliteStore, default_db_path

__all__ = ["SqliteStore", "Store", "check_postgres_url", "default_db_path", "is_postgres_url", "open_store"]

_URL_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """True for ``postgresql://...`` and ``postgres://...`` (libpq's URL forms)."""
    return isinstance(target, str) and target.strip().lower().startswith(_URL_SCHEMES)


def check_postgres_url(url: str) -> str:
    """``url`` if libpq can read it, else ``ValueError`` with one line (never the password)."""
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ValueError("a PostgreSQL store needs psycopg: pip install 'solr-policy[postgres]'") from None
    try:
        urlsplit(url).port  # libpq reads a bad port only when it connects
        conninfo_to_dict(url)
    except (ValueError, ProgrammingError) as exc:
        detail = next(iter(str(exc).splitlines()), type(exc).__name__)
        raise ValueError(f"not a valid PostgreSQL URL ({detail})") from None
    return url


def open_store(target: str | os.PathLike[str] | None = None, *, synchronous: str | None = None) -> Store:
    """Open (and create or migrate) the store ``target`` names: a ``postgresql://`` URL, or an
    SQLite file path (default ``SOLR_POLICY_DB`` or ``./solr-policy.db``). A store that cannot
    be used raises ``StoreUnavailable``. ``synchronous`` is SQLite's durability setting."""
    if is_postgres_url(target):
        # Imported here: psycopg is needed only by those who use PostgreSQL (the "postgres" extra).
        try:
            from solr_policy.store.postgres import PostgresStore
        except ImportError:
            raise StoreUnavailable("a PostgreSQL store needs psycopg: pip install 'solr-policy[postgres]'") from None
        assert isinstance(target, str)
        return PostgresStore(target)
    return SqliteStore(target if target is not None else default_db_path(), synchronous=synchronous)
