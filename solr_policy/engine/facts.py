"""Static world facts kept between decisions: the User, its instructions, ADT files and Supplier
signing certificates. They change only by a governance act, a world load or a certificate
import, each of which bumps the store's world generation in its own transaction (a trigger,
``store.sql.STATIC_FACT_TABLES``). A decision reads the generation once, inside its
transaction, and uses the cache only while it is the one the cache was filled at: a change
made by any program or node is seen by the next decision everywhere.

Devices are not kept: an event addresses each of its hundreds of thousands of meters about
once, so a cache of them would only grow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from solr_policy.store.base import Store

T = TypeVar("T")


class StaticFacts:
    """One engine's cache, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._facts: dict[tuple[str, str], Any] = {}

    def at_generation(self, store: Store) -> "FactView":
        """The cache as of the store's generation now (emptied if the world changed)."""
        generation = store.world_generation()
        with self._lock:
            if generation != self._generation:
                self._generation, self._facts = generation, {}
            return FactView(self._facts, generation)


class FactView:
    """Facts of one generation: each read from the store at most once."""

    __slots__ = ("_facts", "generation")

    def __init__(self, facts: dict[tuple[str, str], Any], generation: int | None = None) -> None:
        self._facts = facts
        self.generation = generation  # the store's world generation they are of; None: not known

    def get(self, kind: str, key: str, read: Callable[..., T], *args: Any) -> T:
        """The fact ``kind`` of ``key``: ``read(*args)`` the first time (arguments rather than a
        closure: nothing is made for the many times it is known)."""
        try:
            return self._facts[(kind, key)]
        except KeyError:
            value = self._facts[(kind, key)] = read(*args)
            return value


def uncached() -> FactView:
    """A view that keeps nothing beyond one decision (dry runs, tests)."""
    return FactView({})
