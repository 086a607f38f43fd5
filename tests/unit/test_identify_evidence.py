"""Identification from the newer evidence (LLDP through a switch, ENTITY-MIB and vendor
identity objects, normalised mDNS TXT; PnP is in test_discovery_pnp.py) and what is not
a phone (not_phones.toml). Values are those of the recordings the vendor files cite."""

from __future__ import annotations

import pytest

from agent import identify
from agent.model import Device

CASES = [
    # LLDP sysDesc/sysName read from the switch (LibreNMS switch recordings)
    ({"lldp": {"sysdesc": "Polycom SoundPoint IP 335"}}, ("poly", "SoundPoint IP 335", None)),
    (
        {"lldp": {"sysname": "GXP1625_00:0b:82:f6:1e:68", "caps": "telephone"}},
        ("grandstream", "GXP1625", None),
    ),
    (
        {"lldp": {"sysdesc": "Yealink SIP-T46S 66.86.0.15", "caps": "bridge,telephone"}},
        ("yealink", "SIP-T46S", "66.86.0.15"),
    ),
    ({"lldp": {"sysdesc": "snomD785 10.1.54.13"}}, ("snom", "D785", "10.1.54.13")),
    ({"lldp": {"sysdesc": "Fanvil X4U 2.4.2"}}, ("fanvil", "X4U", "2.4.2")),
    ({"lldp": {"sysdesc": "Gigaset N670 IP PRO 2.26.0"}}, ("gigaset", "N670 IP PRO", "2.26.0")),
    # ENTITY-MIB
    (
        {
            "snmp": {
                "sysDescr": "Linux 4.9",
                "entMfgName": "Yealink",
                "entModelName": "SIP-T46S",
                "entSoftwareRev": "66.86.0.15",
            }
        },
        ("yealink", "SIP-T46S", "66.86.0.15"),
    ),
    (  # LibreNMS tests/snmpsim/ciscospa.snmprec
        {
            "snmp": {
                "sysDescr": "Linux SPA112 2.6.26.5 #1 PREEMPT Wed Aug 2 14:04:45 CST 2017"
                " armv5tejl",
                "sysObjectID": ".1.3.6.1.4.1.9.6.1.23.1.1.1.3",
                "entModelName": "SPA112",
                "entSoftwareRev": "0.00.51",
            }
        },
        ("cisco", "SPA112", "0.00.51"),
    ),
    (  # LibreNMS tests/snmpsim/polycomLens_studioxc50.snmprec: POLYCOM-BASE-MIB identity
        {
            "snmp": {
                "sysDescr": "Videoconferencing Device",
                "sysObjectID": ".1.3.6.1.4.1.2684",
                "polyModel": "StudioX50",
                "polySoftware": "3.10.0-362035",
            }
        },
        ("poly", "StudioX50", "3.10.0"),
    ),
    # mDNS TXT, normalised by discovery
    (
        {"mdns": {"vendor": "Grandstream", "model": "GXP2170", "firmware": "1.0.11.3"}},
        ("grandstream", "GXP2170", "1.0.11.3"),
    ),
]


@pytest.mark.parametrize("evidence, expected", CASES)
def test_identify_new_evidence(evidence, expected):
    d = Device("10.0.0.9", evidence=evidence)
    identify.identify(d)
    assert (d.vendor, d.model, d.firmware) == expected
    assert identify.is_phone_vendor(d)


NOT_PHONES = [
    ({"snmp": {"sysDescr": "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153"}}, "printer"),
    ({"snmp": {"sysDescr": "Brother NC-8300h, Firmware Ver.1.11"}}, "printer"),
    ({"lldp": {"sysdesc": "RICOH MP C3004 1.03"}}, "printer"),
    ({"mdns": {"type": "_http._tcp.local.,_ipp._tcp.local.", "name": "Office"}}, "printer"),
    (  # a Cisco switch filling ENTITY-MIB with its maker's name
        {
            "snmp": {
                "sysDescr": "Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M)",
                "entMfgName": "Cisco Systems, Inc.",
                "entModelName": "WS-C2960-24TT-L",
            }
        },
        "network",
    ),
    (  # Grandstream's GWN switches share its enterprise OID
        {"snmp": {"sysObjectID": ".1.3.6.1.4.1.42397.2.1", "sysDescr": "GWN7802P"}},
        "network",
    ),
    ({"lldp": {"sysdesc": "Linux 5.4", "caps": "bridge,router"}}, "network"),
    ({"lldp": {"sysname": "ap-floor-1", "caps": "wlanAccessPoint"}}, "network"),
]


@pytest.mark.parametrize("evidence, kind", NOT_PHONES)
def test_printers_and_switches_are_not_phones(evidence, kind):
    d = Device("10.0.0.9", mac="00:15:65:00:00:01", evidence=evidence)  # even with a Yealink OUI
    identify.identify(d)
    assert d.vendor is None
    assert d.identified_by[0].startswith(f"not-phone:{kind}:")
    assert not identify.is_phone_vendor(d)


def test_a_phone_that_names_itself_is_never_excluded():
    d = Device(
        "10.0.0.9",
        evidence={
            "sip": {"agent": "Yealink SIP-T46S 66.86.0.15"},
            "lldp": {"sysdesc": "Yealink SIP-T46S 66.86.0.15", "caps": "bridge"},
        },
    )
    identify.identify(d)
    assert (d.vendor, d.model) == ("yealink", "SIP-T46S")


def test_a_telephone_by_lldp_alone_is_a_phone():
    d = Device("10.0.0.9", evidence={"lldp": {"sysdesc": "Acme Phone 1", "caps": "telephone"}})
    identify.identify(d)
    assert d.vendor is None and identify.is_phone_vendor(d)


def test_one_match_listing_several_fields_counts_once():
    d = Device("10.0.0.9", evidence={"mdns": {"txt.vendor": "Yealink", "vendor": "Yealink"}})
    identify.identify(d)
    assert d.identified_by == ["mdns.txt.vendor"]


def test_identity_oids_come_from_the_vendor_files():
    oids = identify.snmp_identity_oids()
    assert oids["1.3.6.1.4.1.42397.1.2.3.4.0"] == "gsVersionProg"
    assert oids["1.3.6.1.4.1.13885.101.1.1.4.0"] == "polyModel"


@pytest.mark.parametrize(
    "text",
    [
        'id="x"\nname="X"\n[[match]]\nfield=[1]\nregex="a"\n',
        'id="x"\nname="X"\n[[match]]\nfield=[]\nregex="a"\n',
        'id="x"\nname="X"\n[[snmp_oid]]\noid="1.3.x"\nname="n"\n',
        'id="x"\nname="X"\n[[snmp_oid]]\noid="1.3.6"\nname="bad name"\n',
        'id="x"\nname="X"\n[[snmp_oid]]\noid="1.3.6"\n',
    ],
)
def test_bad_new_entries_are_clear_errors(text):
    with pytest.raises(identify.FingerprintError, match=r"x\.toml"):
        identify.parse_vendor(text, "x.toml")


def test_exclusion_data_loads():
    kinds = {m.kind for m in identify.exclusions()}
    assert kinds == {"network", "printer"}
