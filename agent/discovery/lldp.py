"""LLDP neighbours read from a switch over SNMP (IEEE 802.1AB LLDP-MIB): what is plugged
into each of its ports, as that device describes itself, without sending it a packet.

``lldpRemTable`` (index timeMark.localPort.remIndex) gives each neighbour's chassis and
port ids, system name and description and enabled capabilities; LLDP-MED's inventory
table (same index), what a phone says of its maker, model and software;
``lldpRemManAddrTable`` holds its management address in the index
(…remIndex.addrSubtype.length.a.b.c.d). A neighbour becomes ``Sighting("lldp", its
address, its MAC, {sysname, sysdesc, caps, mfg, model, software, via, port,
remote_port})`` when that address is in scope. Walks are bounded in rows and time.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any

from agent.model import Sighting
from agent.net.snmp import Auth, Pace, SnmpClient, printable

REM = "1.0.8802.1.1.2.1.4.1.1"  # lldpRemEntry (IEEE 802.1AB LLDP-MIB)
REM_COLUMNS = {
    "4": "chassis_subtype",
    "5": "chassis",
    "6": "port_subtype",
    "7": "port",
    "8": "port_desc",
    "9": "sysname",
    "10": "sysdesc",
    "12": "caps",  # lldpRemSysCapEnabled
}
MED = "1.0.8802.1.1.2.1.5.4795.1.3.3.1"  # lldpXMedRemInventoryEntry (LLDP-EXT-MED-MIB)
MED_COLUMNS = {"2": "firmware", "3": "software", "5": "mfg", "6": "model"}
MAN_ADDR = "1.0.8802.1.1.2.1.4.2.1.3"  # lldpRemManAddrIfSubtype: the address is the index
LOC_PORT = "1.0.8802.1.1.2.1.3.7.1"  # lldpLocPortEntry: .3 port id, .4 description
MAX_ROWS = 256  # neighbours read from one switch
MAX_ADDR_ROWS = 512  # management addresses read from one switch
MAX_PORTS = 512  # the switch's own ports (their names)
MAX_TEXT = 256
# LldpSystemCapabilitiesMap, bit 0 first (IEEE 802.1AB-2005 / 2009)
CAPABILITIES = (
    "other",
    "repeater",
    "bridge",
    "wlanAccessPoint",
    "router",
    "telephone",
    "docsisCableDevice",
    "stationOnly",
    "cVLAN",
    "sVLAN",
    "twoPortMACRelay",
)
MAC_ADDRESS, NETWORK_ADDRESS = 4, 5  # chassis id subtypes
PORT_MAC, PORT_NETWORK = 3, 4  # port id subtypes
IPV4 = 1  # IANA address family


async def neighbours(
    client: SnmpClient,
    switch: str,
    auth: Auth,
    in_scope: Callable[[str], bool],
    max_time: float,
    pace: Pace | None = None,
) -> list[Sighting]:
    """The in-scope neighbours ``switch`` has learnt by LLDP; [] when it has none or
    does not answer LLDP-MIB. ``max_time`` bounds each of the three walks."""
    columns = [f"{REM}.{c}" for c in REM_COLUMNS] + [f"{MED}.{c}" for c in MED_COLUMNS]
    try:
        rem = await client.walk(switch, auth, columns, MAX_ROWS, max_time, pace=pace)
        if not rem or not any(rem.values()):
            return []
        man = await client.walk(switch, auth, [MAN_ADDR], MAX_ADDR_ROWS, max_time, pace=pace)
        ports = [f"{LOC_PORT}.3", f"{LOC_PORT}.4"]
        loc = await client.walk(switch, auth, ports, MAX_PORTS, max_time, pace=pace)
    except Exception:  # a broken switch answer costs its neighbours, nothing else
        return []
    return parse(switch, rem, (man or {}).get(MAN_ADDR, {}), loc or {}, in_scope)


def parse(
    switch: str,
    rem: dict[str, dict[str, Any]],
    man: dict[str, Any],
    loc: dict[str, dict[str, Any]],
    in_scope: Callable[[str], bool],
) -> list[Sighting]:
    """Sightings from the walked tables (pure: every value may be of any type)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    columns = [(f"{REM}.{c}", n) for c, n in REM_COLUMNS.items()]
    columns += [(f"{MED}.{c}", f"med_{n}") for c, n in MED_COLUMNS.items()]
    for col, name in columns:
        for index, value in rem.get(col, {}).items():
            key = _rem_key(index)
            if key is not None and (key in rows or len(rows) < MAX_ROWS):
                rows.setdefault(key, {})[name] = value
    addresses: dict[tuple[str, str], list[str]] = {}
    for index in list(man)[:MAX_ADDR_ROWS]:
        found = _man_address(index)
        if found is not None:
            addresses.setdefault(found[0], []).append(found[1])
    sightings = []
    for key, row in rows.items():
        candidates = [*addresses.get(key, []), *_network_ids(row)]
        ip = next((a for a in candidates if in_scope(a)), None)
        if ip is None:
            continue
        attrs = {"via": switch, "port": _local_port(key[0], loc)}
        for name, column in (
            ("sysname", "sysname"),
            ("sysdesc", "sysdesc"),
            ("mfg", "med_mfg"),
            ("model", "med_model"),
            ("software", "med_software"),
            ("software", "med_firmware"),
        ):
            value = printable(row.get(column), MAX_TEXT)
            if value and name not in attrs:
                attrs[name] = value
        caps = capabilities(row.get("caps"))
        if caps:
            attrs["caps"] = ",".join(caps)
        remote_port = _port_text(row)
        if remote_port:
            attrs["remote_port"] = remote_port
        sightings.append(Sighting("lldp", ip, mac=_mac(row), attrs=attrs))
    return sightings


def capabilities(value: Any) -> list[str]:
    """The names of the bits set in an LLDP capabilities BITS value."""
    if not isinstance(value, bytes):
        return []
    bits = value[:2]
    return [
        name
        for i, name in enumerate(CAPABILITIES)
        if i < 8 * len(bits) and bits[i // 8] & (0x80 >> (i % 8))
    ]


def _rem_key(index: str) -> tuple[str, str] | None:
    """(local port, remote index) of a lldpRemTable index; the time mark is ignored."""
    parts = index.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return parts[1], parts[2]


def _man_address(index: str) -> tuple[tuple[str, str], str] | None:
    """((local port, remote index), IPv4) of a lldpRemManAddrTable index. The address is
    length-prefixed (``1.4.a.b.c.d``); some agents leave the length out (``1.a.b.c.d``)."""
    parts = index.split(".")
    if len(parts) < 8 or not all(p.isdigit() for p in parts):
        return None
    key, family, addr = (parts[1], parts[2]), int(parts[3]), [int(p) for p in parts[4:]]
    if family != IPV4:
        return None
    if len(addr) == 5 and addr[0] == 4:
        addr = addr[1:]
    if len(addr) != 4 or not all(0 <= b <= 255 for b in addr):
        return None
    return key, ".".join(map(str, addr))


def _network_ids(row: dict[str, Any]) -> list[str]:
    """IPv4 addresses given as a chassis or port id (subtype networkAddress)."""
    out = []
    for sub, val, wanted in (
        ("chassis_subtype", "chassis", NETWORK_ADDRESS),
        ("port_subtype", "port", PORT_NETWORK),
    ):
        value = row.get(val)
        if row.get(sub) == wanted and isinstance(value, bytes) and value[:1] == bytes([IPV4]):
            with contextlib.suppress(ValueError):
                out.append(str(ipaddress.IPv4Address(value[1:])))
    return out


def _mac(row: dict[str, Any]) -> str | None:
    """The neighbour's MAC: a chassis id of subtype macAddress, else such a port id."""
    for sub, val, wanted in (
        ("chassis_subtype", "chassis", MAC_ADDRESS),
        ("port_subtype", "port", PORT_MAC),
    ):
        value = row.get(val)
        if (
            row.get(sub) == wanted
            and isinstance(value, bytes)
            and len(value) == 6
            and value != b"\x00" * 6  # not empty
            and not value[0] & 1  # not multicast
        ):
            return value.hex(":")
    return None


def _port_text(row: dict[str, Any]) -> str | None:
    """The neighbour's own name for its port: its description, else its port id."""
    described = printable(row.get("port_desc"), 64)
    if described:
        return described
    value = row.get("port")
    if row.get("port_subtype") == PORT_MAC and isinstance(value, bytes) and len(value) == 6:
        return value.hex(":")
    return printable(value, 64)


def _local_port(port: str, loc: dict[str, dict[str, Any]]) -> str:
    """The switch's own name for its port (description, else id), else its number."""
    for col in ("4", "3"):
        name = printable(loc.get(f"{LOC_PORT}.{col}", {}).get(port), 64)
        if name:
            return name
    return port
