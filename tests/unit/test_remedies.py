"""Remedies, the framework: the catalogue is valid data, each finding gets the remedies that
answer it (ready, manual, or unavailable with the reason), --device finds its target, the
portal allow-list, the configuration and the audit log in the local store."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from agent import config, i18n, judge, store
from agent.config import Config
from agent.model import Device, Fact, Report
from agent.remedies import allowed_for_portal, catalogue, offers, resolve_subject, spec
from agent.remedies.audit import Audit
from agent.remedies.runner import PLANNERS

REMEDIES = Path(__file__).parents[2] / "agent" / "remedies"
SITE_OK = {"provider.access": "ok", "lan.public_ip": "198.51.100.7"}
LINE = {"line.number": "1001", "line.billing_account": "ovhtel-12345678-1"}


def make_report(facts: dict[str, dict], devices: list[Device]) -> Report:
    fs = [Fact(subject, k, v, "test") for subject, kv in facts.items() for k, v in kv.items()]
    rules, errors = judge.load_all()
    assert errors == []
    subjects = [d.ip for d in devices] + sorted({s for s in facts if s.startswith("line:")})
    return Report(devices=devices, facts=fs, findings=judge.judge(rules, fs, subjects, "en"))


def offered(report: Report, cfg: Config | None = None, subject: str | None = None) -> dict:
    return {
        (o.finding.rule, o.target.subject, o.remedy.id): (o.status, o.why.key if o.why else None)
        for o in offers.offers(report, cfg or Config(), subject)
    }


YEALINK = Device("10.66.0.11", vendor="yealink", model="SIP-T46S")
CISCO = Device("10.66.0.12", vendor="cisco", model="SPA504G")
GIGASET = Device("10.66.0.13", vendor="gigaset", model="C530 IP")


# ---------------------------------------------------------------- the catalogue


def test_the_catalogue_is_valid_and_answers_existing_rules():
    remedies = catalogue()
    rules = {r.id for r in judge.load_all()[0]}
    assert len({r.id for r in remedies}) == len(remedies) >= 10
    for r in remedies:
        assert set(r.answers) <= rules, (r.id, set(r.answers) - rules)
        module = PLANNERS.get(r.action)
        assert r.manual or module is not None
        assert (module.check(r) if module else []) == []
        assert r.undoable == (r.action in ("line-options", "phone-settings"))
    assert offers.unknown_rule_actions() == []  # a rule's `actions` names a real remedy
    # what the issue asks for is there
    ids = {r.id for r in remedies}
    assert {"disable-line-forwarding", "disable-line-dnd", "disable-absent-subscriber",
            "reboot-phone", "reprovision-phone", "disable-phone-dnd",
            "disable-phone-forwarding", "router-voip-settings"} <= ids  # fmt: skip
    steps = " ".join(s for r in remedies if r.manual for s in r.text["fr"].steps)
    for needle in ("#21#", "#002", "#26#", "91.121.128.0/23", "5060", "5962", "30000", "180"):
        assert needle in steps


@pytest.mark.parametrize(
    "change, message",
    [
        ({"action": "explode"}, "action must be one of"),
        ({"target": "router"}, "target must be one of"),
        ({"answers": []}, "answers must list rule ids"),
        ({"when": {"fact": "no.such.fact", "eq": True}}, "unknown fact key"),
        ({"verify": {"no.such.fact": False}}, "unknown fact key"),
        ({"set": {}}, "needs set and verify"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"settle_s": -1}, "settle_s must be"),
        ({"fr": {"title": "x"}}, "needs effect"),
    ],
)
def test_a_bad_catalogue_entry_is_named(change, message):
    raw = {
        "id": "x-y", "action": "line-options", "answers": ["dnd-on"], "target": "line",
        "set": {"doNotDisturb": False}, "verify": {"line.dnd": False},
        "fr": {"title": "t", "effect": "e"}, "en": {"title": "t", "effect": "e"},
        **change,
    }  # fmt: skip
    with pytest.raises(spec.SpecError, match=re.escape(message)):
        spec.parse(raw)


def test_every_message_key_the_remedies_use_exists_in_both_languages():
    sources = "".join(p.read_text() for p in REMEDIES.glob("*.py"))
    sources += (Path(__file__).parents[2] / "agent" / "cli.py").read_text()
    keys = set(re.findall(r'"(remedy\.[a-z_.-]+)"', sources))
    keys |= {f"remedy.verify.{v}" for v in ("verified", "still-present", "not-taken", "unverified")}
    keys = {k for k in keys if not k.endswith(".")}
    missing = sorted(k for k in keys if set(i18n.MESSAGES.get(k, {})) != {"fr", "en"})
    assert missing == []


# ---------------------------------------------------------------- what answers what


def test_a_line_forward_gets_the_api_remedy_and_the_codes():
    report = make_report({"site": SITE_OK, YEALINK.ip: {**LINE,
                          "line.forward.unconditional": True, "phone.forward.always": False}},
                         [YEALINK])  # fmt: skip
    got = offered(report)
    assert got == {
        ("forwarding-left-on", YEALINK.ip, "disable-line-forwarding"): ("ready", None),
        ("forwarding-left-on", YEALINK.ip, "forwarding-off-by-code"): ("manual", None),
    }


def test_a_phone_side_dnd_on_a_gigaset_is_manual_and_says_why_a_cisco_is_writable():
    report = make_report(
        {"site": SITE_OK, GIGASET.ip: {**LINE, "line.dnd": False, "phone.dnd": True},
         CISCO.ip: {"phone.dnd": True}},
        [GIGASET, CISCO],
    )  # fmt: skip
    got = offered(report)
    assert got[("dnd-on", GIGASET.ip, "disable-phone-dnd")] == (
        "unavailable",
        "remedy.why.no_write_path",
    )
    assert got[("dnd-on", GIGASET.ip, "phone-dnd-off-by-hand")] == ("manual", None)
    assert ("dnd-on", GIGASET.ip, "disable-line-dnd") not in got  # the line's DND is off
    assert got[("dnd-on", CISCO.ip, "disable-phone-dnd")] == ("ready", None)  # resync
    text = offers.offers(report, Config(), GIGASET.ip)[0].why.text("fr")
    assert "impossible par l'interface de ce téléphone" in text and "gigaset" in text


def test_without_api_access_the_line_remedies_say_so_and_the_codes_remain():
    site = {"provider.access": "not-configured", "provider.access_reason": "no keys"}
    report = make_report({"site": site, YEALINK.ip: {"phone.forward.always": True}}, [YEALINK])
    got = offered(report)
    assert got[("forwarding-left-on", YEALINK.ip, "disable-phone-forwarding")][0] == "ready"
    # the line's state is unknown: the API remedy cannot tell, the codes may help
    assert got[("forwarding-left-on", YEALINK.ip, "disable-line-forwarding")] == (
        "unavailable",
        "remedy.why.unknown",
    )
    assert got[("forwarding-left-on", YEALINK.ip, "forwarding-off-by-code")] == (
        "manual",
        "remedy.why.may_apply",
    )


def test_a_line_with_no_phone_on_the_lan_is_its_own_target():
    report = make_report(
        {"site": SITE_OK, "line:1002": {**LINE, "line.number": "1002", "line.dnd": True}}, []
    )
    got = offered(report)
    assert got[("dnd-on", "line:1002", "disable-line-dnd")] == ("ready", None)
    assert not [k for k in got if k[2] == "disable-phone-dnd"]  # no phone to write to
    assert resolve_subject(report, "line:1002") == "line:1002"
    assert resolve_subject(report, "1002") == "line:1002"


def test_site_findings_get_the_router_steps():
    report = make_report({"site": {**SITE_OK, "nat.sip_alg": True}}, [])
    got = offered(report)
    assert got == {("sip-alg-detected", "site", "router-voip-settings"): ("manual", None)}


def test_reprovision_needs_the_public_ip_and_the_right_mac():
    facts = {**LINE, "sip.registered": False, "registrar.udp.5060.reachable": True,
             "line.phone_mac": "80:5e:c0:aa:bb:cc", "line.mac_matches": True}  # fmt: skip
    report = make_report({"site": SITE_OK, YEALINK.ip: facts}, [YEALINK])
    assert offered(report)[("phone-not-registered", YEALINK.ip, "reprovision-phone")][0] == "ready"
    no_ip = make_report({"site": {"provider.access": "ok"}, YEALINK.ip: facts}, [YEALINK])
    assert offered(no_ip)[("phone-not-registered", YEALINK.ip, "reprovision-phone")] == (
        "unavailable",
        "remedy.why.no_public_ip",
    )
    other = make_report(
        {"site": SITE_OK, YEALINK.ip: {**facts, "line.mac_matches": False}}, [YEALINK]
    )
    assert not [k for k in offered(other) if k[2] == "reprovision-phone"]


def test_resolve_subject():
    report = make_report({"site": SITE_OK, YEALINK.ip: LINE}, [YEALINK])
    assert resolve_subject(report, "10.66.0.11") == YEALINK.ip
    assert resolve_subject(report, "1001") == YEALINK.ip  # the line's number: its phone
    assert resolve_subject(report, "line:1001") == YEALINK.ip
    assert resolve_subject(report, "site") == "site"
    for unknown in ("10.66.0.99", "line:9999", "not-an-ip", ""):
        assert resolve_subject(report, unknown) is None


# ---------------------------------------------------------------- portal, configuration, store


def test_portal_runs_only_allow_listed_remedies_that_act():
    cfg = Config(remedies_portal_allowed=["disable-line-forwarding", "router-voip-settings"])
    assert allowed_for_portal(cfg, "disable-line-forwarding") is True
    assert allowed_for_portal(cfg, "disable-line-dnd") is False  # not listed
    assert allowed_for_portal(cfg, "router-voip-settings") is False  # manual: nothing to run
    assert allowed_for_portal(cfg, "no-such-remedy") is False
    assert allowed_for_portal(Config(), "disable-line-forwarding") is False  # default: none


def test_config_store_and_remedies_sections(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[store]\npath = "~/x.sqlite"\n[remedies]\nportal_allowed = ["disable-line-dnd"]')
    cfg = config.load(f)
    assert cfg.remedies_portal_allowed == ["disable-line-dnd"]
    assert store.path_for(cfg.store_path) == Path("~/x.sqlite").expanduser()
    f.write_text("[remedies]\nportal_allowed = [1]\n")
    with pytest.raises(config.ConfigError, match="must list strings"):
        config.load(f)
    f.write_text("[remedies]\nportal = true\n")
    with pytest.raises(config.ConfigError, match=r"unknown setting remedies\.portal"):
        config.load(f)


def test_default_store_path(monkeypatch, tmp_path):
    monkeypatch.setattr(store.sys, "platform", "linux")
    monkeypatch.setattr(store.os, "geteuid", lambda: 0)
    assert store.default_path() == Path("/var/lib/phonediag/phonediag.sqlite")
    monkeypatch.setattr(store.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert store.default_path() == tmp_path / "data" / "phonediag" / "phonediag.sqlite"
    legacy = tmp_path / "state" / "phonediag" / "phonediag.sqlite"  # an earlier version's
    legacy.parent.mkdir(parents=True)
    legacy.touch()
    assert store.default_path() == legacy  # kept while the new place has no store
    (tmp_path / "data" / "phonediag").mkdir(parents=True)
    (tmp_path / "data" / "phonediag" / "phonediag.sqlite").touch()
    assert store.default_path() == tmp_path / "data" / "phonediag" / "phonediag.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.default_path() == tmp_path / "home/.local/share/phonediag/phonediag.sqlite"


def test_audit_rows_are_kept_owner_only(tmp_path):
    path = tmp_path / "deep" / "phonediag.sqlite"
    audit = Audit(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    run = audit.add(None, "planned", "disable-line-dnd", "10.66.0.11", line="1001",
                    before={"doNotDisturb": True}, after={"doNotDisturb": False})  # fmt: skip
    audit.add(run, "consent", "disable-line-dnd", "10.66.0.11", outcome="yes", message="--yes")
    audit.close()
    path.chmod(0o644)  # someone loosened it: opening it again tightens it
    again = Audit(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = again.rows(run)
    assert [(r.step, r.run, r.outcome) for r in rows] == [
        ("planned", run, ""),
        ("consent", run, "yes"),
    ]
    assert rows[0].before == {"doNotDisturb": True} and rows[0].line == "1001"
    assert again.run_of(rows[1].id) == run and again.run_of(999) is None
    assert [r.id for r in again.rows(limit=1)] == [rows[1].id]


def test_an_unusable_store_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(store.StoreError, match="file"):
        Audit(blocker / "phonediag.sqlite")  # its folder is a file


def test_the_listing_shows_every_finding_and_what_to_do():
    from agent.remedies import render

    facts = {**LINE, "line.forward.unconditional": True, "firmware.outdated": True}
    report = make_report({"site": SITE_OK, CISCO.ip: {**facts, "phone.dnd": True},
                          GIGASET.ip: {"phone.dnd": True}}, [CISCO, GIGASET])  # fmt: skip
    text = render.listing(offers.offers(report, Config()), "fr", report.findings)
    assert "+ disable-line-forwarding" in text
    assert "phonediag remedy apply disable-line-forwarding --device 10.66.0.12" in text
    assert "+ disable-phone-dnd" in text  # the Cisco, by a resync
    assert "- disable-phone-dnd" in text and "impossible ici" in text  # the Gigaset
    assert "* phone-dnd-off-by-hand" in text and "1. Cisco SPA" in text
    assert "1. Gigaset" in text
    # a finding no remedy answers is still listed, with where to look
    assert "(firmware-outdated)" in text and "phonediag diagnose" in text
    assert render.listing([], "en", []) == "No remedy to offer: nothing was found."
