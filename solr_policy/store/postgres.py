"""PostgreSQL implementation of the store, for several nodes sharing one database.

The store methods are ``store.sql.SqlStore``'s (the same SQL as SQLite's); this module is
the driver: psycopg 3, a connection pool, transactions, locks, faults and migrations.

- **Connections.** A ``psycopg_pool.ConnectionPool`` per store (one per process). A
  transaction holds one pooled connection from ``BEGIN`` to ``COMMIT``; a read outside a
  transaction borrows one for that statement. Connections are in autocommit mode and the
  store issues ``BEGIN``/``COMMIT`` itself, so a lone read is one round trip.
- **Transactions** are READ COMMITTED. ``transaction()`` nested in another joins it, as in
  SQLite. Write transactions are not serialised as a whole (SQLite's ``BEGIN IMMEDIATE``);
  what must not interleave is serialised by transaction-scoped advisory locks, taken by the
  shared SQL through ``_serialise``:

  * per originator, at the first read of its User, counter, ADT files or usage: two
    decisions of one originator (two copies of one request sent to two nodes) run one after
    the other, and the second reads the counter and usage the first committed;
  * per quarantine item, when a held request is read in a transaction: of two officers
    releasing it at once, the second sees it released;
  * one lock for the audit chain, taken to append: one linear chain, whatever the node;
  * one lock for governance acts, taken by each act (and shared by decisions, first in their
    transaction): acts apply one at a time, each reading the officers and keys the acts
    before it left; a decision runs beside other decisions but never beside an act, so an act
    committed on one node is in force for every decision logged after it, and an act holding
    the audit chain never waits for an originator a decision holds (a deadlock).

  Why advisory locks, not ``SELECT ... FOR UPDATE`` or SERIALIZABLE: ``FOR UPDATE`` locks
  only rows that exist, and an originator's first request has no counter row yet;
  SERIALIZABLE needs the whole unit of work retried on a serialisation failure, which the
  engine's ``with store.transaction():`` block cannot be from inside the store (the failure
  would refuse a genuine request). A lock per originator keeps different originators'
  decisions side by side; only the audit append, at the end, is one at a time.
- **Faults.** Every driver or pool error becomes ``StoreUnavailable`` with one line naming
  the server (password never shown): unreachable, login refused, no such database, not a URL,
  busy (a lock waited for longer than ``lock_timeout``), and so on. A connection lost while COMMIT is answered
  leaves the outcome unknown: the transaction stands as committed if its newest audit entry
  is in the log (read on another connection), else it is a fault (refused by default).
- **Migrations** are the files ``migrations/postgres/NNNN_name.sql``, applied in order at
  start, each in its own transaction, recorded in ``schema_migrations``. An advisory lock
  makes nodes starting together apply each once. A database with a migration this version
  does not know (a newer solr-policy) is refused.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from solr_policy.errors import StoreUnavailable
from solr_policy.store.sql import Cursor, Row, SqlStore

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations" / "postgres"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def redacted(url: str) -> str:
    """The URL as shown in messages: no password, no query (it may hold one too)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return f"{url.split('://', 1)[0]}://..."
    user = f"{parts.username}@" if parts.username else ""
    port = parts.netloc.rpartition(":")[2] if ":" in parts.netloc.rpartition("@")[2] else ""  # as written, even if not a number
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    return f"{parts.scheme}://{user}{host}{':' + port if port else ''}{parts.path}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key (Python's ``hash`` differs between processes)."""
    return int.from_bytes(hashlib.sha256(f"solr-policy:{name}".encode()).digest()[:8], "big", signed=True)


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """The shared SQL's ``?`` placeholders in psycopg's form (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration file, in order."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise RuntimeError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append((int(match.group(1)), path.name, path.read_text(encoding="utf-8")))
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration files must be numbered 1, 2, 3, ... without gaps (found {versions})")
    return found


class PostgresStore(SqlStore):
    """The store on a PostgreSQL server; implements every role protocol of ``store.base.Store``."""

    _driver_error = psycopg.Error  # PoolTimeout is one too

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 10,
        connect_timeout_s: float = 10.0,
        lock_timeout_ms: int = 30_000,
        idle_in_transaction_timeout_ms: int = 60_000,
    ) -> None:
        scheme, _, rest = url.strip().partition("://")
        self.url = f"{scheme.lower()}://{rest}"  # libpq reads the scheme in lower case only
        self.name = redacted(self.url)
        self._lock_timeout_ms = int(lock_timeout_ms)
        self._idle_timeout_ms = int(idle_in_transaction_timeout_ms)
        self._local = threading.local()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        # The first connection is made on its own: its error names the cause exactly
        # (unreachable, login, database), where a pool would only time out.
        with self._driver_errors():
            with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(connect_timeout_s))) as conn:
                self._configure(conn)
                self._migrate(conn)
            pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                self.url,
                min_size=1,
                max_size=max_connections,
                kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout_s))},
                configure=self._configure,
                check=ConnectionPool.check_connection,  # a connection the server dropped is replaced, not used
                timeout=connect_timeout_s,
                open=False,
                name="solr-policy",
            )
            try:
                pool.open(wait=True, timeout=connect_timeout_s)
            except BaseException:
                pool.close()
                raise
            self._pool = pool

    def __repr__(self) -> str:
        return f"PostgresStore({self.name!r})"

    # -- faults --------------------------------------------------------------------------
    def _fault(self, exc: BaseException) -> StoreUnavailable:
        """One line a person can act on; the driver's own first line in brackets."""
        detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        detail = detail.removeprefix("connection failed: ")
        lowered = detail.lower()
        if isinstance(exc, psycopg.errors.InvalidCatalogName) or re.search(r'database ".*" does not exist', lowered):
            why = "has no such database"
        elif isinstance(exc, psycopg.errors.InvalidAuthorizationSpecification | psycopg.errors.InvalidPassword) or (
            "authentication failed" in lowered or re.search(r'role ".*" does not exist', lowered)
        ):
            why = "refused the login"
        elif re.search(r"invalid (uri|integer value|connection option|value for)|missing \"=\"|conninfo", lowered):
            why = "is not a valid PostgreSQL URL"
        elif isinstance(exc, psycopg.errors.InvalidSchemaName) or "no schema has been selected" in lowered:
            why = "has no schema to create its tables in (see search_path)"
        elif isinstance(exc, PoolTimeout):
            why = "has no free connection (pool exhausted or server unreachable)"
        elif isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled | psycopg.errors.DeadlockDetected):
            why = "is busy (a lock was held too long)"
        elif isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
            why = "is missing part of its schema (damaged, or not a solr-policy store)"
        elif isinstance(exc, psycopg.errors.DuplicateTable | psycopg.errors.DuplicateObject):
            why = "holds tables of something else (not a solr-policy store)"
        elif isinstance(exc, psycopg.errors.IntegrityError):
            why = "refused a write"
        elif isinstance(exc, psycopg.OperationalError) and (
            "connect" in lowered or "timeout" in lowered or "server closed" in lowered or "resolve" in lowered
        ):
            why = "cannot be reached"
        else:
            why = "cannot be used"
        return StoreUnavailable(f"store {self.name} {why} ({detail})")

    # -- connections and transactions -------------------------------------------------
    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # lock_timeout: a decision waits for another of its originator at most this long,
        # as SQLite's busy timeout. idle_in_transaction: a node that hangs mid-transaction
        # loses it (and its locks) instead of stalling every other node.
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false), set_config('idle_in_transaction_session_timeout', %s, false),"
            " set_config('application_name', 'solr-policy', false)",
            (f"{self._lock_timeout_ms}ms", f"{self._idle_timeout_ms}ms"),
        )

    def _tx_conn(self) -> psycopg.Connection[Any] | None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        return conn

    def _checked_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is None or self._pool.closed:
            raise StoreUnavailable(f"store {self.name} is closed")
        return self._pool

    @contextmanager
    def _outermost_tx(self) -> Iterator[None]:
        pool = self._checked_pool()
        with self._driver_errors():
            conn = pool.getconn()
        try:
            self._local.conn, self._local.held = conn, set()
            with self._commit_or_roll_back(conn.execute, "BEGIN ISOLATION LEVEL READ COMMITTED"):
                yield
        finally:
            self._local.conn, self._local.held = None, set()
            pool.putconn(conn)  # a broken connection is discarded by the pool

    def _committed_anyway(self) -> bool:
        # The newest audit entry the transaction appended is in the log, as appended: its hash
        # chains every entry before it and covers the decision's own id, so it is there only if
        # this transaction committed. Read on another connection (this one is lost).
        appended = getattr(self._local, "appended", None)
        if appended is None:
            return False
        seq, digest = appended
        try:
            with self._checked_pool().connection() as conn:
                row = conn.execute("SELECT hash FROM audit WHERE seq = %s", (seq,)).fetchone()
        except (psycopg.Error, StoreUnavailable):
            return False
        return row is not None and row[0] == digest

    def _serialise(self, key: str, *, shared: bool = False) -> None:
        conn = self._tx_conn()
        mode = f"{key} (shared)" if shared else key
        if conn is None or key in self._local.held or mode in self._local.held:
            return  # outside a transaction a read serialises nothing
        conn.execute(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(%s)", (lock_key(key),))
        self._local.held.add(mode)

    def _execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        conn = self._tx_conn()
        assert conn is not None, "a write runs inside _tx()"
        return conn.execute(_placeholders(sql), params)  # our own SQL, never input

    def _execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        conn = self._tx_conn()
        assert conn is not None, "a write runs inside _tx()"
        with conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)  # pipelined: one round trip for all rows

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self._driver_errors():
            conn = self._tx_conn()
            if conn is not None:
                return conn.cursor(row_factory=dict_row).execute(_placeholders(sql), params).fetchall()
            with self._checked_pool().connection() as conn:
                return conn.cursor(row_factory=dict_row).execute(_placeholders(sql), params).fetchall()

    @contextmanager
    def _snapshot_rows(self, queries: Sequence[str]) -> Iterator[list[Iterator[Row]]]:
        """Server-side cursors in one REPEATABLE READ snapshot (streamed, not all in memory).
        Inside a transaction, the audit lock stands in for the snapshot: no append interleaves."""
        with self._driver_errors(), ExitStack() as stack:
            conn = self._tx_conn()
            if conn is None:
                conn = stack.enter_context(self._checked_pool().connection())
                stack.enter_context(conn.transaction())
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            else:
                self._serialise("audit")
            cursors: list[Iterator[Row]] = []
            for n, sql in enumerate(queries):
                cursor = stack.enter_context(conn.cursor(name=f"solr_policy_walk_{n}", row_factory=dict_row))
                cursor.itersize = 2000
                cursor.execute(_placeholders(sql))
                cursors.append(iter(cursor))
            yield cursors

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Apply the migration files not yet recorded, under a lock that nodes starting at the
        same time queue on (session-level: it spans the migrations' own transactions)."""
        known = migrations()
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key("migrations"),))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            applied = {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            if applied and max(applied) > len(known):
                raise StoreUnavailable(
                    f"store {self.name} was written by a newer solr-policy (schema {max(applied)}; this version knows {len(known)})"
                )
            for version, name, script in known:
                if version in applied:
                    continue
                with conn.transaction():
                    conn.execute(script.encode())  # several statements: no parameters, simple protocol
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key("migrations"),))

    def schema_version(self) -> int:
        """The newest migration applied."""
        rows = self._read("SELECT max(version) AS version FROM schema_migrations")
        return int(rows[0]["version"] or 0)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._local = threading.local()
