"""The phone's own state, read through each vendor's interface in the lab: every fault
scenario's rule fires on the faulty phone and nowhere else; the healthy office is clean."""

from __future__ import annotations

import json

import pytest

from lab import Lab
from lab.scenarios import SCENARIOS

PHONE_RULES = {"dnd-on", "registration-auth-failed", "firmware-outdated", "forwarding-left-on"}


def diagnose(lab: Lab) -> dict:
    r = lab.run(["phonediag", "diagnose", "--json"], timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


def facts_of(report: dict, ip: str) -> dict:
    return {f["key"]: f["value"] for f in report["facts"] if f["subject"] == ip}


def test_healthy_every_phone_read_and_registered():
    with Lab.up("healthy") as lab:
        report = diagnose(lab)
    assert report["findings"] == []
    assert [e for e in report["errors"] if e["step"] == "probe.device"] == []
    for phone in lab.phones:
        facts = facts_of(report, phone["ip"])
        assert facts["phone.model"] == phone["model"]
        assert facts["phone.firmware"] == phone["firmware"]
        assert facts["sip.registered"] is True, (phone["model"], facts)
        assert facts["phone.dnd"] in (False, None)  # None: the family cannot tell (Gigaset)


def faulty(lab: Lab, scenario: str) -> str:
    role = SCENARIOS[scenario].fault_role(len(lab.phones))
    return next(p["ip"] for p in lab.phones if p["role"] == role)


@pytest.mark.parametrize(
    "scenario, rule",
    [
        ("dnd-on", "dnd-on"),
        ("forwarding-left-on", "forwarding-left-on"),
        ("wrong-password", "registration-auth-failed"),
        ("outdated-firmware", "firmware-outdated"),
    ],
)
def test_fault_found_on_the_right_phone_only(scenario, rule):
    with Lab.up(scenario) as lab:
        report = diagnose(lab)
        ip = faulty(lab, scenario)
    hits = [(f["rule"], f["device"]) for f in report["findings"] if f["rule"] in PHONE_RULES]
    assert hits == [(rule, ip)], report["findings"]


def test_duplicate_registration_names_both_devices():
    """A second phone provisioned with phone1's line: both report the same account."""
    with Lab.up("duplicate-registration") as lab:
        report = diagnose(lab)
        first = next(p["ip"] for p in lab.phones if p["role"] == "phone1")
        second = lab.extra_uas[0]["ip"]
    hits = sorted(f["device"] for f in report["findings"] if f["rule"] == "duplicate-registration")
    assert hits == sorted([first, second]), report["findings"]
    other = [f for f in report["findings"] if f["rule"] in PHONE_RULES]
    assert other == [], other


def test_every_family_read_through_its_face():
    """An office with one phone of every lab model: each identified, read through its
    vendor interface, registered, and no false alarm."""
    from lab.phones import models

    count = len([m for m in models() if m.get("cycle", True)])
    with Lab.up("healthy", phones=count) as lab:
        report = diagnose(lab)
    assert report["findings"] == [], report["findings"]
    assert [e for e in report["errors"] if e["step"] == "probe.device"] == []
    assert len({p["vendor"] for p in lab.phones}) == count
    for phone in lab.phones:
        facts = facts_of(report, phone["ip"])
        assert (facts["phone.model"], facts["phone.firmware"]) == (
            phone["model"],
            phone["firmware"],
        )
        assert facts["sip.registered"] is True, (phone["model"], facts)
