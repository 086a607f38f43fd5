"""The remedies' audit log, in the local store (agent/store.py): one row per step of each
operation, never updated, never holding a secret.

An *operation* is one ``remedy apply`` or ``remedy undo``; its rows share ``run``, the id
of its first row (the one ``phonediag remedy undo`` takes, any row of it works too). Steps:

- ``planned``: what will change, ``before`` (read live) → ``after``;
- ``consent``: ``outcome`` yes (``message`` says how: --yes, the person's answer, an
  allow-listed portal job) or no (then nothing else happens);
- ``applied`` or ``failed`` (then ``rolled-back`` when something had to be put back);
- ``verified``: ``outcome`` verified | still-present | not-taken | unverified, ``after``
  holds the values the new diagnosis saw;
- for an undo: ``planned``, ``consent``, then ``undone`` or ``failed``; ``undo_of`` is the
  run it undoes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import store

SCHEMA = """
CREATE TABLE IF NOT EXISTS remedy_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run      INTEGER,
    time     TEXT NOT NULL,
    step     TEXT NOT NULL,
    remedy   TEXT NOT NULL,
    target   TEXT NOT NULL,
    line     TEXT,
    rule     TEXT,
    steps    TEXT NOT NULL DEFAULT '[]',
    before   TEXT NOT NULL DEFAULT '{}',
    after    TEXT NOT NULL DEFAULT '{}',
    outcome  TEXT NOT NULL DEFAULT '',
    message  TEXT NOT NULL DEFAULT '',
    origin   TEXT NOT NULL DEFAULT 'cli',
    undo_of  INTEGER
);
CREATE INDEX IF NOT EXISTS remedy_audit_run ON remedy_audit (run);
"""


@dataclass
class Row:
    id: int
    run: int
    time: str
    step: str
    remedy: str
    target: str
    line: str | None
    rule: str | None
    steps: list[dict[str, Any]]  # the plan's steps (action, where, set, before): for undo
    before: dict[str, Any]
    after: dict[str, Any]
    outcome: str
    message: str
    origin: str
    undo_of: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Audit:
    """The audit table of one store file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = store.connect(path)
        try:
            self.db.executescript(SCHEMA)
        except Exception as e:
            self.db.close()
            raise store.StoreError(f"{path}: {e}") from None

    def close(self) -> None:
        self.db.close()

    def add(
        self,
        run: int | None,
        step: str,
        remedy: str,
        target: str,
        *,
        line: str | None = None,
        rule: str | None = None,
        steps: list[dict[str, Any]] | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        outcome: str = "",
        message: str = "",
        origin: str = "cli",
        undo_of: int | None = None,
    ) -> int:
        """Append one row; a row without ``run`` starts an operation. Returns its id."""
        try:
            cur = self.db.execute(
                "INSERT INTO remedy_audit (run, time, step, remedy, target, line, rule, steps,"
                " before, after, outcome, message, origin, undo_of)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    step,
                    remedy,
                    target,
                    line,
                    rule,
                    _json(steps or []),
                    _json(before or {}),
                    _json(after or {}),
                    outcome,
                    message,
                    origin,
                    undo_of,
                ),
            )
            row_id = int(cur.lastrowid or 0)
            if run is None:
                self.db.execute("UPDATE remedy_audit SET run = ? WHERE id = ?", (row_id, row_id))
            return row_id
        except Exception as e:  # sqlite3.Error, a full disk...
            raise store.StoreError(f"{self.path}: {e}") from None

    def rows(self, run: int | None = None, limit: int | None = None) -> list[Row]:
        """Rows oldest first: one operation's, or the ``limit`` newest of all."""
        if run is not None:
            cur = self.db.execute("SELECT * FROM remedy_audit WHERE run = ? ORDER BY id", (run,))
            return [_row(r) for r in cur.fetchall()]
        query = "SELECT * FROM remedy_audit ORDER BY id DESC"
        cur = self.db.execute(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        return [_row(r) for r in reversed(cur.fetchall())]

    def run_of(self, row_id: int) -> int | None:
        """The operation a row belongs to (None: no such row)."""
        cur = self.db.execute("SELECT run FROM remedy_audit WHERE id = ?", (row_id,))
        found = cur.fetchone()
        return int(found[0]) if found else None

    def undone_by(self, run: int) -> int | None:
        """The undo operation that undid ``run``, if any."""
        cur = self.db.execute(
            "SELECT run FROM remedy_audit WHERE undo_of = ? AND step = 'undone' LIMIT 1", (run,)
        )
        found = cur.fetchone()
        return int(found[0]) if found else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _row(r: tuple[Any, ...]) -> Row:
    (id_, run, time, step, remedy, target, line, rule, steps, before, after, outcome, message,
     origin, undo_of) = r  # fmt: skip
    return Row(
        id_, run, time, step, remedy, target, line, rule, json.loads(steps), json.loads(before),
        json.loads(after), outcome, message, origin, undo_of,
    )  # fmt: skip
