"""Durable state behind one interface: SQLite (WAL) by default, PostgreSQL later."""

from solr_policy.store.base import Store
from solr_policy.store.sqlite import SqliteStore, default_db_path, open_store

__all__ = ["SqliteStore", "Store", "default_db_path", "open_store"]
