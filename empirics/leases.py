"""Run claims: a sweep driver leases the runs it executes, so two drivers on one store never run one twice.

A lease row (``run_id, token, host, pid, heartbeat, expires``) lives in the store's ``leases`` table. A driver takes
leases in one ``BEGIN IMMEDIATE`` transaction (:func:`claim`, through :meth:`empirics.store.Store.claim_runs`),
renews them from a heartbeat thread every :data:`HEARTBEAT_S` seconds, and ends each in the transaction that writes
its run. Another driver skips a run whose lease is live and takes it over when the lease is dead: expired (no
heartbeat for :data:`LEASE_TTL_S` seconds: a driver on another host that died), or held on this host by a process
that no longer exists (a driver killed with ``kill -9``: taken over at once).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

LEASE_TTL_S = 60.0
"""Seconds a lease lives without a heartbeat."""

HEARTBEAT_S = 10.0
"""Seconds between two renewals of a live driver's leases."""


@dataclass(frozen=True)
class LeaseOwner:
    """Who holds run claims: a sweep driver process (``host``, ``pid``) and a ``token`` unique to its sweep."""

    host: str
    pid: int
    token: str

    @classmethod
    def current(cls) -> LeaseOwner:
        """This process, with a fresh token."""
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex)


@dataclass(frozen=True)
class Claim:
    """What :func:`claim` found: runs ``taken`` now, already ``stored``, ``held`` by another live driver."""

    taken: tuple[str, ...]
    stored: tuple[str, ...]
    held: tuple[str, ...]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (``kill(pid, 0)``; another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(
    conn: sqlite3.Connection,
    run_ids: Sequence[str],
    owner: LeaseOwner,
    *,
    limit: int | None = None,
    ttl_s: float = LEASE_TTL_S,
) -> Claim:
    """Inside an open write transaction: lease up to ``limit`` of ``run_ids`` (in order) to ``owner`` for ``ttl_s`` s.

    A run is skipped when it is stored already, or another owner's lease on it is live: unexpired and, when held on
    this host, held by a process that still exists.
    """
    ids = list(dict.fromkeys(run_ids))
    marks = ", ".join("?" * len(ids))
    done = {r for (r,) in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({marks})", ids)}
    sql = f"SELECT run_id, token, host, pid, expires FROM leases WHERE run_id IN ({marks})"
    leases = {row[0]: row[1:] for row in conn.execute(sql, ids)}
    now, host = time.time(), socket.gethostname()
    taken, stored, held = [], [], []
    for run_id in ids:
        token, lease_host, pid, expires = leases.get(run_id, (owner.token, host, 0, 0.0))
        if run_id in done:
            stored.append(run_id)
        elif token != owner.token and expires > now and (lease_host != host or process_alive(pid)):
            held.append(run_id)
        elif limit is None or len(taken) < limit:
            taken.append(run_id)
    conn.executemany(
        "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
        [(r, owner.token, owner.host, owner.pid, now, now + ttl_s) for r in taken],
    )
    return Claim(tuple(taken), tuple(stored), tuple(held))


__all__ = ["HEARTBEAT_S", "LEASE_TTL_S", "Claim", "LeaseOwner", "claim", "process_alive"]
