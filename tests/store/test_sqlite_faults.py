"""SQLite store faults in detail: what each broken file says, a locked store, and the
commands that open a broken store (one line on stderr, exit 2, never a traceback)."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from solr_policy.cli import cli
from solr_policy.errors import StoreUnavailable
from solr_policy.store import SqliteStore, open_store
from solr_policy.store.sqlite import MIGRATIONS

from .kinds import SQLITE, sqlite_store_with_data
from .samples import NOW, SOLR_USER, fill


def refusal(path: Path, **options) -> str:
    with pytest.raises(StoreUnavailable) as raised:
        SqliteStore(path, **options)
    return raised.value.message


@pytest.fixture()
def random_file(tmp_path) -> Path:
    path = tmp_path / "random.db"
    path.write_bytes(random.Random(3).randbytes(8192))
    return path


@pytest.fixture()
def truncated(tmp_path) -> Path:
    path = tmp_path / "truncated.db"
    shutil.copyfile(sqlite_store_with_data(tmp_path), path)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size * 3 // 4)
    return path


@pytest.fixture()
def damaged(tmp_path) -> Path:
    store = SQLITE.create(tmp_path)
    fill(store)
    store.close()
    SQLITE.damage(tmp_path)
    return tmp_path / "contract.db"


def test_each_broken_file_says_what_is_wrong_with_it(tmp_path, random_file, truncated):
    text = tmp_path / "text.db"
    text.write_text("not a database\n")
    assert refusal(random_file) == f"store {random_file} is not a solr-policy store (not an SQLite database file)"
    assert refusal(text) == f"store {text} is not a solr-policy store (not an SQLite database file)"
    assert refusal(tmp_path) == f"store {tmp_path} is a directory, not a store file"
    size = truncated.stat().st_size
    assert refusal(truncated).startswith(f"store {truncated} is truncated ({size} bytes of the ")


def test_a_store_file_in_a_folder_that_cannot_exist_is_unusable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert refusal(blocker / "store.db") == f"store {blocker / 'store.db'} cannot be read (Not a directory)"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="file permissions do not stop root")
def test_an_unreadable_store_file_is_unusable(tmp_path):
    path = sqlite_store_with_data(tmp_path)
    path.chmod(0)
    try:
        assert refusal(path).startswith(f"store {path} cannot be read")
    finally:
        path.chmod(0o600)


def test_another_applications_database_is_not_taken_over(tmp_path):
    path = tmp_path / "recipes.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    assert refusal(path) == f"store {path} is not a solr-policy store (an SQLite database of something else)"
    with closing(sqlite3.connect(path)) as conn:  # and it was left as it was
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["recipes"]


def test_a_store_from_a_newer_version_is_not_touched(tmp_path):
    path = tmp_path / "newer.db"
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    assert refusal(path) == f"store {path} was written by a newer solr-policy (schema {len(MIGRATIONS) + 1}; this version knows {len(MIGRATIONS)})"


def test_a_damaged_page_fails_the_read_that_meets_it(damaged):
    store = open_store(damaged)  # the header and schema are intact
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.audit_entries()
        assert raised.value.message == f"store {damaged} is corrupt or truncated (database disk image is malformed)"
    finally:
        store.close()


def test_a_store_locked_by_another_writer_is_unavailable_after_the_busy_timeout(tmp_path):
    path = tmp_path / "locked.db"
    SqliteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            SqliteStore(path, busy_timeout_ms=50)  # opening takes the write lock to migrate
        assert raised.value.message == f"store {path} is locked by another process (database is locked)"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store = SqliteStore(path, busy_timeout_ms=50)
    try:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="is locked by another process"):
            store.set_counter(SOLR_USER, 1)
        assert store.get_counter(SOLR_USER) is None  # reads go on beside a writer (WAL)
        holder.execute("ROLLBACK")
        holder.close()
        store.set_counter(SOLR_USER, 1)  # and the store works again once the lock is gone
        assert store.get_counter(SOLR_USER) == 1
    finally:
        store.close()


def test_a_driver_error_inside_a_transaction_rolls_it_back_and_is_typed(tmp_path):
    store = SqliteStore(tmp_path / "fk.db")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            with store.transaction():
                store.append_audit("decision", {"outcome": "allow"}, at=NOW)
                store.put_srp("SRP-1", name="x", endpoint="y", serves=["NO-SUCH-PARTY"])  # foreign key
        assert raised.value.message.startswith(f"store {store.path} refused a write (FOREIGN KEY constraint failed")
        assert store.audit_entries() == [] and store.list_srps() == []
    finally:
        store.close()


# -- the command line --------------------------------------------------------------------------
def run(db: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def assert_one_line_exit_2(result, db: Path, why: str) -> None:
    """Nothing on stdout; on stderr one line that names the store and starts with ``why``."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert result.stderr.startswith(f"Error: store {db} {why}"), result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr


@pytest.fixture()
def request_file(tmp_path) -> Path:
    path = tmp_path / "request.xml"
    path.write_bytes(b"<sr:Request/>")
    return path


BROKEN = {
    "random_file": "is not a solr-policy store (not an SQLite database file)",
    "truncated": "is truncated (",
    "damaged": "is corrupt or truncated (database disk image is malformed)",
}


@pytest.mark.parametrize("broken", ["random_file", "truncated"])
def test_decide_on_a_broken_store_is_one_line_and_exit_2(request, broken, request_file):
    db = request.getfixturevalue(broken)
    assert_one_line_exit_2(run(db, "decide", str(request_file)), db, BROKEN[broken])


@pytest.mark.parametrize("broken", ["random_file", "truncated", "damaged"])
def test_audit_verify_on_a_broken_store_is_one_line_and_exit_2(request, broken):
    db = request.getfixturevalue(broken)
    assert_one_line_exit_2(run(db, "audit", "verify"), db, BROKEN[broken])


def test_a_directory_given_as_the_store_is_a_usage_error(tmp_path):
    result = run(tmp_path, "audit", "verify")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Invalid value for '--db': File '{tmp_path}' is a directory." in result.stderr


class _CommitFails:
    """A connection whose next COMMIT fails without ending the transaction, as SQLite's COMMIT
    may on a full disk or a busy file ("the transaction remains active")."""

    def __init__(self, conn: sqlite3.Connection, failures: list[str]) -> None:
        self._conn, self._failures = conn, failures

    def execute(self, sql, *args):
        if sql == "COMMIT" and self._failures:
            raise sqlite3.OperationalError(self._failures.pop())
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_commit_that_fails_leaves_nothing_written_no_transaction_open_and_no_lock_held(tmp_path, monkeypatch):
    path = tmp_path / "full.db"
    store = SqliteStore(path)
    other = SqliteStore(path, busy_timeout_ms=200)  # another process on the file
    try:
        failures = ["database or disk is full"]
        conn = store._conn()
        monkeypatch.setattr(store, "_conn", lambda: _CommitFails(conn, failures))
        with pytest.raises(StoreUnavailable, match="database or disk is full"):
            store.set_counter(SOLR_USER, 1)
        monkeypatch.undo()
        assert not conn.in_transaction  # rolled back: nothing half-done is kept on the connection
        assert store.get_counter(SOLR_USER) is None and other.get_counter(SOLR_USER) is None
        other.set_counter(SOLR_USER, 2)  # the write lock was not kept
        store.set_counter(SOLR_USER, 3)  # and this connection writes again
        assert other.get_counter(SOLR_USER) == 3
    finally:
        store.close()
        other.close()
