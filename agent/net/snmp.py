"""SNMP GETs with pysnmp 7 (asyncio), one engine for many targets; imported lazily."""

from __future__ import annotations

from typing import Any

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"


class SnmpClient:
    """Thin wrapper: ``await client.get(ip, community, [oids])`` -> {oid: text} or None."""

    def __init__(self, timeout: float = 1.5, retries: int = 0) -> None:
        from pysnmp.hlapi.v3arch import asyncio as hl

        self._hl = hl
        self._engine = hl.SnmpEngine()
        self.timeout = timeout
        self.retries = retries

    async def get(
        self, ip: str, community: str, oids: list[str], port: int = 161
    ) -> dict[str, str] | None:
        hl = self._hl
        target = await hl.UdpTransportTarget.create(
            (ip, port), timeout=self.timeout, retries=self.retries
        )
        err_ind, err_stat, _idx, vbs = await hl.get_cmd(
            self._engine,
            hl.CommunityData(community, mpModel=1),
            target,
            hl.ContextData(),
            *(hl.ObjectType(hl.ObjectIdentity(o)) for o in oids),
        )
        if err_ind or err_stat:
            return None
        out: dict[str, str] = {}
        for oid, value in vbs:
            text = _text(value)
            if text is not None:
                out[str(oid)] = text
        return out

    def close(self) -> None:
        self._engine.close_dispatcher()


def _text(value: Any) -> str | None:
    name = type(value).__name__
    if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return None
    if name == "ObjectIdentifier":
        return "." + str(value).lstrip(".")
    if name == "OctetString":
        raw = bytes(value)
        try:
            return raw.decode("utf-8")[:512]
        except UnicodeDecodeError:
            return raw.hex(":")
    return value.prettyPrint()[:512]
