"""The runner's safety rules, with a fake device whose writes can be made to fail: nothing
is written before consent, a step that fails leaves the device as it was (earlier steps put
back and read back), an uncertain failure is checked by reading, a write the device
ignores is caught, the verification reads the new diagnosis, and a portal job needs the
allow-list."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from agent import judge
from agent.config import Config
from agent.model import Device, Fact, Report
from agent.remedies import runner as runner_mod
from agent.remedies import spec
from agent.remedies.audit import Audit
from agent.remedies.base import RemedyError, Step, Target, Why
from agent.remedies.runner import Runner

IP = "10.66.0.11"


class Refused(Exception):
    """The fake device said no (surely nothing written)."""


class FakeDevice:
    """Settings a, b (booleans) behind an interface whose writes can fail."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {"a": True, "b": True}
        self.fail: dict[str, BaseException] = {}  # key -> what writing it raises (once)
        self.ignore: set[str] = set()  # keys it accepts but does not change
        self.writes: list[dict[str, Any]] = []
        self.down = False  # reads fail too

    def module(self) -> SimpleNamespace:
        async def plan(remedy, target, env):
            return [
                Step("fake", {"ip": IP}, {k: v}, {k: self.state[k]}, True)
                for k, v in remedy.set.items()
            ]

        async def run(step, env):
            for key in step.set:
                if key in self.fail:  # once: the next write of it works
                    exc = self.fail.pop(key)
                    if isinstance(exc, TimeoutError):
                        self.state.update(step.set)  # it did arrive, the answer did not
                    raise exc
            self.writes.append(dict(step.set))
            self.state.update({k: v for k, v in step.set.items() if k not in self.ignore})
            return {}

        async def read(step, env):
            if self.down:
                raise TimeoutError
            return {k: self.state[k] for k in {*step.before, *step.set}}

        return SimpleNamespace(
            ACTION="fake",
            available=lambda remedy, target, cfg: None,
            plan=plan,
            run=run,
            read=read,
            undo_values=lambda step: dict(step.before),
            surely_not_applied=lambda exc: isinstance(exc, Refused),
        )


@pytest.fixture
def device(monkeypatch) -> FakeDevice:
    d = FakeDevice()
    module = d.module()
    monkeypatch.setitem(runner_mod.PLANNERS, "phone-settings", module)
    monkeypatch.setitem(runner_mod.EXECUTORS, "fake", module)
    monkeypatch.setattr(runner_mod, "FAILURES", (*runner_mod.FAILURES, Refused))
    return d


def remedy(**set_: bool) -> spec.Remedy:
    return spec.Remedy(
        id="disable-phone-dnd",  # a real id: the audit and the allow-list know it
        action="phone-settings",
        answers=("dnd-on",),
        target="device",
        text={lang: spec.Text("t", "e") for lang in spec.LANGS},
        set=dict(set_),
        verify={"phone.dnd": False},
    )


def report(dnd: bool | None) -> Report:
    facts = [] if dnd is None else [Fact(IP, "phone.dnd", dnd, "vendor.fake")]
    rules, _ = judge.load_all()
    findings = judge.judge(rules, facts, [IP], "en")
    return Report(devices=[Device(IP, vendor="fake")], facts=facts, findings=findings)


def start(device: FakeDevice, tmp_path, origin: str = "cli", **set_: bool):
    r = Runner(Config(), Audit(tmp_path / "a.sqlite"), origin)
    target = Target(IP, Device(IP, vendor="fake"), {"phone.dnd": True}, report(True).findings)
    plan = asyncio.run(r.plan(remedy(**set_), target, target.findings[0]))
    return r, plan, r.record_plan(plan)


def steps(r: Runner, run: int) -> list[tuple[str, str]]:
    return [(row.step, row.outcome) for row in r.audit.rows(run)]


def test_declining_writes_nothing(device, tmp_path):
    r, plan, run = start(device, tmp_path, a=False)
    r.consent(run, plan, False, "answered 'non'")
    assert device.writes == [] and device.state == {"a": True, "b": True}
    assert steps(r, run) == [("planned", ""), ("consent", "no")]
    assert r.audit.rows(run)[0].before == {"a": True}


def test_a_failed_step_puts_the_earlier_ones_back(device, tmp_path):
    device.fail["b"] = Refused("HTTP 403")
    r, plan, run = start(device, tmp_path, a=False, b=False)
    r.consent(run, plan, True, "--yes")
    outcome = asyncio.run(r.apply(run, plan, None))
    assert outcome.status == "failed" and not outcome.fixed
    assert [n.key for n in outcome.notes] == ["remedy.rollback.restored"]
    assert device.state == {"a": True, "b": True}  # as it was
    assert device.writes == [{"a": False}, {"a": True}]  # b surely not written: not touched
    assert steps(r, run)[-2:] == [("failed", "failed"), ("rolled-back", "restored")]


def test_an_uncertain_failure_is_read_back_and_undone(device, tmp_path):
    device.fail["a"] = TimeoutError()  # the write arrived, its answer did not
    r, plan, run = start(device, tmp_path, a=False)
    r.consent(run, plan, True, "--yes")
    outcome = asyncio.run(r.apply(run, plan, None))
    assert outcome.status == "failed"
    assert [n.key for n in outcome.notes] == ["remedy.rollback.restored"]
    assert device.state["a"] is True


def test_an_uncertain_failure_that_cannot_be_read_says_the_state_is_unknown(device, tmp_path):
    device.fail["a"] = TimeoutError()
    r, plan, run = start(device, tmp_path, a=False)
    r.consent(run, plan, True, "--yes")
    device.down = True
    outcome = asyncio.run(r.apply(run, plan, None))
    assert [n.key for n in outcome.notes] == ["remedy.rollback.unknown"]
    assert "check it" in outcome.notes[0].text("en")


def test_a_write_the_device_ignores_is_a_failure(device, tmp_path):
    device.ignore.add("a")
    r, plan, run = start(device, tmp_path, a=False)
    r.consent(run, plan, True, "--yes")
    outcome = asyncio.run(r.apply(run, plan, None))
    assert outcome.status == "failed" and outcome.error.key == "remedy.why.not_taken"
    assert [n.key for n in outcome.notes] == ["remedy.rollback.unchanged"]


@pytest.mark.parametrize(
    "after, verification",
    [
        (False, "verified"),  # the fact changed and the finding is gone
        (True, "not-taken"),  # the new diagnosis still sees DND on
        (None, "unverified"),  # the new diagnosis could not read the phone
    ],
)
def test_verification_reads_the_new_diagnosis(device, tmp_path, after, verification):
    r, plan, run = start(device, tmp_path, a=False)
    r.consent(run, plan, True, "--yes")

    async def again() -> Report:
        return report(after)

    outcome = asyncio.run(r.apply(run, plan, again, settle=0))
    assert outcome.status == "applied" and outcome.verification == verification
    assert outcome.fixed == (verification == "verified")
    assert steps(r, run)[-1] == ("verified", verification)


def test_a_portal_job_needs_the_allow_list(device, tmp_path):
    r, plan, run = start(device, tmp_path, origin="portal", a=False)
    with pytest.raises(RemedyError) as e:
        r.consent(run, plan, True, "portal job")
    assert e.value.why == Why("remedy.why.portal_not_allowed", {"id": "disable-phone-dnd"})
    assert device.writes == [] and steps(r, run)[-1] == ("consent", "no")
    r.cfg.remedies_portal_allowed = ["disable-phone-dnd"]
    r.consent(run, plan, True, "portal job")
    assert asyncio.run(r.apply(run, plan, None)).status == "applied"
    assert [row.origin for row in r.audit.rows(run)] == ["portal"] * 4


def test_undo_needs_an_applied_operation(device, tmp_path):
    r, plan, run = start(device, tmp_path, a=False)
    r.consent(run, plan, False, "answered 'non'")
    for row_id, key in ((run, "remedy.why.not_applied"), (999, "remedy.why.no_audit")):
        with pytest.raises(RemedyError) as e:
            asyncio.run(r.plan_undo(row_id))
        assert e.value.why.key == key
