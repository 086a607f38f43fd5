"""MAC prefixes (OUIs) as data: the phone makers' (in their vendor files), the non-phone
makers' (not_phones_oui.toml), and the identification policy for devices seen only by ARP."""

from __future__ import annotations

import re
import tomllib
from importlib import resources

import pytest

from agent import identify
from agent.model import Device

HEX6 = re.compile(r"[0-9A-F]{6}")


def device(mac: str | None, **evidence) -> Device:
    d = Device("10.0.0.9", mac=mac, evidence=evidence, found_by=list(evidence))
    identify.identify(d)
    return d


def test_prefix_lists_are_well_formed_and_never_overlap():
    seen: dict[str, str] = {}
    for v in identify.vendors():
        assert v.oui.isdisjoint(v.oui_shared), v.id
        for oui in v.oui | v.oui_shared:
            assert HEX6.fullmatch(oui), (v.id, oui)
            assert oui not in seen, (oui, v.id, seen.get(oui))
            seen[oui] = v.id
    makers = identify.non_phone_ouis()
    assert len(makers) > 1000
    assert all(HEX6.fullmatch(o) for o in makers)
    assert not set(makers) & set(seen), "a phone maker's prefix is listed as a non-phone"
    kinds = {m.kind for m in makers.values()}
    assert kinds <= {"computer", "printer", "storage", "network", "virtual-machine"}


def test_the_seven_families_have_prefixes():
    ids = {v.id for v in identify.vendors() if v.oui or v.oui_shared}
    assert ids == {"yealink", "cisco", "gigaset", "poly", "fanvil", "grandstream", "snom"}


def test_non_phone_lists_match_the_registry_they_cite():
    """Every listed prefix belongs to the organisation `registry` names, and none of that
    organisation's prefixes is missing (the IEEE registry as scapy ships it)."""
    manuf = pytest.importorskip("scapy.data").MANUFDB
    data = tomllib.loads(
        (resources.files("agent.vendors") / "not_phones_oui.toml").read_text(encoding="utf-8")
    )
    orgs = {o.replace(":", ""): v[1] or "" for o, v in manuf.d.items() if len(o) == 8}
    for m in data["maker"]:
        rx = re.compile(m["registry"])
        listed = set(m["oui"])
        assert all(rx.search(orgs.get(o, "")) for o in listed), m["id"]
        assert listed == {o for o, org in orgs.items() if rx.search(org)}, m["id"]


@pytest.mark.parametrize(
    "mac, evidence, vendor, phone",
    [
        # Only ARP saw it: a phone-only prefix makes a phone, a shared one names the maker.
        ("80:5e:c0:00:00:01", {"arp": {}}, "yealink", True),
        ("00:04:13:00:00:01", {"arp": {}}, "snom", True),
        ("0c:38:3e:00:00:01", {"arp": {}}, "fanvil", True),
        ("7c:2f:80:00:00:01", {"arp": {}}, "gigaset", True),
        ("00:0e:08:00:00:01", {"arp": {}}, "cisco", False),  # Cisco-Linksys: a router too
        ("00:04:f2:00:00:01", {"arp": {}}, "poly", False),  # Polycom: video systems too
        ("00:0b:82:00:00:01", {"arp": {}}, "grandstream", False),  # GWN access points too
        # ...unless it speaks SIP, or the switch's LLDP says it is a telephone.
        ("00:04:f2:00:00:01", {"arp": {}, "sip": {"udp.5060": "200 OK"}}, "poly", True),
        ("00:0b:82:00:00:01", {"lldp": {"caps": "bridge,telephone"}}, "grandstream", True),
        # A PC, a printer, a NAS: never a phone, even answering SIP (a softphone, a PBX)...
        ("00:14:22:00:00:01", {"arp": {}}, None, False),
        ("00:14:22:00:00:01", {"sip": {"agent": "MicroSIP/3.21.3"}}, None, False),
        ("3c:d9:2b:00:00:01", {"sip": {"agent": "Asterisk PBX 20.5.0"}}, None, False),
        ("00:0c:29:00:00:01", {"sip": {"udp.5060": "200 OK"}}, None, False),  # VMware
        # ...unless a phone vendor's own fingerprint says otherwise (Poly is HP's now),
        ("3c:d9:2b:00:00:01", {"sip": {"agent": "PolycomVVX-VVX_310-UA/5.5.2.8571"}}, "poly", True),
        # ...or it sent a PnP SUBSCRIBE, which only phones do.
        ("00:14:22:00:00:01", {"pnp": {"agent": "SomeSoftPhone 1.0"}}, "somesoftphone", True),
        # A random (locally administered) MAC says nothing; SIP still makes a SIP device.
        ("02:42:ac:11:00:02", {"sip": {"agent": "Asterisk PBX 20"}}, "asterisk", True),
        ("02:42:ac:11:00:02", {"arp": {}}, None, False),
    ],
)
def test_identification_policy_for_prefixes(mac, evidence, vendor, phone):
    d = device(mac, **evidence)
    assert (d.vendor, identify.is_phone(d)) == (vendor, phone), d


def test_a_non_phone_prefix_is_recorded_as_the_reason():
    d = device("00:14:22:00:00:01", sip={"agent": "MicroSIP/3.21.3"})
    assert d.identified_by == ["not-phone:computer:oui"]
    assert identify.non_phone_ouis()["001422"].id == "dell"
    assert identify.non_phone_ouis()["3CD92B"].kind == "computer"  # Hewlett Packard
