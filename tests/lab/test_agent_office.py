"""End to end: phonediag on the lab's agent host against real phones, registrar and NAT."""

from __future__ import annotations

import json

import pytest

from lab import Lab


@pytest.fixture(scope="module")
def healthy():
    with Lab.up("healthy") as lab:
        yield lab


@pytest.fixture(scope="module")
def blocked():
    with Lab.up("port-5060-blocked") as lab:
        yield lab


def run_json(lab: Lab, *args: str) -> tuple[int, dict]:
    r = lab.run(["phonediag", *args, "--json"], timeout=90)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def test_discover_finds_every_phone_with_identity(healthy):
    rc, report = run_json(healthy, "discover")
    assert rc == 0
    assert report["schema_version"] == "1" and report["scope"] == ["10.66.0.0/24"]
    devices = {d["ip"]: d for d in report["devices"]}
    truth = {p["ip"]: p for p in healthy.phones}
    # Exactly the phones: the router and the agent itself are not listed.
    assert set(devices) == set(truth), report["devices"]
    for ip, phone in truth.items():
        d = devices[ip]
        assert (d["vendor"], d["model"], d["firmware"]) == (
            phone["vendor"],
            phone["model"],
            phone["firmware"],
        ), d
        assert d["mac"] == phone["mac"]
        offered = {m for m, on in phone["offers"].items() if on and m in ("sip", "snmp", "mdns")}
        assert offered <= set(d["found_by"]), (ip, d["found_by"])
        assert "arp" in d["found_by"]
        # A model without SNMP must not be "found by SNMP".
        if not phone["offers"].get("snmp"):
            assert "snmp" not in d["found_by"]
    assert report["errors"] == []


def test_discover_text_table_for_a_person(healthy):
    r = healthy.run(["phonediag", "discover", "--lang", "en"], timeout=90)
    assert r.returncode == 0, r.stderr
    for phone in healthy.phones:
        assert phone["ip"] in r.stdout and phone["model"] in r.stdout
    assert "Phones found (3)" in r.stdout


def test_healthy_office_gives_no_false_alarm(healthy):
    rc, report = run_json(healthy, "diagnose")
    assert report["findings"] == [], report["findings"]
    assert rc == 0
    site = report["site"]
    assert site["dns.registrar.resolves"] is True
    assert site["registrar.udp.5060.reachable"] is True
    assert site["registrar.udp.5962.reachable"] is True
    assert len(report["devices"]) == len(healthy.phones)


def test_blocked_port_5060_is_diagnosed_with_its_remedy(blocked):
    rc, report = run_json(blocked, "diagnose", "--lang", "en")
    assert rc == 1
    assert [f["rule"] for f in report["findings"]] == ["sip-port-blocked"]
    f = report["findings"][0]
    assert f["severity"] == "critical" and f["device"] is None
    assert any("5962" in step for step in f["remedies"])
    assert report["site"]["registrar.udp.5060.reachable"] is False
    assert report["site"]["registrar.udp.5962.reachable"] is True


def test_blocked_port_text_report_in_french(blocked):
    r = blocked.run(["phonediag", "diagnose", "--lang", "fr"], timeout=90)
    assert r.returncode == 1, r.stderr
    assert "Le port SIP 5060 est bloqué vers OVHcloud" in r.stdout
    assert "Que faire" in r.stdout
    for phone in blocked.phones:
        assert phone["model"] in r.stdout
