"""Portal mode's state in the local store: it survives reopening and kill -9, jobs left
running become interrupted results in the outbox, results wait there (oldest first) until
the broker acknowledges them."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.portal import jobs, keys
from agent.portal.jobs import Job, Rejected
from agent.portal.state import State

AGENT = "office-1"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PORTAL, AGENT_KEY = keys.generate(), keys.generate()
ROOT = Path(__file__).resolve().parents[2]


def a_job(kind: str = "discover", params: dict | None = None, now: datetime = NOW) -> Job:
    msg = jobs.make_job(PORTAL, AGENT, kind, params or {}, now=now)
    return Job.from_doc(msg["job"])


def result(job: Job, status: str = "done", **kw) -> tuple[dict, bytes]:
    body = jobs.result_body(job.id, AGENT, status, started_at=NOW, finished_at=NOW, **kw)
    return body, jobs.encode(jobs.sign_result(AGENT_KEY, body))


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "store" / "phonediag.sqlite"


def test_the_store_file_is_private_and_in_wal_mode(path):
    with State(path) as s:
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in s.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"portal_jobs", "portal_nonces", "portal_outbox"} <= tables
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_state_survives_reopening(path):
    job = a_job()
    with State(path) as s:
        s.admit(job, NOW)
        s.start(job.id, NOW)
    with State(path) as s:
        record = s.job(job.id)
        assert (record.state, record.kind, record.job) == ("running", "discover", job.doc)
        assert s.seen(job.id, "other") == "id" and s.seen("x", job.nonce) == "nonce"
        with pytest.raises(Rejected) as e:
            s.admit(job, NOW)
        assert e.value.code == "replayed" and e.value.duplicate


def test_interrupted_jobs_become_results_in_the_outbox(path):
    waiting, running, finished = a_job(), a_job("diagnose"), a_job("report", {"run": 1})
    with State(path) as s:
        for j in (waiting, running, finished):
            s.admit(j, NOW)
        s.start(running.id, NOW + timedelta(seconds=1))
        s.start(finished.id, NOW)
        body, message = result(finished, run=1, report={"devices": []})
        s.finish(finished.id, body, message, NOW + timedelta(seconds=2))
    later = NOW + timedelta(minutes=1)
    with State(path) as s:  # the next start
        assert sorted(s.interrupted(AGENT_KEY, AGENT, later)) == sorted([waiting.id, running.id])
        assert s.interrupted(AGENT_KEY, AGENT, later) == []  # once only
        assert {j.id: j.state for j in s.jobs()} == {
            waiting.id: "interrupted", running.id: "interrupted", finished.id: "done"
        }  # fmt: skip
        out = s.outbox()
        assert [o.job for o in out] == [finished.id, waiting.id, running.id]  # oldest first
        bodies = {o.job: jobs.check_result(o.message, agent_key=AGENT_KEY.public_key(),
                                           agent_id=AGENT, job_id=o.job) for o in out}  # fmt: skip
        assert bodies[finished.id] == body
        assert bodies[running.id]["status"] == "interrupted"
        assert bodies[running.id]["message"] == "the agent stopped while running this job"
        assert bodies[running.id]["started_at"] == "2026-11-27T09:00:01Z"
        assert bodies[running.id]["finished_at"] == "2026-11-27T09:01:00Z"
        assert bodies[waiting.id]["message"] == "the agent stopped before starting this job"


def test_a_policy_rejection_not_yet_spooled_is_spooled_at_start(path):
    job = a_job()
    with State(path) as s:
        s.admit(job, NOW)
        s.mark_rejected(job.id, "out-of-scope", "10.0.0.0/24 is outside", NOW)
    with State(path) as s:
        assert s.interrupted(AGENT_KEY, AGENT, NOW) == [job.id]
        (out,) = s.outbox()
        body = jobs.check_result(out.message, agent_key=AGENT_KEY.public_key())
        assert (body["status"], body["reason"]) == ("rejected", "out-of-scope")
        assert s.job(job.id).state == "rejected"


def test_delivery_marking(path):
    first, second = a_job(), a_job()
    with State(path) as s:
        for j in (first, second):
            s.admit(j, NOW)
            s.finish(j.id, *result(j), NOW)
        assert s.pending() == 2
        assert s.mark_delivered(first.id)
        assert not s.mark_delivered(first.id)  # already
        assert not s.mark_delivered("no-such-job")
        assert [o.job for o in s.outbox()] == [second.id]
    with State(path) as s:  # delivered stays delivered
        assert [o.job for o in s.outbox()] == [second.id]
        stale = s.outbox()[0].seq
        s.finish(second.id, *result(second, "failed", message="again"), NOW)  # replaced
        assert not s.mark_delivered(second.id, seq=stale)  # the PUBACK of the old copy
        (new,) = s.outbox()
        assert new.seq != stale and s.mark_delivered(second.id, seq=new.seq)
        assert s.outbox() == [] and s.pending() == 0


def test_a_redelivered_job_gets_its_result_again(path):
    job = a_job()
    with State(path) as s:
        s.admit(job, NOW)
        assert not s.requeue(job.id)  # no result yet: nothing to send again
        s.finish(job.id, *result(job), NOW)
        s.mark_delivered(job.id)
        assert s.requeue(job.id) and [o.job for o in s.outbox()] == [job.id]


def test_a_rejection_never_replaces_a_result(path):
    job = a_job()
    with State(path) as s:
        s.admit(job, NOW)
        body, message = result(job)
        s.finish(job.id, body, message, NOW)
        _, rejection = result(job, "rejected", reason="bad-signature")
        assert s.spool(job.id, rejection, NOW) == 0
        assert s.outbox()[0].message == message


def test_purge_forgets_old_things_only(path):
    job = a_job()
    with State(path) as s:
        s.admit(job, NOW)
        s.finish(job.id, *result(job), NOW)
        s.mark_delivered(job.id, now=NOW)
        s.purge(NOW + timedelta(minutes=11))  # expired, but within the clock margin
        assert s.seen(job.id, job.nonce) == "id"
        s.purge(NOW + timedelta(days=2))
        assert s.db.execute("SELECT COUNT(*) FROM portal_nonces").fetchone()[0] == 0
        assert s.db.execute("SELECT COUNT(*) FROM portal_outbox").fetchone()[0] == 0
        assert s.job(job.id) is not None  # listed for a month
        s.purge(NOW + timedelta(days=31))
        assert s.job(job.id) is None


def test_a_kill_9_mid_job_is_reported_interrupted_after_restart(path):
    job = a_job("diagnose")
    doc = json.dumps(job.doc)
    script = textwrap.dedent(f"""
        import os, signal, sys, json
        sys.path.insert(0, {str(ROOT)!r})
        from datetime import datetime, UTC
        from pathlib import Path
        from agent.portal.jobs import Job
        from agent.portal.state import State
        s = State(Path({str(path)!r}))
        job = Job.from_doc(json.loads({doc!r}))
        now = datetime.now(UTC)
        s.admit(job, now)
        s.start(job.id, now)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    with State(path) as s:
        assert s.job(job.id).state == "running"
        assert s.interrupted(AGENT_KEY, AGENT) == [job.id]
        body = jobs.check_result(s.outbox()[0].message, agent_key=AGENT_KEY.public_key())
        assert body["status"] == "interrupted" and body["job"] == job.id


def test_two_copies_of_one_job_are_never_both_admitted(path):
    job = a_job()
    with State(path) as a, State(path) as b:
        a.admit(job, NOW)
        with pytest.raises(Rejected):
            b.admit(job, NOW)


def test_one_state_from_several_threads(path):
    import threading

    with State(path) as s:
        js = [a_job() for _ in range(20)]
        errors: list[BaseException] = []

        def work(j: Job) -> None:
            try:
                s.admit(j, NOW)
                s.finish(j.id, *result(j), NOW)
                s.mark_delivered(j.id)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(j,)) for j in js]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and s.outbox() == [] and len(s.jobs(100)) == 20


def test_job_records_as_json(path):
    job = a_job("report", {"run": "last"})
    with State(path) as s:
        s.admit(job, NOW)
        d = s.job(job.id).to_dict()
    assert d["params"] == {"run": "last"} and d["received_at"] == "2026-11-27T09:00:00Z"
    assert os.path.exists(path)
