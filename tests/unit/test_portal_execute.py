"""Running portal jobs: a stored report, a diagnosis and a discovery (the pipeline replaced:
no network), a remedy (a fake phone: consent recorded with origin portal), and the glue
the transport calls (accept, run, spool, deliver). A job never raises: whatever goes
wrong is a failed result."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jsonschema
import pytest

from agent import config, history, judge, pipeline, platform, store
from agent.model import Device, Fact, Report
from agent.portal import execute, jobs, keys
from agent.portal.jobs import Job
from agent.portal.state import State
from agent.remedies import runner as runner_mod
from agent.remedies.audit import Audit
from agent.remedies.base import Step

AGENT = "office-1"
IP = "10.66.0.11"
PORTAL, AGENT_KEY = keys.generate(), keys.generate()


@pytest.fixture(autouse=True)
def office(monkeypatch):
    """This PC: 10.66.0.100/24 on eth0."""
    monkeypatch.setattr(
        platform,
        "ipv4_addresses",
        lambda: [
            platform.Address("lo", "127.0.0.1", 8, None),
            platform.Address("eth0", "10.66.0.100", 24, None),
        ],
    )


@pytest.fixture
def cfg(tmp_path) -> config.Config:
    return config.Config(store_path=str(tmp_path / "store" / "phonediag.sqlite"))


def a_job(kind: str, params: dict | None = None, ttl: timedelta = timedelta(minutes=10)) -> Job:
    return Job.from_doc(jobs.make_job(PORTAL, AGENT, kind, params or {}, ttl=ttl)["job"])


def valid_result(body: dict) -> None:
    msg = jobs.sign_result(AGENT_KEY, body)
    jsonschema.validate(msg, jobs.schema("result"))


def stored(cfg) -> list[history.Run]:
    with history.History(store.path_for(cfg.store_path)) as h:
        return h.list(100)


# ------------------------------------------------------------------ report


def test_a_report_job_returns_the_stored_run(seeded_history, report_doc):
    cfg = config.load(seeded_history)
    body = asyncio.run(execute.run_job(a_job("report", {"run": 2}), cfg))
    assert (body["status"], body["run"], body["exit_code"]) == ("done", 2, 0)
    assert body["report"] == report_doc("diagnose-sip-alg")
    assert body["message"].startswith("run 2: diagnose, started 2026-11-27T09:05:00")
    valid_result(body)
    last = asyncio.run(execute.run_job(a_job("report", {"run": "last"}), cfg))
    assert last["run"] == 3 and last["report"]["devices"][0]["firmware"] == "66.86.0.20"


def test_a_report_job_for_a_run_not_stored(seeded_history):
    cfg = config.load(seeded_history)
    body = asyncio.run(execute.run_job(a_job("report", {"run": 99}), cfg))
    assert (body["status"], body["exit_code"], body["message"]) == (
        "failed", 2, "no stored run 99"
    )  # fmt: skip
    valid_result(body)


# ------------------------------------------------------------------ diagnose, discover


def test_a_diagnose_job(monkeypatch, cfg, report_doc):
    seen = {}
    events: list[tuple[str, str]] = []

    async def fake(cfg_, nets, lang, answers=None, symptom=None, explain=False, progress=None):
        seen.update(nets=nets, lang=lang, answers=answers, symptom=symptom, explain=explain)
        progress("start", "probe.stun")
        progress("done", "probe.stun")
        return history.load_report(report_doc("diagnose-sip-alg"))

    monkeypatch.setattr(pipeline, "run_diagnose", fake)
    job = a_job("diagnose", {"symptom": "no-ring", "subnets": ["10.66.0.0/25"], "lang": "en"})
    body = asyncio.run(execute.run_job(job, cfg, lambda e, s: events.append((e, s))))
    assert body["status"] == "done" and body["exit_code"] == 1  # the SIP ALG finding
    assert body["report"] == json.loads(json.dumps(report_doc("diagnose-sip-alg")))
    assert [(str(n.network), n.interface, n.local_ip) for n in seen["nets"]] == [
        ("10.66.0.0/25", "eth0", "10.66.0.100")
    ]
    assert seen["lang"] == "en" and seen["symptom"] == "no-ring" and not seen["explain"]
    assert seen["answers"] == {"user.symptom": "no-ring"}
    assert events == [("start", "job.diagnose"), ("start", "probe.stun"),
                      ("done", "probe.stun"), ("done", "job.diagnose")]  # fmt: skip
    (run,) = stored(cfg)
    assert (run.id, run.command, run.exit_code) == (body["run"], "portal:diagnose", 1)
    assert run.options["job"] == job.id and run.options["symptom"] == "no-ring"
    assert not run.discovery
    valid_result(body)


def test_a_diagnose_job_sweeps_the_agents_own_scope_by_default(monkeypatch, cfg, report_doc):
    seen = {}

    async def fake(cfg_, nets, lang, answers=None, symptom=None, explain=False, progress=None):
        seen["nets"] = [str(n.network) for n in nets]
        return Report()

    monkeypatch.setattr(pipeline, "run_diagnose", fake)
    body = asyncio.run(execute.run_job(a_job("diagnose"), cfg))
    assert seen["nets"] == ["10.66.0.0/24"] and body["exit_code"] == 0


def test_a_discover_job(monkeypatch, cfg, report_doc):
    async def fake(cfg_, nets, progress=None):
        return history.load_report(report_doc("discover"))

    monkeypatch.setattr(pipeline, "run_discover", fake)
    body = asyncio.run(execute.run_job(a_job("discover"), cfg))
    assert body["status"] == "done" and body["exit_code"] == 0
    assert len(body["report"]["devices"]) == len(report_doc("discover")["devices"])
    (run,) = stored(cfg)
    assert run.command == "portal:discover" and run.discovery
    valid_result(body)


def test_a_failing_diagnosis_is_a_failed_result(monkeypatch, cfg):
    async def boom(*a, **kw):
        raise RuntimeError("the network card caught fire")

    monkeypatch.setattr(pipeline, "run_diagnose", boom)
    events: list[tuple[str, str]] = []
    body = asyncio.run(execute.run_job(a_job("diagnose"), cfg, lambda e, s: events.append((e, s))))
    assert body["status"] == "failed"
    assert body["message"] == "RuntimeError: the network card caught fire"
    assert events[-1] == ("failed", "job.diagnose")
    valid_result(body)


def test_every_job_is_under_the_deadline(monkeypatch, cfg):
    async def slow(*a, **kw):
        await asyncio.sleep(30)

    monkeypatch.setattr(pipeline, "run_diagnose", slow)
    monkeypatch.setattr(execute, "GRACE_S", 0.0)
    cfg.deadline = 0.2
    body = asyncio.run(execute.run_job(a_job("diagnose"), cfg))
    assert (body["status"], body["message"]) == ("failed", "did not finish within 0.2 s")


def test_no_network_at_all_is_exit_3(monkeypatch, cfg):
    monkeypatch.setattr(
        platform, "ipv4_addresses", lambda: [platform.Address("lo", "127.0.0.1", 8, None)]
    )
    body = asyncio.run(execute.run_job(a_job("discover"), cfg))
    assert body["status"] == "failed" and body["exit_code"] == 3
    assert body["message"].startswith("Cannot diagnose: no network interface")


def test_a_progress_display_that_breaks_does_not_break_the_job(monkeypatch, cfg):
    async def fake(cfg_, nets, progress=None):
        progress("start", "discover.sip")
        return Report()

    def broken(event, step):
        raise OSError("broker gone")

    monkeypatch.setattr(pipeline, "run_discover", fake)
    assert asyncio.run(execute.run_job(a_job("discover"), cfg, broken))["status"] == "done"


# ------------------------------------------------------------------ remedy


class FakePhone:
    """A phone whose Do-Not-Disturb the fake action turns off."""

    def __init__(self) -> None:
        self.dnd = True
        self.writes: list[dict] = []

    def module(self) -> SimpleNamespace:
        async def plan(remedy, target, env):
            return [Step("fake", {"ip": IP}, dict(remedy.set), {"phone.dnd": self.dnd}, True)]

        async def run(step, env):
            self.writes.append(dict(step.set))
            self.dnd = step.set["phone.dnd"]
            return {}

        async def read(step, env):
            return {"phone.dnd": self.dnd}

        return SimpleNamespace(
            ACTION="fake", available=lambda remedy, target, cfg: None, plan=plan, run=run,
            read=read, undo_values=lambda step: dict(step.before),
            surely_not_applied=lambda exc: False,
        )  # fmt: skip

    def report(self) -> Report:
        facts = [Fact(IP, "phone.dnd", self.dnd, "vendor.fake")]
        rules, _ = judge.load_all()
        findings = judge.judge(rules, facts, [IP], "en")
        return Report(devices=[Device(IP, vendor="fake")], facts=facts, findings=findings)


@pytest.fixture
def phone(monkeypatch) -> FakePhone:
    p = FakePhone()
    module = p.module()
    monkeypatch.setitem(runner_mod.PLANNERS, "phone-settings", module)
    monkeypatch.setitem(runner_mod.EXECUTORS, "fake", module)

    async def diagnose(cfg_, nets, lang, answers=None, symptom=None, explain=False,
                       progress=None):  # fmt: skip
        return p.report()

    monkeypatch.setattr(pipeline, "run_diagnose", diagnose)
    return p


def test_an_allow_listed_remedy_job(phone, cfg):
    cfg.remedies_portal_allowed = ["disable-phone-dnd"]
    job = a_job("remedy", {"remedy": "disable-phone-dnd", "device": IP, "lang": "en"})
    body = asyncio.run(execute.run_job(job, cfg))
    assert body["status"] == "done" and body["exit_code"] == 0, body
    outcome = body["remedy"]
    assert (outcome["remedy"], outcome["target"], outcome["status"]) == (
        "disable-phone-dnd", IP, "applied"
    )  # fmt: skip
    assert outcome["verification"] == "verified" and outcome["fixed"]
    assert phone.writes == [{"phone.dnd": False}] and phone.dnd is False
    audit = Audit(store.path_for(cfg.store_path))
    rows = audit.rows(outcome["audit_run"])
    audit.close()
    assert [r.step for r in rows] == ["planned", "consent", "applied", "verified"]
    assert {r.origin for r in rows} == {"portal"}
    assert rows[1].outcome == "yes" and job.id in rows[1].message
    valid_result(body)


def test_a_remedy_no_longer_allowed_when_it_runs_is_rejected(phone, cfg):
    job = a_job("remedy", {"remedy": "disable-phone-dnd", "device": IP})
    body = asyncio.run(execute.run_job(job, cfg))  # the allow-list is empty
    assert (body["status"], body["reason"]) == ("rejected", "remedy-not-allowed")
    assert phone.writes == []


def test_a_remedy_on_a_phone_the_diagnosis_did_not_find(phone, cfg):
    cfg.remedies_portal_allowed = ["disable-phone-dnd"]
    job = a_job("remedy", {"remedy": "disable-phone-dnd", "device": "10.66.0.12"})
    body = asyncio.run(execute.run_job(job, cfg))
    assert (body["status"], body["exit_code"]) == ("failed", 2)
    assert "10.66.0.12" in body["message"] and phone.writes == []


# ------------------------------------------------------------------ the transport's glue


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def worker(cfg):
    notes: list[int] = []
    clock = Clock()
    with State.open(cfg) as state:
        w = execute.Worker(cfg, state, AGENT, AGENT_KEY, PORTAL.public_key(),
                           notify=lambda: notes.append(1), clock=clock)  # fmt: skip
        w.notes, w.test_clock = notes, clock  # type: ignore[attr-defined]
        yield w


def message(kind: str = "report", params: dict | None = None, key=PORTAL, **kw) -> bytes:
    params = {"run": "last"} if params is None else params
    return jobs.encode(jobs.make_job(key, AGENT, kind, params, **kw))


def results(w) -> dict[str, dict]:
    return {
        o.job: jobs.check_result(o.message, agent_key=AGENT_KEY.public_key(), agent_id=AGENT)
        for o in w.outbox()
    }


def test_worker_accept_run_deliver(worker, seeded_history):
    assert config.load(seeded_history).store_path == worker.cfg.store_path  # 3 runs stored
    raw = message()
    job = worker.accept(raw)
    assert job is not None and worker.outbox() == []
    progress: list[dict] = []
    sent = asyncio.run(worker.run(job, progress.append))
    assert sent["result"]["status"] == "done" and sent["result"]["run"] == 3
    assert keys.verify(AGENT_KEY.public_key(), sent["result"], sent["sig"])
    assert [p["event"] for p in progress] == ["start", "done"]
    assert all(p["job"] == job.id and p["step"] == "job.report" for p in progress)
    (out,) = worker.outbox()
    assert json.loads(out.message) == sent and worker.notes
    assert worker.state.job(job.id).state == "done"
    assert worker.mark_delivered(job.id, out.seq) and worker.outbox() == []
    # the broker delivers the same job again (QoS 1): no new run, the result again
    assert worker.accept(raw) is None
    assert [o.job for o in worker.outbox()] == [job.id]


def test_worker_spools_rejections(worker):
    forged = message(key=keys.generate())
    assert worker.accept(forged) is None
    job_id = json.loads(forged)["job"]["id"]
    got = results(worker)[job_id]
    assert (got["status"], got["reason"]) == ("rejected", "bad-signature")
    expired = message(now=worker.test_clock.now - timedelta(hours=1))
    assert worker.accept(expired) is None
    assert results(worker)[json.loads(expired)["job"]["id"]]["reason"] == "expired"
    assert worker.accept(b"garbage") is None  # names no job: nothing to answer
    assert len(worker.outbox()) == 2


def test_a_forged_copy_never_answers_for_an_admitted_job(worker):
    raw = message()
    job = worker.accept(raw)
    forged = json.loads(raw)
    forged["job"]["params"] = {"run": 1}
    assert worker.accept(jobs.encode(forged)) is None  # bad signature, same id
    assert worker.outbox() == [] and worker.state.job(job.id).state == "received"


def test_a_policy_rejection_is_answered(worker):
    raw = message("discover", {"subnets": ["192.168.1.0/24"]})
    assert worker.accept(raw) is None
    (got,) = results(worker).values()
    assert (got["status"], got["reason"]) == ("rejected", "out-of-scope")
    assert "192.168.1.0/24" in got["message"]


def test_a_job_that_expired_while_waiting_is_not_run(worker):
    job = worker.accept(message(ttl=timedelta(seconds=30)))
    worker.test_clock.now += timedelta(minutes=1)
    sent = asyncio.run(worker.run(job))
    assert (sent["result"]["status"], sent["result"]["reason"]) == ("rejected", "expired")


def test_worker_start_reports_interrupted_jobs(cfg):
    with State.open(cfg) as state:
        w = execute.Worker(cfg, state, AGENT, AGENT_KEY, PORTAL.public_key())
        job = w.accept(message("discover", {}))
        state.start(job.id, datetime.now(UTC))
    with State.open(cfg) as state:  # the agent was killed; this is the next start
        w = execute.Worker(cfg, state, AGENT, AGENT_KEY, PORTAL.public_key())
        assert w.start() == [job.id]
        (got,) = results(w).values()
        assert got["status"] == "interrupted"


def test_a_portal_discovery_is_a_discovery_in_the_history(seeded_history, report_doc):
    cfg = config.load(seeded_history)
    with history.History(store.path_for(cfg.store_path)) as h:
        new = h.add(json.dumps(report_doc("discover")), "portal:discover", "fr", 0)
        a, b = h.get(2), h.get(new)
    d = history.diff(a, b)  # a diagnosis, then a discovery: no findings to compare
    assert b.discovery and not d["compared_findings"] and d["findings"]["resolved"] == []
    assert f"{new}" in history.diff_text(d, "en").splitlines()[-1]
