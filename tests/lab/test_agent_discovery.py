"""Discovery in the fleet lab: a /24 with phones of the seven families scattered among
empty addresses, host-firewalled PCs, a printer and a switch. Every phone is found and
identified, nothing else is called a phone, and each method finds the phone that only it
can see."""

from __future__ import annotations

import json

import pytest

from lab import Lab

# What the lab's hosts answer -> the discovery method that sees it (found_by).
METHOD = {
    "arp": "arp",
    "sip-udp": "sip",
    "sip-tcp": "sip",
    "snmp": "snmp",
    "mdns": "mdns",
    "lldp": "lldp",
    "pnp": "pnp",
}


@pytest.fixture(scope="module")
def fleet():
    """One discovery with the defaults (the PnP-only phone resends every 0.5 s, within the
    default 1 s window), from a cold neighbour cache."""
    with Lab.up("fleet", phones=50) as lab:
        lab.exec("agent", ["ip", "neigh", "flush", "all"])
        r = lab.run(["phonediag", "discover", "--json"], timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        yield lab, json.loads(r.stdout)


def test_every_phone_found_and_identified_and_nothing_else(fleet):
    lab, report = fleet
    devices = {d["ip"]: d for d in report["devices"]}
    phones = {h["ip"]: h for h in lab.fleet_hosts if h["kind"] == "phone"}
    others = {h["ip"]: h["kind"] for h in lab.fleet_hosts if h["kind"] != "phone"}
    assert len(phones) == 50 and {"pc", "printer", "switch"} <= set(others.values())
    assert sorted(set(phones) - set(devices)) == []  # recall 100 %
    assert {ip: others[ip] for ip in devices if ip in others} == {}  # no PC, printer, switch
    assert sorted(set(devices) - set(phones)) == []
    wrong = {
        ip: (d["vendor"], d["model"], d["firmware"])
        for ip, d in devices.items()
        if (d["vendor"], d["model"], d["firmware"])
        != (phones[ip]["vendor"], phones[ip]["model"], phones[ip]["firmware"])
    }
    assert wrong == {}
    assert report["errors"] == []


def test_found_by_lists_every_method_that_saw_each_phone(fleet):
    lab, report = fleet
    devices = {d["ip"]: d for d in report["devices"]}
    for host in lab.fleet_hosts:
        if host["kind"] != "phone":
            continue
        expected = sorted({METHOD[m] for m in host["methods"] if m in METHOD})
        assert devices[host["ip"]]["found_by"] == expected, host


@pytest.mark.parametrize("method", ["mdns", "snmp", "sip-tcp", "pnp", "lldp"])
def test_a_phone_only_one_method_sees(fleet, method):
    """The mDNS-only, SNMP-only, SIP-TCP-only, PnP-only and LLDP-only phones: each is
    found, by that method (and ARP) alone, and identified from what that method read."""
    lab, report = fleet
    host = next(h for h in lab.fleet_hosts if h.get("single_method") and method in h["methods"])
    device = next(d for d in report["devices"] if d["ip"] == host["ip"])
    assert device["found_by"] == sorted({"arp", METHOD[method]})
    assert (device["vendor"], device["model"]) == (host["vendor"], host["model"])


def test_no_root_needed_for_sip_snmp_mdns_and_pnp(fleet):
    """As an unprivileged user (no raw sockets: no ARP sweep, the neighbour table instead),
    every phone that answers SIP, SNMP, mDNS or PnP is still found and identified."""
    lab, _ = fleet
    lab.exec("agent", ["ip", "neigh", "flush", "all"])
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # The lab's config sits in its owner-only state dir: the defaults fit the fleet.
    r = lab.run([*nobody, "phonediag", "discover", "--json"], timeout=120,
                env={"PHONEDIAG_CONFIG": "", "HOME": "/nonexistent"})  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    devices = {d["ip"]: d for d in json.loads(r.stdout)["devices"]}
    wanted = {"sip-udp", "sip-tcp", "snmp", "mdns", "pnp"}
    for host in lab.fleet_hosts:
        if host["kind"] == "phone" and wanted & set(host["methods"]):
            assert host["ip"] in devices, host
            assert devices[host["ip"]]["model"] == host["model"], host
