"""The fleet's SNMP v2c agent: one small read-only MIB per address, with pysnmp's codec.

``Mib`` holds one host's objects, sorted, for GET, GETNEXT and GETBULK; ``answer`` turns a
request datagram into the response datagram (None: say nothing, as net-snmp does for a wrong
community, another SNMP version or garbage). SET gets ``noAccess`` (a read-only community).
``host_mib`` builds what a host answers: the system group and one interface for everyone, the
LLDP-MIB for the switch (its neighbours' rows, management addresses and LLDP-MED inventory).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
NO_ACCESS = 6  # RFC 3416 error-status
TOO_BIG = 1
MAX_VARBINDS = 64  # in a request; more is ignored (net-snmp's own limit is higher)
MAX_ANSWER_VARBINDS = 200  # GETBULK repetitions are cut here
MAX_DATAGRAM = 65000

Oid = tuple[int, ...]
Value = Any  # a pysnmp value, or a callable giving one (sysUpTime)

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_TABLE = (1, 3, 6, 1, 2, 1, 2)
LLDP = (1, 0, 8802, 1, 1, 2, 1)
LLDP_LOC = (*LLDP, 3)
LLDP_REM = (*LLDP, 4, 1, 1)  # lldpRemTable entry
LLDP_MAN = (*LLDP, 4, 2, 1)  # lldpRemManAddrTable entry
LLDP_MED_INV = (*LLDP, 5, 4795, 1, 3, 3, 1)  # lldpXMedRemInventoryTable entry
CHASSIS_MAC = 4  # lldpChassisIdSubtype macAddress(4)
PORT_MAC = 3  # lldpPortIdSubtype macAddress(3)
PORT_LOCAL = 7  # lldpPortIdSubtype local(7)
CAP_BRIDGE_TELEPHONE = b"\x24"  # LldpSystemCapabilitiesMap: bridge(2), telephone(5)
CAP_OTHER = b"\x80"  # other(0): the printer
CAP_BRIDGE = b"\x20"  # bridge(2): the switch itself
IPV4 = 1  # IANA address family
IF_INDEX = 2  # lldpRemManAddrIfSubtype ifIndex(2)


def oid(text: str) -> Oid:
    """``".1.3.6"`` or ``"1.3.6"`` -> (1, 3, 6)."""
    return tuple(int(p) for p in text.strip(".").split("."))


def mac_bytes(mac: str) -> bytes:
    """``aa:bb:...`` -> 6 bytes."""
    return bytes.fromhex(mac.replace(":", ""))


class Mib:
    """One host's read-only objects, kept sorted for GETNEXT."""

    def __init__(self) -> None:
        self._values: dict[Oid, Value] = {}
        self._order: list[Oid] = []

    def set(self, key: Oid, value: Value) -> None:
        """Add or replace one object instance."""
        if key not in self._values:
            bisect.insort(self._order, key)
        self._values[key] = value

    def __len__(self) -> int:
        return len(self._order)

    def _value(self, key: Oid) -> Any:
        value = self._values[key]
        return value() if callable(value) else value

    def get(self, key: Oid) -> Any:
        """The instance's value, or v2c's noSuchInstance/noSuchObject."""
        if key in self._values:
            return self._value(key)
        at = bisect.bisect_left(self._order, key[:-1])
        if at < len(self._order) and self._order[at][: len(key) - 1] == key[:-1]:
            return V2C.NoSuchInstance("")
        return V2C.NoSuchObject("")

    def next(self, key: Oid) -> tuple[Oid, Any]:
        """The first instance after ``key`` (endOfMibView past the end)."""
        at = bisect.bisect_right(self._order, key)
        if at >= len(self._order):
            return key, V2C.EndOfMibView("")
        found = self._order[at]
        return found, self._value(found)

    def oids(self) -> list[Oid]:
        """Every instance, in order."""
        return list(self._order)


def answer(data: bytes, mib: Mib, community: str) -> bytes | None:
    """The response to one request datagram, or None."""
    try:
        if int(api.decodeMessageVersion(data)) != api.SNMP_VERSION_2C:
            return None
        request, _ = decoder.decode(data, asn1Spec=V2C.Message())
        if str(V2C.apiMessage.get_community(request)) != community:
            return None
        pdu = V2C.apiMessage.get_pdu(request)
        asked = [(tuple(o), v) for o, v in V2C.apiPDU.get_varbinds(pdu)]
        if len(asked) > MAX_VARBINDS:
            return None
        response = V2C.apiMessage.get_response(request)
        out = V2C.apiMessage.get_pdu(response)
        if pdu.isSameTypeWith(V2C.GetRequestPDU()):
            binds = [(o, mib.get(o)) for o, _ in asked]
        elif pdu.isSameTypeWith(V2C.GetNextRequestPDU()):
            binds = [mib.next(o) for o, _ in asked]
        elif pdu.isSameTypeWith(V2C.GetBulkRequestPDU()):
            binds = _bulk(mib, asked, pdu)
        elif pdu.isSameTypeWith(V2C.SetRequestPDU()):
            binds = asked
            V2C.apiPDU.set_error_status(out, NO_ACCESS)
            V2C.apiPDU.set_error_index(out, 1)
        else:  # a response, a trap, a report: not for an agent to answer
            return None
        V2C.apiPDU.set_varbinds(out, binds)
        encoded = encoder.encode(response)
        if len(encoded) > MAX_DATAGRAM:
            V2C.apiPDU.set_varbinds(out, [])
            V2C.apiPDU.set_error_status(out, TOO_BIG)
            encoded = encoder.encode(response)
        return encoded
    except Exception:  # garbage, a wrong type, a codec corner: a real agent stays silent
        return None


def _bulk(mib: Mib, asked: Sequence[tuple[Oid, Any]], pdu: Any) -> list[tuple[Oid, Any]]:
    """GETBULK (RFC 3416 §4.2.3): non-repeaters once, then the repeaters row by row."""
    non_rep = max(0, int(V2C.apiBulkPDU.get_non_repeaters(pdu)))
    max_rep = max(0, int(V2C.apiBulkPDU.get_max_repetitions(pdu)))
    binds = [mib.next(o) for o, _ in asked[:non_rep]]
    cursors = [o for o, _ in asked[non_rep:]]
    for _ in range(max_rep):
        if not cursors or len(binds) + len(cursors) > MAX_ANSWER_VARBINDS:
            break
        row = [mib.next(o) for o in cursors]
        binds += row
        if all(isinstance(v, type(V2C.EndOfMibView(""))) for _, v in row):
            break
        cursors = [o for o, _ in row]
    return binds


def _uptime(started: float) -> Callable[[], Any]:
    return lambda: V2C.TimeTicks(int((time.monotonic() - started) * 100) % (2**32))


def host_mib(
    host: dict[str, Any], neighbours: Sequence[dict[str, Any]] = (), started: float = 0.0
) -> Mib:
    """What ``host`` answers over SNMP: its system group, its one interface, extra OIDs, and
    for the switch the LLDP-MIB of ``neighbours`` (hosts with an ``lldp`` dict)."""
    snmp = host["snmp"]
    started = started or time.monotonic()
    mib = Mib()
    system = [
        V2C.OctetString(snmp["sys_descr"]),
        V2C.ObjectIdentifier(oid(snmp["sys_object_id"])),
        _uptime(started),
        V2C.OctetString(""),
        V2C.OctetString(snmp["sys_name"]),
        V2C.OctetString(""),
        V2C.Integer(72),
    ]
    for n, value in enumerate(system, start=1):
        mib.set((*SYSTEM, n, 0), value)
    mib.set((*IF_TABLE, 1, 0), V2C.Integer(1))  # ifNumber
    entry = (*IF_TABLE, 2, 1)
    for column, value in (
        (1, V2C.Integer(1)),
        (2, V2C.OctetString("eth0")),
        (3, V2C.Integer(6)),  # ethernetCsmacd
        (4, V2C.Integer(1500)),
        (6, V2C.OctetString(mac_bytes(host["mac"]))),
        (7, V2C.Integer(1)),
        (8, V2C.Integer(1)),
    ):
        mib.set((*entry, column, 1), value)
    for key, value in (snmp.get("extra") or {}).items():
        mib.set(oid(key), V2C.OctetString(str(value)))
    if host["kind"] == "switch":
        _lldp(mib, host, neighbours)
    return mib


def _lldp(mib: Mib, switch: dict[str, Any], neighbours: Sequence[dict[str, Any]]) -> None:
    """The switch's LLDP-MIB: local system and ports, and one remote row per neighbour
    (index lldpRemTimeMark.lldpRemLocalPortNum.lldpRemIndex = 0.<port>.1), its management
    address (lldpRemManAddrTable, index ...1.4.a.b.c.d) and LLDP-MED inventory."""
    snmp = switch["snmp"]
    mib.set((*LLDP_LOC, 1, 0), V2C.Integer(CHASSIS_MAC))
    mib.set((*LLDP_LOC, 2, 0), V2C.OctetString(mac_bytes(switch["mac"])))
    mib.set((*LLDP_LOC, 3, 0), V2C.OctetString(snmp["sys_name"]))
    mib.set((*LLDP_LOC, 4, 0), V2C.OctetString(snmp["sys_descr"]))
    mib.set((*LLDP_LOC, 5, 0), V2C.OctetString(CAP_BRIDGE))
    mib.set((*LLDP_LOC, 6, 0), V2C.OctetString(CAP_BRIDGE))
    for host in neighbours:
        lldp = host["lldp"]
        port = int(lldp["port"])
        mib.set((*LLDP_LOC, 7, 1, 2, port), V2C.Integer(PORT_LOCAL))  # lldpLocPortTable
        mib.set((*LLDP_LOC, 7, 1, 3, port), V2C.OctetString(str(port)))
        mib.set((*LLDP_LOC, 7, 1, 4, port), V2C.OctetString(f"{port}"))
        index = (0, port, 1)
        caps = CAP_BRIDGE_TELEPHONE if host["kind"] == "phone" else CAP_OTHER
        for column, value in (
            (4, V2C.Integer(CHASSIS_MAC)),
            (5, V2C.OctetString(mac_bytes(host["mac"]))),
            (6, V2C.Integer(PORT_MAC)),
            (7, V2C.OctetString(mac_bytes(host["mac"]))),
            (8, V2C.OctetString(lldp["port_desc"])),
            (9, V2C.OctetString(lldp["sys_name"])),
            (10, V2C.OctetString(lldp["sys_desc"])),
            (11, V2C.OctetString(caps)),
            (12, V2C.OctetString(caps)),
        ):
            mib.set((*LLDP_REM, column, *index), value)
        address = (IPV4, 4, *oid(host["ip"]))
        mib.set((*LLDP_MAN, 3, *index, *address), V2C.Integer(IF_INDEX))
        mib.set((*LLDP_MAN, 4, *index, *address), V2C.Integer(1))
        mib.set((*LLDP_MAN, 5, *index, *address), V2C.ObjectIdentifier((0, 0)))
        if host["kind"] == "phone":  # LLDP-MED inventory: firmware, maker, model
            for column, text in (
                (3, host["firmware"]),
                (5, host["vendor_name"]),
                (6, host["model"]),
            ):
                mib.set((*LLDP_MED_INV, column, *index), V2C.OctetString(text))
