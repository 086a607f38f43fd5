"""The network between the office and OVHcloud, measured from the agent host: SIP ALG,
NAT binding lifetime, blocked port, DNS. Each fault scenario gives its finding with
evidence; the healthy office gives none of them."""

from __future__ import annotations

import json

from lab import Lab

NETWORK_RULES = {"sip-alg-detected", "nat-udp-timeout-short", "sip-port-blocked", "dns-failure"}


def diagnose(lab: Lab, *args: str) -> tuple[int, dict]:
    r = lab.run(["phonediag", "diagnose", "--json", *args], timeout=180)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def network_findings(report: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in report["findings"] if f["rule"] in NETWORK_RULES}


def test_healthy_office_none_of_the_network_findings():
    with Lab.up("healthy") as lab:
        rc, report = diagnose(lab, "--nat-budget", "40")
    assert network_findings(report) == {}
    assert rc == 0, report["findings"]
    site = report["site"]
    assert site["nat.sip_alg"] is False
    assert site["lan.public_ip"] == "100.64.66.2"  # the router's WAN address, seen by STUN
    assert site["nat.udp_timeout_min_s"] == 32.0  # every mapping in the budget survived
    assert site["nat.udp_timeout_s"] is None  # so no lifetime was measured: no verdict
    assert site["dns.provisioning.resolves"] is True
    assert site["net.rtp.reachable"] is True  # UDP 30000 towards the reflector answered


def test_sip_alg_rewrites_are_shown_as_the_far_side_saw_them():
    with Lab.up("sip-alg") as lab:
        rc, report = diagnose(lab)
    found = network_findings(report)
    assert set(found) == {"sip-alg-detected"}, report["findings"]
    rewrites = report["site"]["nat.sip_alg_rewrites"]
    assert any("Via" in r and "100.64.66.2" in r for r in rewrites), rewrites
    assert any("Contact" in r and "100.64.66.2" in r for r in rewrites), rewrites
    assert rc == 1


def test_short_nat_timeout_states_the_measured_lifetime():
    with Lab.up("short-nat-timeout") as lab:
        _rc, report = diagnose(lab, "--nat-budget", "40")
    found = network_findings(report)
    assert set(found) == {"nat-udp-timeout-short"}, report["findings"]
    assert report["site"]["nat.udp_timeout_s"] == 25.0  # kept 25 s, lost 32 s (30 s router)
    facts = {f["key"]: f for f in report["facts"] if f["subject"] == "site"}
    assert "not 32 s" in facts["nat.udp_timeout_s"]["evidence"]


def test_dns_broken_is_the_root_cause():
    with Lab.up("dns-broken") as lab:
        rc, report = diagnose(lab)
    found = network_findings(report)
    assert set(found) == {"dns-failure"}, report["findings"]
    assert report["findings"][0]["rule"] == "dns-failure"  # root cause first
    assert report["site"]["dns.provisioning.resolves"] is False
    assert rc == 1


def test_inbound_path_yes_in_healthy_no_once_the_short_nat_forgot_the_phone():
    import time

    def inbound(report: dict) -> dict[str, object]:
        return {
            f["subject"]: f["value"]
            for f in report["facts"]
            if f["key"] == "line.reachable_inbound"
        }

    with Lab.up("healthy") as lab:
        _rc, report = diagnose(lab)
        phones = {p["ip"] for p in lab.phones}
    assert inbound(report) == dict.fromkeys(phones, True), inbound(report)
    assert "inbound-unreachable" not in {f["rule"] for f in report["findings"]}

    with Lab.up("short-nat-timeout") as lab:
        time.sleep(36)  # the phones registered at boot; their mappings expire after 30 s idle
        _rc, report = diagnose(lab)
        phones = {p["ip"] for p in lab.phones}
    assert inbound(report) == dict.fromkeys(phones, False), inbound(report)
    found = {f["device"] for f in report["findings"] if f["rule"] == "inbound-unreachable"}
    assert found == phones
