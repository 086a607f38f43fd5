"""Remedies at OVHcloud, end to end without a network namespace: the real ``ovh`` client,
signed PUT and POST calls, against the lab's API stand-in in-process (HTTPS on
127.0.0.1, MemoryStore). The diagnosis is the real provider probe and rules, run again to
verify: a remedy is judged by what is read afterwards, never by its own return value."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest

from agent import judge
from agent.config import Config
from agent.model import Device, Fact, Report
from agent.probes import Context
from agent.probes import provider as probe
from agent.remedies import offers
from agent.remedies.audit import Audit
from agent.remedies.base import RemedyError
from agent.remedies.runner import Runner
from lab.services.ovhapi import Account, MemoryStore, make_server

pytestmark = pytest.mark.usefixtures("no_ambient_keys")

BA = "ovhtel-12345678-1"
AK, AS = "7kbG7Bk7S9Nt7ZSV", "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF"
CK = "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1"
CK_READ = "ReadOnlyConsumerKey0123456789abc"  # GET only: what README says is enough to diagnose
MAC, GIGASET_MAC = "80:5e:c0:aa:bb:cc", "7c:2f:80:11:22:33"
UA = "Yealink SIP-T46S 66.86.0.15"
PUBLIC = "198.51.100.7"
PHONE = {"brand": "phone.yealink.t46s", "description": "Yealink T46S", "macAddress": MAC,
         "maxline": 16}  # fmt: skip
GIGASET = {"brand": "phone.gigaset.c530ip", "description": "Gigaset C530 IP",
           "macAddress": GIGASET_MAC, "maxline": 6}  # fmt: skip
READ = [{"method": "GET", "path": "/telephony"}, {"method": "GET", "path": "/telephony/*"}]
WRITE = [{"method": "PUT", "path": "/telephony/*"}, {"method": "POST", "path": "/telephony/*"}]
ACCOUNT = {
    "credentials": [
        {"application_key": AK, "application_secret": AS, "consumer_key": CK,
         "rules": READ + WRITE},
        {"application_key": AK, "application_secret": AS, "consumer_key": CK_READ,
         "rules": READ},
    ],
    "billing_accounts": {BA: {"description": "Bureau", "lines": {
        "1001": {"description": "Accueil", "phone": PHONE},
        "1003": {"description": "Atelier", "phone": GIGASET},
    }}},
}  # fmt: skip


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.add_registration("1001", PUBLIC, 5060, "10.66.0.11", 5060, "sip.ovh.test", UA)
    s.set_option("1001", "forwardUnconditional", "true")
    s.set_option("1001", "forwardUnconditionalNumber", "0612345678")
    return s


@pytest.fixture
def server(tls, store):
    _ca, cert, key = tls
    srv = make_server(Account.from_dict(ACCOUNT), store, "127.0.0.1", 0, cert, key, lambda m: None)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def config(url: str, ca: Path, ck: str = CK) -> Config:
    return Config(
        provider_endpoint=url,
        provider_ca_file=str(ca),
        provider_application_key=AK,
        provider_application_secret=AS,
        provider_consumer_key=ck,
        timeout=0.5,
    )


@pytest.fixture
def cfg(server, tls) -> Config:
    port = server.server_address[1]
    return config(f"https://localhost:{port}/1.0", tls[0])


def phone() -> Device:
    d = Device(ip="10.66.0.11", mac=MAC.upper(), vendor="yealink", model="SIP-T46S")
    d.evidence["sip"] = {"agent": UA}
    return d


def diagnose(cfg: Config, extra: dict[str, object] | None = None) -> Report:
    """The provider probe and the rules, as `phonediag diagnose` runs them for this office."""
    devices = [phone()]
    ctx = Context(cfg, [], devices)
    ctx.facts = [Fact("site", "lan.public_ip", PUBLIC, "stun")]
    facts = ctx.facts + asyncio.run(probe.probe(ctx))
    facts += [Fact(devices[0].ip, k, v, "test") for k, v in (extra or {}).items()]
    rules, _ = judge.load_all()
    subjects = [d.ip for d in devices] + sorted(
        {f.subject for f in facts if f.subject.startswith("line:")}
    )
    return Report(devices=devices, facts=facts, findings=judge.judge(rules, facts, subjects, "en"))


def runner(cfg: Config, tmp_path: Path) -> Runner:
    return Runner(cfg, Audit(tmp_path / "audit.sqlite"))


def apply(cfg: Config, tmp_path: Path, remedy_id: str, subject: str, extra=None):
    """remedy apply --yes, as the CLI does it: diagnose, select, plan, consent, act, verify."""
    report = diagnose(cfg, extra)
    offer = offers.select(report, cfg, get(remedy_id), subject)
    r = runner(cfg, tmp_path)
    plan = asyncio.run(r.plan(offer.remedy, offer.target, offer.finding))
    run = r.record_plan(plan)
    r.consent(run, plan, True, "--yes")

    async def again() -> Report:
        return await asyncio.to_thread(diagnose, cfg, extra)

    outcome = asyncio.run(r.apply(run, plan, again, settle=0))
    return r, plan, outcome


def get(remedy_id: str):
    from agent.remedies import get as get_remedy

    return get_remedy(remedy_id)


def rules_on(report: Report, subject: str) -> list[str]:
    return [f.rule for f in report.findings if (f.device or f"line:{f.line}") == subject]


# ---------------------------------------------------------------- line options


def test_line_forward_turned_off_verified_then_undone(cfg, tmp_path, store):
    assert "forwarding-left-on" in rules_on(diagnose(cfg), "10.66.0.11")
    r, plan, outcome = apply(cfg, tmp_path, "disable-line-forwarding", "10.66.0.11")
    assert plan.steps[0].before == {
        "forwardUnconditional": True,
        "forwardUnconditionalNature": "number",
        "forwardUnconditionalNumber": "0612345678",
    }
    assert plan.steps[0].set == {"forwardUnconditional": False}
    assert (outcome.status, outcome.verification) == ("applied", "verified")
    assert outcome.observed == {"line.forward.unconditional": False}
    # what the API holds, and what a new diagnosis sees: the number is kept for the undo
    assert store.options("1001") == {
        "forwardUnconditional": "false",
        "forwardUnconditionalNumber": "0612345678",
    }
    assert "forwarding-left-on" not in rules_on(diagnose(cfg), "10.66.0.11")
    steps = [(row.step, row.outcome) for row in r.audit.rows(outcome.run)]
    assert steps == [("planned", ""), ("consent", "yes"), ("applied", "ok"),
                     ("verified", "verified")]  # fmt: skip

    undo = asyncio.run(r.plan_undo(outcome.run))
    assert undo.steps[0].set == {"forwardUnconditional": True}  # only what differs now
    run = r.record_plan(undo)
    r.consent(run, undo, True, "--yes")
    back = asyncio.run(r.undo(run, undo))
    assert back.status == "undone" and back.fixed
    assert store.options("1001")["forwardUnconditional"] == "true"
    assert "forwarding-left-on" in rules_on(diagnose(cfg), "10.66.0.11")  # the finding is back
    assert [row.step for row in r.audit.rows(run)] == ["planned", "consent", "undone"]
    assert r.audit.rows(run)[0].undo_of == outcome.run
    with pytest.raises(RemedyError) as e:  # once only
        asyncio.run(r.plan_undo(outcome.run))
    assert e.value.why.key == "remedy.why.already_undone"


def test_undo_refuses_to_overwrite_a_later_change(cfg, tmp_path, store):
    r, _plan, outcome = apply(cfg, tmp_path, "disable-line-forwarding", "10.66.0.11")
    store.set_option("1001", "forwardUnconditional", "true")  # someone dialled *21# since
    with pytest.raises(RemedyError) as e:
        asyncio.run(r.plan_undo(outcome.run))
    assert e.value.why.key == "remedy.why.changed_since"
    assert "forwardUnconditional = true" in e.value.why.text("en")


def test_read_only_keys_fail_cleanly_and_change_nothing(cfg, tmp_path, store):
    cfg.provider_consumer_key = CK_READ  # enough to diagnose, not to change
    before = dict(store.options("1001"))
    r, _plan, outcome = apply(cfg, tmp_path, "disable-line-forwarding", "10.66.0.11")
    assert outcome.status == "failed" and not outcome.fixed
    assert outcome.error is not None and outcome.error.key == "remedy.why.not_granted"
    assert "PUT and POST" in outcome.error.text("en")
    assert [n.key for n in outcome.notes] == ["remedy.note.unchanged"]  # a 403: surely not done
    assert store.options("1001") == before
    assert "forwarding-left-on" in rules_on(diagnose(cfg), "10.66.0.11")
    rows = r.audit.rows(outcome.run)
    assert [(row.step, row.outcome) for row in rows][-1] == ("failed", "failed")
    assert "This call has not been granted" in rows[-1].message
    assert AS not in rows[-1].message and CK_READ not in rows[-1].message


def test_line_dnd_and_absent_subscriber(cfg, tmp_path, store):
    store.set_option("1001", "forwardUnconditional", "false")
    store.set_option("1001", "doNotDisturb", "true")
    store.set_option("1001", "absentSubscriber", "true")
    _r, _p, dnd = apply(cfg, tmp_path, "disable-line-dnd", "10.66.0.11")
    _r, _p, absent = apply(cfg, tmp_path, "disable-absent-subscriber", "10.66.0.11")
    assert (dnd.verification, absent.verification) == ("verified", "verified")
    assert store.options("1001")["doNotDisturb"] == "false"
    assert store.options("1001")["absentSubscriber"] == "false"
    assert rules_on(diagnose(cfg), "10.66.0.11") == []


def test_an_api_that_stops_answering_mid_way(cfg, tmp_path, store, monkeypatch):
    """The PUT times out: its outcome is unknown, so the value is read again; the API is gone
    for that too, so the outcome says the state is unknown and where to check it."""
    report = diagnose(cfg)
    offer = offers.select(report, cfg, get("disable-line-forwarding"), "10.66.0.11")
    r = runner(cfg, tmp_path)
    plan = asyncio.run(r.plan(offer.remedy, offer.target, offer.finding))
    run = r.record_plan(plan)
    r.consent(run, plan, True, "--yes")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts, never answers
        port = silent.getsockname()[1]
        api = r.env.api()
        monkeypatch.setattr(api.client, "_endpoint", f"https://localhost:{port}/1.0")
        monkeypatch.setattr(api.client, "_timeout", (0.5, 0.5))  # the test need not wait 3 s
        outcome = asyncio.run(r.apply(run, plan, None))
    assert outcome.status == "failed"
    assert [n.key for n in outcome.notes] == ["remedy.rollback.unknown"]
    assert store.options("1001")["forwardUnconditional"] == "true"  # it never arrived
    assert [row.step for row in r.audit.rows(run)][-2:] == ["failed", "rolled-back"]


# ---------------------------------------------------------------- reboot and re-provision


def test_reboot_is_sent_and_has_no_undo(cfg, tmp_path, server):
    extra = {"sip.registered": False, "registrar.udp.5060.reachable": True}
    r, plan, outcome = apply(cfg, tmp_path, "reboot-phone", "10.66.0.11", extra)
    assert not plan.undoable
    assert outcome.status == "applied"
    # the stand-in cannot restart a phone: the finding stays, and the outcome says so
    assert outcome.verification == "still-present"
    assert [a["action"] for a in server.api.actions] == ["reboot"]
    assert server.api.actions[0]["serviceName"] == "1001"
    with pytest.raises(RemedyError) as e:
        asyncio.run(r.plan_undo(outcome.run))
    assert e.value.why.key == "remedy.why.no_undo"


def test_reprovision_sends_the_public_ip_then_reboots(cfg, tmp_path, server):
    extra = {"sip.registered": False, "registrar.udp.5060.reachable": True}
    _r, plan, outcome = apply(cfg, tmp_path, "reprovision-phone", "10.66.0.11", extra)
    # the Yealink is restarted on the LAN first; here it cannot be reached (no network in
    # this test), so OVHcloud's reboot is asked instead
    assert [s.action for s in plan.steps] == ["provider-reset-config", "phone-reboot"]
    assert plan.steps[1].alternative["action"] == "provider-reboot"
    assert outcome.status == "applied" and outcome.by_hand == []
    assert [(a["action"], a.get("ip")) for a in server.api.actions] == [
        ("resetConfig", PUBLIC),
        ("reboot", None),
    ]


def test_a_phone_ovhcloud_cannot_restart(cfg, tmp_path, server, store):
    """Gigaset: reboot answers 501. Alone, it is a failure that changed nothing; inside a
    re-provisioning, the configuration is reset and the person restarts the phone."""
    store.add_registration("1003", PUBLIC, 5060, "10.66.0.13", 5060, "sip.ovh.test", "Gigaset")
    subject = "line:1003"  # no LAN phone in this test: the line alone
    report = diagnose(cfg)
    assert "line:1003" in {f.subject for f in report.facts}
    r = runner(cfg, tmp_path)
    from agent.remedies.base import target

    t = target(report, subject)
    plan = asyncio.run(r.plan(get("reboot-phone"), t, None))
    run = r.record_plan(plan)
    r.consent(run, plan, True, "--yes")
    failed = asyncio.run(r.apply(run, plan, None))
    assert failed.status == "failed" and failed.error.key == "remedy.why.not_supported"
    assert "power-cycle-phone" in failed.error.text("en")
    assert [n.key for n in failed.notes] == ["remedy.note.unchanged"]

    plan = asyncio.run(r.plan(get("reprovision-phone"), t, None))
    run = r.record_plan(plan)
    r.consent(run, plan, True, "--yes")
    done = asyncio.run(r.apply(run, plan, None))
    assert done.status == "applied"
    assert [n.key for n in done.notes] == ["remedy.note.restart_by_hand"]
    assert [a["action"] for a in server.api.actions] == ["resetConfig"]


def test_no_keys_means_no_plan(tmp_path):
    from agent.remedies.base import Target

    cfg = Config(timeout=0.5)
    t = Target("10.66.0.11", phone(), {"provider.access": "ok", "line.number": "1001",
               "line.billing_account": BA}, [])  # fmt: skip
    with pytest.raises(RemedyError) as e:
        asyncio.run(runner(cfg, tmp_path).plan(get("disable-line-dnd"), t, None))
    assert e.value.why.key == "remedy.why.no_keys"
