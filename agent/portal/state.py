"""Portal mode's state, in the local store (agent/store.py: the same SQLite file as the run
history and the remedies' audit log; its own tables, made on first use).

- ``portal_jobs``: every admitted job (id, kind, the signed job, times) and where it is:
  ``received`` -> ``running`` -> ``done`` (its result says done or failed), or
  ``rejected`` (refused by the policy), or ``interrupted`` (the agent stopped meanwhile);
- ``portal_nonces``: the nonce and id of every admitted job until it expires (and
  :data:`SKEW` more), so a replay is refused; then purged;
- ``portal_outbox``: the signed results waiting for the broker, oldest first, each kept
  until the broker acknowledged it (PUBACK: :meth:`State.mark_delivered`), one per job.

Nothing is lost when the agent is killed (kill -9, a power cut): every change is one
SQLite transaction (WAL journal, ``synchronous=FULL``); on the next start
:meth:`State.interrupted` turns the jobs left ``received`` or ``running`` into
``interrupted`` results in the outbox. Nothing secret is stored: a result holds what
``--json`` prints (secrets masked), a job holds the portal's parameters.

One :class:`State` may be used from several threads (an MQTT client's callbacks and the
event loop): a lock serialises its calls.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent import store
from agent.portal import jobs
from agent.portal.jobs import Job, Rejected

SKEW = jobs.MAX_AHEAD  # nonces are kept this long after their job expired (clock changes)
KEEP_JOBS = timedelta(days=30)  # finished jobs listed this long
KEEP_DELIVERED = jobs.MAX_LIFETIME + SKEW  # a delivered result, for a redelivered job
STATES = ("received", "running", "done", "rejected", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS portal_jobs (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    status      TEXT,
    reason      TEXT,
    message     TEXT,
    received_at TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    expires_at  TEXT NOT NULL,
    run         INTEGER,
    job         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_jobs_state ON portal_jobs (state);
CREATE TABLE IF NOT EXISTS portal_nonces (
    nonce      TEXT PRIMARY KEY,
    job        TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS portal_outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT NOT NULL UNIQUE,
    message      BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    delivered_at TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS portal_outbox_pending ON portal_outbox (delivered_at, seq);
"""


def _ts(when: datetime) -> str:
    """A sortable UTC time (fixed width: compared as text in SQL)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class Outgoing:
    """A result in the outbox: publish ``message`` on ``agents/{agent}/results/{job}``
    (QoS 1), then :meth:`State.mark_delivered` ``(job, seq)`` on the PUBACK."""

    seq: int
    job: str
    message: bytes
    created_at: str
    attempts: int


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    state: str
    status: str | None
    reason: str | None
    message: str | None
    received_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime
    run: int | None
    job: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        def t(d: datetime | None) -> str | None:
            return jobs.rfc3339(d) if d else None

        return {
            "id": self.id, "kind": self.kind, "state": self.state, "status": self.status,
            "reason": self.reason, "message": self.message, "received_at": t(self.received_at),
            "started_at": t(self.started_at), "finished_at": t(self.finished_at),
            "expires_at": t(self.expires_at), "run": self.run, "params": self.job.get("params"),
        }  # fmt: skip


_JOB_COLUMNS = (
    "id, kind, state, status, reason, message, received_at, started_at, finished_at,"
    " expires_at, run, job"
)


def _record(row: tuple[Any, ...]) -> JobRecord:
    received, expires = _dt(row[6]), _dt(row[9])
    assert received is not None and expires is not None  # NOT NULL columns
    return JobRecord(
        id=row[0], kind=row[1], state=row[2], status=row[3], reason=row[4], message=row[5],
        received_at=received, started_at=_dt(row[7]), finished_at=_dt(row[8]),
        expires_at=expires, run=row[10], job=json.loads(row[11]),
    )  # fmt: skip


class State:
    """The portal tables of one store file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        store.connect(self.path).close()  # creates it owner-only, as every store user does
        try:
            self.db = sqlite3.connect(
                self.path, timeout=store.BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        except sqlite3.Error as e:
            raise store.StoreError(f"{self.path}: {e}") from None
        self._lock = threading.RLock()
        try:
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as e:
            self.db.close()
            raise store.StoreError(f"{self.path}: {e}") from None

    @classmethod
    def open(cls, cfg: Any) -> State:
        """The state in the configured store (``[store] path``, ``$PHONEDIAG_STORE``...)."""
        return cls(store.path_for(getattr(cfg, "store_path", None)))

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken at once: no other writer in between)."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield self.db
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise store.StoreError(f"{self.path}: {e}") from None

    def _read(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise store.StoreError(f"{self.path}: {e}") from None

    # ------------------------------------------------------------ jobs

    def seen(self, job_id: str, nonce: str) -> str | None:
        """``"id"`` when a job with this id was admitted, ``"nonce"`` when this nonce was
        (for another id), else None."""
        if self._read("SELECT 1 FROM portal_jobs WHERE id = ?", job_id):
            return "id"
        if self._read("SELECT 1 FROM portal_nonces WHERE nonce = ?", nonce):
            return "nonce"
        return None

    def admit(self, job: Job, now: datetime) -> None:
        """Record ``job`` as ``received`` with its nonce, unless its id or nonce was seen:
        then Rejected ``replayed`` (``duplicate`` when it is the same job again). Atomic:
        two copies of one job can never both be admitted."""
        with self._tx() as db:
            self._purge(db, now)
            by_id = db.execute("SELECT job FROM portal_jobs WHERE id = ?", (job.id,)).fetchone()
            by_nonce = db.execute(
                "SELECT job FROM portal_nonces WHERE nonce = ?", (job.nonce,)
            ).fetchone()
            if by_id or by_nonce:
                same = by_id is not None and json.loads(by_id[0]) == job.doc
                why = "this job id" if by_id else f"this nonce (job {by_nonce[0]})"
                raise Rejected(
                    "replayed", f"{why} was already received", job_id=job.id, agent=job.agent,
                    verified=True, duplicate=same,
                )  # fmt: skip
            db.execute(
                "INSERT INTO portal_jobs (id, kind, state, received_at, expires_at, job)"
                " VALUES (?, ?, 'received', ?, ?, ?)",
                (job.id, job.kind, _ts(now), _ts(job.expires_at), _json(job.doc)),
            )
            db.execute(
                "INSERT INTO portal_nonces (nonce, job, expires_at) VALUES (?, ?, ?)",
                (job.nonce, job.id, _ts(job.expires_at)),
            )

    def mark_rejected(self, job_id: str, reason: str, message: str, now: datetime) -> None:
        """An admitted job the policy refused (its result is spooled next)."""
        with self._tx() as db:
            db.execute(
                "UPDATE portal_jobs SET state = 'rejected', status = 'rejected', reason = ?,"
                " message = ?, finished_at = ? WHERE id = ?",
                (reason, message, _ts(now), job_id),
            )

    def start(self, job_id: str, now: datetime) -> None:
        """The job is running (if the agent stops now, it becomes ``interrupted``)."""
        with self._tx() as db:
            db.execute(
                "UPDATE portal_jobs SET state = 'running', started_at = ? WHERE id = ?",
                (_ts(now), job_id),
            )

    def finish(self, job_id: str, body: dict[str, Any], message: bytes, now: datetime) -> int:
        """The job's result: its row updated and the signed ``message`` put in the
        outbox (replacing anything there for that job), in one transaction. The seq."""
        status = body.get("status")
        state = {"done": "done", "failed": "done"}.get(status, status)
        with self._tx() as db:
            db.execute(
                "UPDATE portal_jobs SET state = ?, status = ?, reason = ?, message = ?,"
                " finished_at = ?, run = ? WHERE id = ?",
                (state, status, body.get("reason"), body.get("message"), _ts(now),
                 body.get("run"), job_id),
            )  # fmt: skip
            return self._spool(db, job_id, message, now, replace=True)

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM portal_jobs WHERE id = ?", job_id)
        return _record(rows[0]) if rows else None

    def jobs(self, limit: int = 20) -> list[JobRecord]:
        """The newest jobs first."""
        rows = self._read(
            f"SELECT {_JOB_COLUMNS} FROM portal_jobs ORDER BY received_at DESC, rowid DESC LIMIT ?",
            limit,
        )
        return [_record(r) for r in rows]

    def interrupted(self, private: Any, agent: str, now: datetime | None = None) -> list[str]:
        """On start: every job left ``received`` or ``running`` (the agent stopped
        meanwhile) becomes ``interrupted``, its signed result put in the outbox; a job
        refused by the policy whose result was not spooled yet gets it. The job ids."""
        now = now or jobs.now_utc()
        done: list[str] = []
        with self._tx() as db:
            left = db.execute(
                "SELECT id, state, received_at, started_at, reason, message FROM portal_jobs"
                " WHERE state IN ('received', 'running') OR (state = 'rejected' AND id NOT IN"
                " (SELECT job FROM portal_outbox)) ORDER BY received_at, rowid"
            ).fetchall()
            for job_id, state, received, started, reason, why in left:
                if state == "rejected":
                    body = jobs.result_body(
                        job_id, agent, "rejected", started_at=_dt(received), finished_at=now,
                        reason=reason, message=why,
                    )  # fmt: skip
                else:
                    why = (
                        "the agent stopped while running this job"
                        if state == "running"
                        else "the agent stopped before starting this job"
                    )
                    body = jobs.result_body(
                        job_id, agent, "interrupted", started_at=_dt(started or received),
                        finished_at=now, message=why,
                    )  # fmt: skip
                    db.execute(
                        "UPDATE portal_jobs SET state = 'interrupted', status = 'interrupted',"
                        " message = ?, finished_at = ? WHERE id = ?",
                        (why, _ts(now), job_id),
                    )
                message = jobs.encode(jobs.sign_result(private, body))
                self._spool(db, job_id, message, now, replace=True)
                done.append(job_id)
        return done

    # ------------------------------------------------------------ the outbox

    def _spool(
        self, db: sqlite3.Connection, job_id: str, message: bytes, now: datetime, replace: bool
    ) -> int:
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        cur = db.execute(
            f"{verb} INTO portal_outbox (job, message, created_at) VALUES (?, ?, ?)",
            (job_id, zlib.compress(message, 6), _ts(now)),
        )
        return int(cur.lastrowid or 0) if cur.rowcount else 0

    def spool(self, job_id: str, message: bytes, now: datetime, replace: bool = False) -> int:
        """Put a result in the outbox (a rejection: never replacing a job's result already
        there). Its seq, 0 when nothing was added."""
        with self._tx() as db:
            return self._spool(db, job_id, message, now, replace)

    def outbox(self, limit: int | None = None) -> list[Outgoing]:
        """The results not delivered yet, oldest first."""
        sql = (
            "SELECT seq, job, message, created_at, attempts FROM portal_outbox"
            " WHERE delivered_at IS NULL ORDER BY seq"
        )
        rows = self._read(sql + (" LIMIT ?" if limit else ""), *((limit,) if limit else ()))
        return [Outgoing(r[0], r[1], zlib.decompress(r[2]), r[3], r[4]) for r in rows]

    def pending(self) -> int:
        """How many results wait for the broker."""
        return int(
            self._read("SELECT COUNT(*) FROM portal_outbox WHERE delivered_at IS NULL")[0][0]
        )

    def attempted(self, job_id: str) -> None:
        """A result was handed to the broker once more (counted, for the logs)."""
        with self._tx() as db:
            db.execute("UPDATE portal_outbox SET attempts = attempts + 1 WHERE job = ?", (job_id,))

    def mark_delivered(
        self, job_id: str, seq: int | None = None, now: datetime | None = None
    ) -> bool:
        """The broker acknowledged the result of ``job_id`` (with ``seq``: that copy of it,
        not a newer one that replaced it meanwhile). False when there was none pending."""
        now = now or jobs.now_utc()
        sql = "UPDATE portal_outbox SET delivered_at = ? WHERE job = ? AND delivered_at IS NULL"
        args: tuple[Any, ...] = (_ts(now), job_id)
        if seq is not None:
            sql, args = sql + " AND seq = ?", (*args, seq)
        with self._tx() as db:
            return db.execute(sql, args).rowcount > 0

    def requeue(self, job_id: str) -> bool:
        """Send a job's result again (the same job arrived again: its sender may have
        missed the result). False when it has none yet (still running) or none kept."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE portal_outbox SET delivered_at = NULL WHERE job = ?"
                " AND delivered_at IS NOT NULL",
                (job_id,),
            )
            pending = db.execute(
                "SELECT 1 FROM portal_outbox WHERE job = ? AND delivered_at IS NULL", (job_id,)
            ).fetchone()
            return cur.rowcount > 0 or pending is not None

    # ------------------------------------------------------------ housekeeping

    def _purge(self, db: sqlite3.Connection, now: datetime) -> None:
        db.execute("DELETE FROM portal_nonces WHERE expires_at < ?", (_ts(now - SKEW),))
        db.execute(
            "DELETE FROM portal_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?",
            (_ts(now - KEEP_DELIVERED),),
        )
        db.execute(
            "DELETE FROM portal_jobs WHERE state NOT IN ('received', 'running')"
            " AND finished_at < ? AND id NOT IN (SELECT job FROM portal_nonces)"
            " AND id NOT IN (SELECT job FROM portal_outbox)",
            (_ts(now - KEEP_JOBS),),
        )

    def purge(self, now: datetime | None = None) -> None:
        """Forget expired nonces, old delivered results and old finished jobs (done on
        every admitted job too)."""
        with self._tx() as db:
            self._purge(db, now or jobs.now_utc())


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
