"""A real SNMP agent for the tests: pysnmp's own command responder (v2c and v3 USM) on a
loopback address, answering from a table of {OID: value} through a custom
instrumentation controller. Every test that starts one runs under ``unshare -n``.

``refuse_walks`` drops GETNEXT/GETBULK unanswered, as Snom's agent does ("GET-NEXT not
supported", phone-landscape.md §2.3); ``loop_at`` makes GETNEXT answer an OID that does
not advance (a broken agent); ``asked`` records every OID each request named.
"""

from __future__ import annotations

import bisect
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi import instrum

COMMUNITY = "s3cret-community"
V3_USER, V3_AUTH, V3_PRIV = "ops", "auth-secret-1", "priv-secret-1"


def octets(value: str | bytes) -> rfc1902.OctetString:
    return rfc1902.OctetString(value)


def oid(value: str) -> rfc1902.ObjectIdentifier:
    return rfc1902.ObjectIdentifier(value.strip("."))


def integer(value: int) -> rfc1902.Integer32:
    return rfc1902.Integer32(value)


def load_snmprec(text: str) -> dict[str, Any]:
    """{OID: value} from snmpsim's ``OID|TAG|VALUE`` lines (tags 2, 4, 4x, 6, 64, 66, 67)."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, tag, value = line.split("|", 2)
        if tag == "4x":
            out[name] = octets(bytes.fromhex(value))
        elif tag == "4":
            out[name] = octets(value)
        elif tag == "6":
            out[name] = oid(value)
        elif tag == "64":
            out[name] = rfc1902.IpAddress(value)
        elif tag in ("2", "66", "67"):
            out[name] = {"2": integer, "66": rfc1902.Gauge32, "67": rfc1902.TimeTicks}[tag](
                int(value)
            )
    return out


class _Table(instrum.AbstractMibInstrumController):
    def __init__(self, rows: dict[str, Any], asked: list[tuple[str, tuple[str, ...]]]) -> None:
        pairs = sorted((rfc1902.ObjectName(k.strip(".")), v) for k, v in rows.items())
        self.keys = [k for k, _ in pairs]
        self.values = [v for _, v in pairs]
        self.asked = asked
        self.loop_at: str | None = None

    def read_variables(self, *var_binds: Any, **ctx: Any) -> list[Any]:
        self.asked.append(("get", tuple(str(o) for o, _ in var_binds)))
        out = []
        for name, _ in var_binds:
            i = bisect.bisect_left(self.keys, name)
            found = i < len(self.keys) and self.keys[i] == name
            out.append((name, self.values[i] if found else rfc1905.noSuchObject))
        return out

    def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[Any]:
        self.asked.append(("next", tuple(str(o) for o, _ in var_binds)))
        out = []
        for name, _ in var_binds:
            if self.loop_at and str(name).startswith(self.loop_at):
                out.append((rfc1902.ObjectName(self.loop_at + ".1"), octets("again")))
                continue
            i = bisect.bisect_right(self.keys, name)
            if i < len(self.keys):
                out.append((self.keys[i], self.values[i]))
            else:
                out.append((name, rfc1905.endOfMibView))
        return out


class Agent:
    """``Agent("127.0.0.2", rows)``; ``close()`` when done."""

    def __init__(
        self,
        ip: str,
        rows: dict[str, Any],
        *,
        community: str | None = COMMUNITY,
        v3: bool = False,
        refuse_walks: bool = False,
        loop_at: str | None = None,
        port: int = 161,
    ) -> None:
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self.engine = engine.SnmpEngine()
        config.add_transport(
            self.engine, udp.DOMAIN_NAME, udp.UdpTransport().open_server_mode((ip, port))
        )
        if community is not None:
            config.add_v1_system(self.engine, "area", community)
        if v3:
            config.add_v3_user(
                self.engine,
                V3_USER,
                config.USM_AUTH_HMAC96_SHA,
                V3_AUTH,
                config.USM_PRIV_CFB128_AES,
                V3_PRIV,
            )
        ctx = context.SnmpContext(self.engine)
        ctx.unregister_context_name(b"")
        self.table = _Table(rows, self.asked)
        self.table.loop_at = loop_at
        ctx.register_context_name(b"", self.table)
        cmdrsp.GetCommandResponder(self.engine, ctx)
        if not refuse_walks:
            cmdrsp.NextCommandResponder(self.engine, ctx)
            cmdrsp.BulkCommandResponder(self.engine, ctx)

    def walked(self, prefix: str) -> bool:
        """Whether any GETNEXT/GETBULK named an OID under ``prefix``."""
        return any(
            kind == "next" and any(o.startswith(prefix) for o in oids) for kind, oids in self.asked
        )

    def close(self) -> None:
        self.engine.close_dispatcher()
