"""Preregistration: record a hypothesis file's content hash and a UTC timestamp in the store before any run
data is read, and later check that the tested runs were created after it and the file is unchanged
(Nosek et al. 2018, "The preregistration revolution")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from bridge.tables import StoreLike

KIND = "prereg"


@dataclass(frozen=True)
class Registration:
    """One preregistration: the file's name, resolved path, sha256 of its bytes and the UTC time."""

    file: str
    path: str
    sha256: str
    registered_at: str


@dataclass(frozen=True)
class PreregStatus:
    """How a hypothesis file relates to its preregistrations and to the runs it is tested on.

    ``registered``: some registration has this exact content; ``changed``: the file was registered but its
    content now differs from every registration; ``before_runs``: the matching registration predates the
    earliest ``started_at`` of the tested runs (None when unregistered or no runs); ``runs_before``: how
    many tested runs started before it.
    """

    file: str
    sha256: str
    registered: bool
    changed: bool
    registered_at: str | None
    before_runs: bool | None
    runs_before: int

    def describe(self) -> str:
        """One sentence for reports."""
        if self.registered:
            timing = {
                True: "before every run it is tested on",
                False: f"after {self.runs_before} of the runs it is tested on started",
                None: "(no runs to compare)",
            }[self.before_runs]
            return f"{self.file} was preregistered at {self.registered_at}, {timing}."
        if self.changed:
            return f"{self.file} CHANGED after preregistration (sha256 now {self.sha256[:12]})."
        return f"{self.file} was not preregistered."


def file_hash(path: str | Path) -> str:
    """sha256 hex digest of the file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def preregister(path: str | Path, store: StoreLike, *, now: datetime | None = None) -> Registration:
    """Store ``(file, path, sha256, registered_at)`` with ``put_result("prereg", key=sha256, ...)``; reads no
    run data. Registering identical content again keeps the first timestamp."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No hypothesis file at {str(path)!r}.")
    digest = file_hash(path)
    for entry in store.results(KIND):
        if entry.get("sha256") == digest:
            return Registration(entry["file"], entry["path"], digest, entry["registered_at"])
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    reg = Registration(path.name, str(path.resolve()), digest, stamp)
    store.put_result(KIND, digest, reg.__dict__)
    return reg


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601")


def prereg_status(path: str | Path, store: StoreLike, runs: pd.DataFrame | None = None) -> PreregStatus:
    """Compare ``path`` with the store's registrations (matched by content, or by file name/path for
    ``changed``) and with the ``started_at`` of ``runs`` (the runs a hypothesis is tested on)."""
    path = Path(path)
    digest = file_hash(path)
    entries = store.results(KIND)
    match = [e for e in entries if e.get("sha256") == digest]
    same_file = [e for e in entries if e.get("path") == str(path.resolve()) or e.get("file") == path.name]
    if not match:
        return PreregStatus(path.name, digest, False, bool(same_file), None, None, 0)
    registered_at = min(e["registered_at"] for e in match)
    before, count = None, 0
    if runs is not None and len(runs):
        started = _utc(runs["started_at"])
        count = int((started < _utc(pd.Series([registered_at]))[0]).sum())
        before = count == 0
    return PreregStatus(path.name, digest, True, False, registered_at, before, count)
