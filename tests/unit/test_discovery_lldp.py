"""LLDP neighbours read from a switch's LLDP-MIB over SNMP: against a real SNMP agent on
127.0.0.6 (snmpagent.py) whose tables hold what LibreNMS's switch recordings show phones
advertise (phone-landscape.md §2.3), and against garbage of every kind."""

from __future__ import annotations

import ipaddress

import pytest

from agent import identify, pipeline
from agent.config import Config
from agent.discovery import Context, lldp, snmp
from agent.scope import ScopedNetwork
from tests.unit import snmpagent
from tests.unit.snmpagent import Agent, integer, octets, oid

REM, MAN, LOC, MED = lldp.REM, lldp.MAN_ADDR, lldp.LOC_PORT, lldp.MED
SWITCH = "127.0.0.6"
BRIDGE_TELEPHONE, TELEPHONE, BRIDGE_ROUTER = b"\x24\x00", b"\x04\x00", b"\x28\x00"
NET = ScopedNetwork(ipaddress.ip_network("127.0.0.0/28"), "lo", "127.0.0.1")


def in_scope(ip: str) -> bool:
    return ipaddress.ip_address(ip) in NET.network


def neighbour(local_port: int, rem: int, **cols) -> dict:
    """lldpRemTable cells of one neighbour (time mark 0)."""
    names = {v: k for k, v in lldp.REM_COLUMNS.items()}
    return {f"{REM}.{names[k]}.0.{local_port}.{rem}": v for k, v in cols.items()}


def med(local_port: int, rem: int, **cols) -> dict:
    """LLDP-MED inventory cells of one neighbour."""
    names = {v: k for k, v in lldp.MED_COLUMNS.items()}
    return {f"{MED}.{names[k]}.0.{local_port}.{rem}": octets(v) for k, v in cols.items()}


def switch_rows() -> dict:
    rows = {
        "1.3.6.1.2.1.1.1.0": octets("ProCurve J9085A Switch 2610-24, revision R.11.25"),
        "1.3.6.1.2.1.1.2.0": oid(".1.3.6.1.4.1.11.2.3.7.11.80"),
        f"{LOC}.3.1": octets("1"),
        f"{LOC}.4.1": octets("Desk 12"),
        f"{LOC}.3.2": octets("2"),
    }
    # A Polycom whose chassis id is its address (no management address row)
    rows |= neighbour(
        1,
        1,
        chassis_subtype=integer(5),
        chassis=octets(bytes([1, 127, 0, 0, 10])),
        port_subtype=integer(3),
        port=octets(bytes.fromhex("0004f2112233")),
        sysname=octets("SSIP7000"),
        sysdesc=octets("Polycom;SoundStationIP-SSIP_7000;3111-40000-001,1;SIP/3.3.3.0069/02"),
        caps=octets(BRIDGE_TELEPHONE),
    )
    # A Grandstream with a MAC chassis id and a management address
    rows |= neighbour(
        2,
        2,
        chassis_subtype=integer(4),
        chassis=octets(bytes.fromhex("000b82f61e68")),
        port_subtype=integer(5),
        port=octets("WAN"),
        sysname=octets("GXP1625_00:0b:82:f6:1e:68"),
        sysdesc=octets("GXP1625 1.0.4.128"),
        caps=octets(TELEPHONE),
    )
    rows[f"{MAN}.0.2.2.1.4.127.0.0.11"] = integer(2)
    rows |= med(2, 2, mfg="Grandstream", model="GXP1625", software="1.0.4.128")
    # A Poly VVX whose sysDesc is its User-Agent, with an LLDP-MED inventory
    rows |= neighbour(
        4,
        7,
        chassis_subtype=integer(4),
        chassis=octets(bytes.fromhex("64167f010203")),
        sysdesc=octets("PolycomVVX-VVX_450-UA/6.4.3.5156"),
        port_desc=octets("eth0"),
        caps=octets(BRIDGE_TELEPHONE),
    )
    rows |= med(4, 7, mfg="Polycom", model="VVX 450", software="6.4.3.5156")
    rows[f"{MAN}.0.4.7.1.4.127.0.0.14"] = integer(2)
    # A Cisco phone; its management address index lacks the length (a buggy agent)
    rows |= neighbour(
        3,
        3,
        chassis_subtype=integer(7),
        chassis=octets("SEP001122334455"),
        sysdesc=octets("Cisco IP Phone 7941G,V, SCCP41.9-2-1S"),
    )
    rows[f"{MAN}.0.3.3.1.127.0.0.12"] = integer(2)
    # Another switch on the uplink
    rows |= neighbour(
        24,
        4,
        chassis_subtype=integer(4),
        chassis=octets(bytes.fromhex("001b54000001")),
        sysdesc=octets("Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M)"),
        caps=octets(BRIDGE_ROUTER),
    )
    rows[f"{MAN}.0.24.4.1.4.127.0.0.13"] = integer(2)
    # A phone whose address is out of scope: dropped
    rows |= neighbour(5, 5, sysdesc=octets("Yealink SIP-T46S 66.86.0.15"))
    rows[f"{MAN}.0.5.5.1.4.10.9.9.9"] = integer(2)
    # Garbage: wrong types, an IPv6 management address, a malformed index
    rows |= neighbour(6, 6, chassis_subtype=octets("four"), sysdesc=integer(7))
    rows[f"{MAN}.0.6.6.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1"] = integer(2)
    rows[f"{REM}.10.0.7"] = octets("two-part index")
    return rows


@pytest.fixture
async def switch():
    agent = Agent(SWITCH, switch_rows())
    yield agent
    agent.close()


async def test_neighbours_through_the_switch_are_identified(switch):
    cfg = Config(sweep_timeout=0.4, mdns_window=2.0, snmp_communities=[snmpagent.COMMUNITY])
    sightings = await snmp.discover(Context(cfg, [NET]))
    assert switch.walked(REM)  # not a phone: its LLDP table was read
    neighbours = {s.ip: s for s in sightings if s.method == "lldp"}
    assert set(neighbours) == {f"127.0.0.{i}" for i in range(10, 15)}
    poly = neighbours["127.0.0.10"]
    assert poly.mac == "00:04:f2:11:22:33"  # from the port id (the chassis id is an address)
    assert poly.attrs["via"] == SWITCH and poly.attrs["port"] == "Desk 12"
    assert poly.attrs["caps"] == "bridge,telephone"
    assert neighbours["127.0.0.11"].mac == "00:0b:82:f6:1e:68"
    assert neighbours["127.0.0.11"].attrs["remote_port"] == "WAN"
    assert neighbours["127.0.0.11"].attrs["mfg"] == "Grandstream"
    assert neighbours["127.0.0.14"].attrs["remote_port"] == "eth0"
    assert neighbours["127.0.0.12"].attrs["port"] == "3"  # the switch names no such port

    devices = {d.ip: d for d in pipeline.merge(sightings)}
    for d in devices.values():
        identify.identify(d)
    got = {ip: (d.vendor, d.model, d.firmware) for ip, d in devices.items()}
    assert got["127.0.0.10"] == ("poly", "SSIP_7000", "3.3.3.0069")
    assert got["127.0.0.11"] == ("grandstream", "GXP1625", "1.0.4.128")
    assert got["127.0.0.12"] == ("cisco", "7941G", "SCCP41.9-2-1S")
    assert got["127.0.0.14"] == ("poly", "VVX_450", "6.4.3.5156")
    assert identify.is_phone(devices["127.0.0.10"])
    for not_phone in ("127.0.0.13", SWITCH):  # the switches themselves
        assert got[not_phone] == (None, None, None)
        assert devices[not_phone].identified_by[0].startswith("not-phone:network")
        assert not identify.is_phone(devices[not_phone])


async def test_a_huge_neighbour_table_is_read_up_to_the_bound():
    rows = {"1.3.6.1.2.1.1.1.0": octets("Linux switch")}
    for i in range(1, 1200):
        rows |= neighbour(i % 48 + 1, i, sysdesc=octets("x" * 300))
        rows[f"{MAN}.0.{i % 48 + 1}.{i}.1.4.127.0.0.{i % 14 + 1}"] = integer(2)
    agent = Agent(SWITCH, rows)
    client = snmp.SnmpClient(timeout=0.5)
    try:
        found = await lldp.neighbours(client, SWITCH, snmpagent.COMMUNITY, in_scope, 10.0)
    finally:
        client.close()
        agent.close()
    assert 0 < len(found) <= lldp.MAX_ROWS
    assert all(len(s.attrs["sysdesc"]) <= lldp.MAX_TEXT for s in found)


async def test_a_switch_without_lldp_mib_gives_nothing():
    agent = Agent(SWITCH, {"1.3.6.1.2.1.1.1.0": octets("HP ETHERNET MULTI-ENVIRONMENT")})
    client = snmp.SnmpClient(timeout=0.4)
    try:
        assert await lldp.neighbours(client, SWITCH, snmpagent.COMMUNITY, lambda ip: True, 2) == []
        # nobody answering at all
        assert await lldp.neighbours(client, "127.0.0.9", "x", lambda ip: True, 2) == []
    finally:
        client.close()
        agent.close()


@pytest.mark.parametrize(
    "rem, man",
    [
        ({}, {}),
        ({f"{REM}.9": {"not.an.index.at.all": b"x", "a.b.c": b"y"}}, {"1.2": 1, "x": 2}),
        ({f"{REM}.9": {"0.1.1": None}}, {"0.1.1.1.4.300.0.0.1": 2}),  # 300 is no byte
        ({f"{REM}.6": {"0.1.1": 12345}, f"{REM}.5": {"0.1.1": 4}}, {"0.1.1.1.4.8.8.8.8": 2}),
        ({f"{REM}.12": {"0.1.1": "bits as text"}}, {"0.1.1.1.4.127.0.0.99": 2}),  # out of scope
    ],
)
def test_parse_garbage_gives_no_sighting(rem, man):
    assert lldp.parse(SWITCH, rem, man, {}, in_scope) == []


def test_parse_odd_but_usable_rows():
    rem = {
        f"{REM}.5": {"0.1.1": 4, "0.2.1": 4},
        f"{REM}.6": {"0.1.1": bytes.fromhex("010000000000"), "0.2.1": b"\x00" * 6},  # multicast
        f"{REM}.10": {"0.1.1": b"\xff\xfe", "0.2.1": "Fanvil X4U 2.4.2"},
        f"{REM}.12": {"0.1.1": b"\x04", "0.2.1": b"\xff\xff\xff\xff"},
    }
    man = {"0.1.1.1.4.127.0.0.2": 2, "0.2.1.1.4.127.0.0.3": 2}
    loc = {f"{LOC}.4": {"1": 12}, f"{LOC}.3": {"1": b"ge-0/0/1"}}
    got = {s.ip: s for s in lldp.parse(SWITCH, rem, man, loc, in_scope)}
    assert got["127.0.0.2"].mac is None and "sysdesc" not in got["127.0.0.2"].attrs
    assert got["127.0.0.2"].attrs["caps"] == "telephone"
    assert got["127.0.0.2"].attrs["port"] == "ge-0/0/1"
    assert got["127.0.0.3"].mac is None
    assert got["127.0.0.3"].attrs["sysdesc"] == "Fanvil X4U 2.4.2"
    assert got["127.0.0.3"].attrs["caps"].split(",") == list(lldp.CAPABILITIES)


@pytest.mark.parametrize(
    "bits, names",
    [
        (b"\x24\x00", ["bridge", "telephone"]),
        (b"\x08", ["router"]),
        (b"", []),
        (None, []),
        (7, []),
        (b"\x00\x20", ["twoPortMACRelay"]),
    ],
)
def test_capabilities(bits, names):
    assert lldp.capabilities(bits) == names
