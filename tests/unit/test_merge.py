"""Merging sightings into devices (one per IP, MACs from any method, shared MACs noted),
and the discovery step around it: scope filter, identification, which devices are phones."""

from __future__ import annotations

import ipaddress

from agent import discovery, pipeline
from agent.config import Config
from agent.discovery import arp
from agent.model import Sighting
from agent.scope import ScopedNetwork


def test_one_device_per_ip_with_each_methods_evidence():
    devices = pipeline.merge(
        [
            Sighting("sip", "10.0.0.20", attrs={"agent": "Yealink SIP-T46S 66.86.0.15"}),
            Sighting("pnp", "10.0.0.20", mac="805EC0000020", attrs={"vendor": "Yealink"}),
            Sighting("lldp", "10.0.0.20", attrs={"sysdesc": "Yealink SIP-T46S"}),
            Sighting("arp", "10.0.0.3", mac="80-5E-C0-00-00-03"),
            Sighting("mdns", "10.0.0.3", mac="80:5e:c0:00:00:99", attrs={"name": "x"}),
            Sighting("arp", "10.0.0.3", mac="80:5E:C0:00:00:03"),
        ]
    )
    assert [d.ip for d in devices] == ["10.0.0.3", "10.0.0.20"]
    a, b = devices
    assert b.found_by == ["sip", "pnp", "lldp"] and b.mac == "80:5e:c0:00:00:20"
    assert b.evidence["pnp"] == {"vendor": "Yealink"}
    assert b.evidence["lldp"] == {"sysdesc": "Yealink SIP-T46S"}
    # ARP's MAC wins over another method's; the disagreement is noted.
    assert a.mac == "80:5e:c0:00:00:03"
    assert a.evidence["merge"] == {"other_macs": "80:5e:c0:00:00:99"}
    assert "merge" not in b.evidence


def test_two_ips_with_one_mac_stay_two_devices_and_are_noted():
    devices = pipeline.merge(
        [
            Sighting("arp", "10.0.0.7", mac="02:00:00:00:00:01"),
            Sighting("sip", "10.0.0.30", attrs={"agent": "x"}),
            Sighting("arp", "10.0.0.30", mac="02:00:00:00:00:01"),
            Sighting("arp", "10.0.0.12", mac="02:00:00:00:00:01"),
        ]
    )
    notes = {d.ip: d.evidence["merge"]["same_mac_as"] for d in devices}
    assert notes == {
        "10.0.0.7": "10.0.0.12, 10.0.0.30",
        "10.0.0.12": "10.0.0.7, 10.0.0.30",
        "10.0.0.30": "10.0.0.7, 10.0.0.12",
    }


def test_bad_addresses_are_dropped_not_fatal():
    devices = pipeline.merge(
        [
            Sighting("lldp", "not-an-ip", mac="02:00:00:00:00:01"),
            Sighting("pnp", "10.0.0.5", mac="garbage"),
        ]
    )
    assert [(d.ip, d.mac, d.found_by) for d in devices] == [("10.0.0.5", None, ["pnp"])]


NET = ScopedNetwork(ipaddress.ip_network("10.66.0.0/24"), "eth0", "10.66.0.100")
DELL, YEALINK, LINKSYS = "00:14:22", "80:5e:c0", "00:0e:08"


async def test_discover_keeps_the_phones_in_scope(monkeypatch):
    async def sip(ctx):
        return [
            Sighting("sip", "10.66.0.11", attrs={"agent": "Yealink SIP-T46S 66.86.0.15"}),
            Sighting("sip", "10.66.0.13", attrs={"agent": "MicroSIP/3.21.3"}),  # on a PC
            Sighting("sip", "10.66.0.18", attrs={"agent": "Yealink SIP-T46S 66.86.0.15"}),
            Sighting("sip", "192.168.50.5", attrs={"agent": "Yealink SIP-T46S 1.0"}),
        ]

    async def pnp(ctx):
        attrs = {"vendor": "Grandstream", "model": "GRP2612W", "version": "1.0.5.67"}
        return [Sighting("pnp", "10.66.0.14", mac="000B82112233", attrs=attrs)]

    async def lldp(ctx):
        attrs = {"sysdesc": "Polycom;VVX-VVX_450;3111-49950-001,1;SIP/6.4.0.1"}
        return [Sighting("lldp", "10.66.0.15", attrs={**attrs, "caps": "bridge,telephone"})]

    async def sweep(ctx):
        return arp.Swept(
            [
                Sighting("arp", "10.66.0.11", mac=f"{YEALINK}:00:00:11"),
                Sighting("arp", "10.66.0.12", mac=f"{DELL}:00:00:12"),  # a PC
                Sighting("arp", "10.66.0.13", mac=f"{DELL}:00:00:13"),
                Sighting("arp", "10.66.0.16", mac=f"{LINKSYS}:00:00:16"),  # a router?
                Sighting("arp", "10.66.0.17", mac=f"{YEALINK}:00:00:17"),  # a quiet phone
                Sighting("arp", "10.66.0.18", mac=f"{YEALINK}:00:00:11"),
            ]
        )

    async def table(ctx, swept=None):
        return swept.sightings

    monkeypatch.setattr(discovery, "methods", lambda: {"sip": sip, "pnp": pnp, "lldp": lldp})
    monkeypatch.setattr(arp, "sweep", sweep)
    monkeypatch.setattr(arp, "discover", table)
    run = pipeline.Runner(deadline=10)
    devices = {d.ip: d for d in await pipeline.discover(Config(), [NET], run)}
    assert run.errors == []
    assert set(devices) == {"10.66.0.11", "10.66.0.14", "10.66.0.15", "10.66.0.17", "10.66.0.18"}
    assert devices["10.66.0.11"].vendor == "yealink"
    assert devices["10.66.0.11"].evidence["merge"] == {"same_mac_as": "10.66.0.18"}
    assert devices["10.66.0.14"].found_by == ["pnp"]
    assert devices["10.66.0.14"].mac == "00:0b:82:11:22:33"
    assert devices["10.66.0.17"].identified_by == ["oui"]
    assert set(run.timings) >= {"discover.sip", "discover.arp.sweep", "discover.arp"}
