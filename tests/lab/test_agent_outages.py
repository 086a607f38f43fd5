"""Outages beyond the office (root only): OVHcloud's registrar, STUN server, reflector or
API falling silent, the box's DNS timing out (lab/outages.py: packets dropped, so only
timeouts tell). For each, `phonediag diagnose` ends within its deadline without a
traceback, and the report says what was out: a finding when the outage is the office's
problem, an error entry naming the check it could not make otherwise; nothing else is
blamed. Without an outage, the same office gives a clean report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from lab import Lab
from lab.outages import outage

DEADLINE = 12  # enough for every check of a healthy office (about 7 s)


@pytest.fixture(scope="module")
def office() -> Iterator[Lab]:
    with Lab.up("healthy") as lab:
        yield lab


def diagnose(lab: Lab) -> tuple[int, dict, float]:
    began = time.monotonic()
    r = lab.run(["phonediag", "diagnose", "--json", "--deadline", str(DEADLINE)], timeout=120)
    elapsed = time.monotonic() - began
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 1), r.stderr
    assert elapsed < DEADLINE + 5, elapsed  # how closely: benchmarks/deadline.py
    return r.returncode, json.loads(r.stdout), elapsed


def rules(report: dict) -> set[str]:
    return {f["rule"] for f in report["findings"]}


def errors(report: dict) -> dict[str, str]:
    return {e["step"]: e["reason"] for e in report["errors"]}


def test_the_healthy_office_is_clean(office):
    code, report, _ = diagnose(office)
    assert (code, rules(report), report["errors"]) == (0, set(), [])


def test_a_silent_registrar_is_the_finding(office):
    with outage(office, "registrar-silent"):
        code, report, _ = diagnose(office)
    assert code == 1
    assert "registrar-unreachable" in rules(report)
    assert not {"sip-alg-detected", "dns-failure"} & rules(report)


def test_a_silent_stun_server_is_a_check_not_made_not_a_fault(office):
    with outage(office, "stun-silent"):
        code, report, _ = diagnose(office)
    assert (code, rules(report)) == (0, set())
    why = errors(report)["probe.stun"]
    assert "3478" in why and "not measured" in why, why
    assert report["site"]["lan.public_ip"] is None  # unknown, not guessed
    assert report["site"]["nat.sip_alg"] is False  # the reflector still answered


def test_a_vanished_reflector_leaves_the_alg_untested_and_says_so(office):
    with outage(office, "reflector-gone"):
        code, report, _ = diagnose(office)
    assert (code, rules(report)) == (0, set())
    assert "SIP ALG not tested" in errors(report)["probe.alg"]
    assert "RTP ports not tested" in errors(report)["probe.rtp"]
    assert report["site"]["nat.sip_alg"] is None  # unknown: no sip-alg-detected, no "no ALG"


def test_a_silent_api_is_said_and_the_office_checks_still_run(office):
    with outage(office, "api-silent"):
        code, report, _ = diagnose(office)
    assert (code, rules(report)) == (0, {"provider-not-checked"})  # information, not a fault
    assert "probe.provider" in errors(report)
    assert len(report["devices"]) == len(office.phones)  # the LAN checks went on


def test_a_dns_resolver_timing_out_is_the_root_cause(office):
    with outage(office, "dns-timeout"):
        code, report, _ = diagnose(office)
    assert code == 1
    assert "dns-failure" in rules(report)
    assert not {"registrar-unreachable", "sip-alg-detected"} & rules(report)
