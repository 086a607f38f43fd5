"""Identification from data, checked against answers real devices give (knowledge files:
nmap-service-probes User-Agents, LibreNMS snmprec recordings, OUIs)."""

import pytest

from agent import identify
from agent.model import Device

CASES = [
    # evidence, mac, expected (vendor, model, firmware)
    (
        {"sip": {"agent": "Yealink SIP-T46S 66.86.0.15"}},
        None,
        ("yealink", "SIP-T46S", "66.86.0.15"),
    ),
    (
        {"sip": {"agent": "Yealink SIP-T46G 28.81.0.110"}},
        None,
        ("yealink", "SIP-T46G", "28.81.0.110"),
    ),
    ({"sip": {"agent": "Cisco/SPA504G-7.6.2c"}}, None, ("cisco", "SPA504G", "7.6.2c")),
    ({"sip": {"agent": "Cisco/SPA112-1.4.1(SR5)"}}, None, ("cisco", "SPA112", "1.4.1(SR5)")),
    (
        {
            "snmp": {
                "sysObjectID": ".1.3.6.1.4.1.9.6.1.23.1.1.3",
                "sysDescr": "Linux SPA112 2.6.26.5",
            }
        },
        None,
        ("cisco", None, None),
    ),
    (
        {"sip": {"agent": "Gigaset N510 IP PRO/42.250.00.000.000"}},
        None,
        ("gigaset", "N510 IP PRO", "42.250.00.000.000"),
    ),
    (
        {"sip": {"server": "x", "agent": "PolycomVVX-VVX_310-UA/5.5.2.8571"}},
        None,
        ("poly", "VVX_310", "5.5.2.8571"),
    ),
    (
        {"sip": {"agent": "PolycomSoundPointIP-SPIP_335-UA/4.0.1.13681"}},
        None,
        ("poly", "SPIP_335", "4.0.1.13681"),
    ),
    (
        {"sip": {"agent": "Grandstream HT802 1.0.43.11"}},
        None,
        ("grandstream", "HT802", "1.0.43.11"),
    ),
    (
        {
            "snmp": {
                "sysObjectID": ".1.3.6.1.4.1.8072.3.2.10",
                "sysDescr": "Linux HT8XX 3.4.20-rt31",
            }
        },
        None,
        ("grandstream", "HT8XX", None),
    ),
    ({"sip": {"agent": "snomD785/10.1.54.13"}}, None, ("snom", "D785", "10.1.54.13")),
    ({"sip": {"agent": "Fanvil V65 2.12.8.2"}}, None, ("fanvil", "V65", "2.12.8.2")),
    # mDNS TXT only, vendor from OUI + TXT
    (
        {
            "mdns": {
                "name": "Yealink SIP-T46S 805EC0A1B2C3",
                "txt.model": "SIP-T46S",
                "txt.fw": "66.86.0.15",
                "txt.vendor": "Yealink",
            }
        },
        None,
        ("yealink", "SIP-T46S", "66.86.0.15"),
    ),
    # a phone that answers nothing but ARP: the OUI alone names the vendor
    ({"arp": {}}, "7c:2f:80:12:34:56", ("gigaset", None, None)),
    # an unknown SIP device: the lower-case maker, no model
    ({"sip": {"agent": "Asterisk PBX 20.5.0"}}, None, ("asterisk", None, None)),
]


@pytest.mark.parametrize("evidence, mac, expected", CASES)
def test_identify(evidence, mac, expected):
    d = Device("10.0.0.9", mac=mac, evidence=evidence)
    identify.identify(d)
    assert (d.vendor, d.model, d.firmware) == expected


def test_sip_agent_wins_over_mdns_for_firmware():
    d = Device(
        "10.0.0.9",
        evidence={
            "sip": {"agent": "Yealink SIP-T46S 66.86.0.20"},
            "mdns": {"txt.vendor": "Yealink", "txt.fw": "66.86.0.15", "txt.model": "SIP-T46S"},
        },
    )
    identify.identify(d)
    assert d.firmware == "66.86.0.20"
    assert d.identified_by == ["mdns.txt.vendor", "sip.agent"]


def test_nothing_known_stays_unidentified():
    d = Device("10.0.0.9", mac="02:00:00:00:00:01", evidence={"arp": {}})
    identify.identify(d)
    assert (d.vendor, d.model, d.firmware) == (None, None, None)
    assert not identify.is_phone_vendor(d)


def test_every_vendor_file_loads_with_the_contract_ids():
    ids = {v.id for v in identify.vendors()}
    assert ids == {"yealink", "cisco", "gigaset", "poly", "fanvil", "grandstream", "snom"}


def test_bad_vendor_file_is_a_clear_error():
    with pytest.raises(identify.FingerprintError, match=r"x\.toml"):
        identify.parse_vendor('id = "x"\nname = "X"\n[[match]]\nfield = "sip.agent"\n', "x.toml")
    with pytest.raises(identify.FingerprintError, match=r"x\.toml"):
        identify.parse_vendor('id = "x"\nname="X"\n[[match]]\nfield="a"\nregex="("\n', "x.toml")


@pytest.mark.parametrize(
    "agent, family",
    [
        ("Cisco/SPA504G-7.6.2c", "cisco"),
        ("Cisco/SPA112-1.4.1(SR5)", "linksys"),
        ("Cisco-CP8851/11.0.1", "unknown"),
        ("Gigaset C530 IP/42.245.00.000", "siemens"),
        ("Gigaset N510 IP PRO/42.250.00.000.000", "gigaset"),
        ("Yealink SIP-T46S 66.86.0.15", "yealink"),
        ("Asterisk PBX 20", "unknown"),
    ],
)
def test_control_panel_family(agent, family):
    d = Device("10.0.0.9", evidence={"sip": {"agent": agent}})
    identify.identify(d)
    assert identify.family(d) == family
