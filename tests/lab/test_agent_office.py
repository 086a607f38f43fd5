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
    found = sorted((f["rule"], f["device"] or "") for f in report["findings"])
    # The phones' web faces say they have no outbound proxy on 5962: the guide's own fix.
    proxies = [("outbound-proxy-missing", p["ip"]) for p in blocked.phones]
    assert found == sorted([*proxies, ("sip-port-blocked", "")]), found
    assert report["findings"][0]["rule"] == "sip-port-blocked"  # the root cause first
    f = next(f for f in report["findings"] if f["rule"] == "sip-port-blocked")
    assert f["severity"] == "critical" and f["device"] is None
    assert any("5962" in step for step in f["remedies"])
    assert report["site"]["registrar.udp.5060.reachable"] is False
    assert report["site"]["registrar.udp.5962.reachable"] is True


def test_explain_says_why_each_rule_did_or_did_not_match(blocked):
    rc, report = run_json(blocked, "diagnose", "--explain")
    assert rc == 1
    verdicts = {(e["rule"], e["device"]): e for e in report["explain"]}
    blocked_port = verdicts[("sip-port-blocked", None)]
    assert blocked_port["result"] is True
    assert blocked_port["trace"] == [
        "registrar.udp.5060.reachable eq False: False -> true",
        "registrar.udp.5962.reachable eq True: True -> true",
    ]
    # Nothing measured the NAT yet: the SIP ALG rule is undecided, not "no".
    assert verdicts[("sip-alg-detected", None)]["result"] is None
    r = blocked.run(["phonediag", "diagnose", "--explain", "--lang", "en"], timeout=90)
    assert "MATCH    sip-port-blocked" in r.stdout


def test_blocked_port_text_report_in_french(blocked):
    r = blocked.run(["phonediag", "diagnose", "--lang", "fr"], timeout=90)
    assert r.returncode == 1, r.stderr
    assert "Le port SIP 5060 est bloqué vers OVHcloud" in r.stdout
    assert "Que faire" in r.stdout
    for phone in blocked.phones:
        assert phone["model"] in r.stdout


NO_LOCALE = {"LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": ""}


def test_typed_message_gives_the_guides_steps_in_order(healthy):
    """The wizard's « Echec Enregistrement » procedure, measured checks first, French default."""
    args = ["phonediag", "diagnose", "--symptom", "error-message", "--message"]
    fr = healthy.run([*args, "echec enregistrement", "--json"], env=NO_LOCALE, timeout=90)
    report = json.loads(fr.stdout)
    assert fr.returncode == 1
    # The office is healthy: the typed message is the only finding.
    assert [f["rule"] for f in report["findings"]] == ["gigaset-echec-enregistrement"]
    steps = report["findings"][0]["remedies"]
    order = ["côté droit de la base", "Redémarrez la base", "0.0.0.0", "Assist VoIP", "1007"]
    positions = [next(i for i, s in enumerate(steps) if key in s) for key in order]
    assert positions == sorted(positions), steps
    # Any case, accents and spacing; English on request.
    en = healthy.run(
        ["phonediag", "diagnose", "--message", "  ÉCHEC   enregistrement", "--lang", "en"],
        timeout=90,
    )
    assert en.returncode == 1
    assert "Failed Registration" in en.stdout and "Assist VoIP" in en.stdout
    assert "What to do:" in en.stdout


def test_symptom_keeps_only_its_rules(healthy):
    r = healthy.run(["phonediag", "diagnose", "--symptom", "no-ring", "--json"], timeout=90)
    report = json.loads(r.stdout)
    found = [(f["rule"], f["device"]) for f in report["findings"]]
    # Nothing measured is wrong: the wizard's "can call out but not receive" procedure for
    # each phone family found (the Cisco SPA's DND key, the C530's firewall), then the
    # guide's checklist with the feature codes.
    by_ip = {p["model"]: p["ip"] for p in healthy.phones}
    assert found == [
        ("no-ring-cisco-dnd", by_ip["SPA504G"]),
        ("no-ring-siemens-firewall", by_ip["C530 IP"]),
        ("no-ring-checklist", None),
    ], found
    assert all(f["severity"] != "critical" for f in report["findings"])
    assert any("*#21#" in s for s in report["findings"][-1]["remedies"])
