"""SNMP with pysnmp 7 (asyncio): GETs and bounded table walks for many targets from one
engine, with a v2c community or a v3 user; pysnmp itself is imported lazily.

Values come back raw (``lookupMib=False``: no MIB is loaded or fetched, an OID stays
numeric) and are made plain Python: ``bytes`` (cut at :data:`MAX_VALUE`), ``int``, an OID
as ``".1.3..."``, ``None`` for noSuchObject/noSuchInstance/endOfMibView. A device that
answers a value of the wrong type or an absurd length costs nothing but that value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

MAX_VALUE = 512  # bytes kept of one value
MAX_REPETITIONS = 10  # rows asked per GETBULK
MAX_VARBINDS = 48  # values asked per GETBULK, all columns together (a modest answer)

# Configuration names -> pysnmp's USM protocol constants (looked up lazily).
AUTH_PROTOCOLS = {
    "MD5": "USM_AUTH_HMAC96_MD5",
    "SHA": "USM_AUTH_HMAC96_SHA",
    "SHA224": "USM_AUTH_HMAC128_SHA224",
    "SHA256": "USM_AUTH_HMAC192_SHA256",
    "SHA384": "USM_AUTH_HMAC256_SHA384",
    "SHA512": "USM_AUTH_HMAC384_SHA512",
}
PRIV_PROTOCOLS = {
    "DES": "USM_PRIV_CBC56_DES",
    "3DES": "USM_PRIV_CBC168_3DES",
    "AES": "USM_PRIV_CFB128_AES",
    "AES128": "USM_PRIV_CFB128_AES",
    "AES192": "USM_PRIV_CFB192_AES",
    "AES256": "USM_PRIV_CFB256_AES",
}


@dataclass(frozen=True)
class V3User:
    """An SNMPv3 USM user; the keys are secrets (never printed)."""

    user: str
    auth_key: str | None = field(default=None, repr=False)
    priv_key: str | None = field(default=None, repr=False)
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"


Auth = str | V3User  # a v2c community (a secret too) or a v3 user
Pace = Callable[[], Awaitable[None]]  # awaited before each request (the shared rate limit)


class SnmpClient:
    """``await client.get(ip, auth, [oids])`` -> {oid: text} or None;
    ``await client.walk(ip, auth, [columns], ...)`` -> {column: {index: value}} or None."""

    def __init__(self, timeout: float = 1.5, retries: int = 0) -> None:
        from pysnmp.hlapi.v3arch import asyncio as hl

        self._hl = hl
        self._engine = hl.SnmpEngine()
        self.timeout = timeout
        self.retries = retries

    async def get(
        self, ip: str, auth: Auth, oids: list[str], port: int = 161
    ) -> dict[str, str] | None:
        """The values of ``oids`` as text (absent ones left out); None when no answer."""
        values = await self.get_values(ip, auth, oids, port)
        if values is None:
            return None
        return {oid: text(v) for oid, v in values.items() if v is not None}

    async def get_values(
        self, ip: str, auth: Auth, oids: list[str], port: int = 161
    ) -> dict[str, Any] | None:
        """The raw values of ``oids`` (None for an absent one); None when no answer."""
        hl = self._hl
        target = await self._target(ip, port)
        err_ind, err_stat, _idx, vbs = await hl.get_cmd(
            self._engine,
            self._auth(auth),
            target,
            hl.ContextData(),
            *(hl.ObjectType(hl.ObjectIdentity(o)) for o in oids),
            lookupMib=False,
        )
        if err_ind or err_stat:
            return None
        return {str(oid): value_of(v) for oid, v in vbs}

    async def walk(
        self,
        ip: str,
        auth: Auth,
        columns: list[str],
        max_rows: int = 256,
        max_time: float = 5.0,
        port: int = 161,
        pace: Pace | None = None,
    ) -> dict[str, dict[str, Any]] | None:
        """Walk the table ``columns`` side by side with GETBULK, each until it leaves its
        subtree, stops advancing, reaches ``max_rows`` entries, or ``max_time`` runs out.
        Returns {column: {index: value}} (what was read so far on a later failure), or
        None when the first request got no usable answer (no GETBULK, no answer)."""
        hl = self._hl
        cursors = {c.strip("."): _oid_tuple(c) for c in columns}
        out: dict[str, dict[str, Any]] = {c: {} for c in cursors}
        target = await self._target(ip, port)
        first = True
        end = time.monotonic() + max_time
        try:
            async with asyncio.timeout(max_time):
                while cursors and time.monotonic() < end:
                    active = list(cursors)
                    left = max_rows - max(len(out[c]) for c in active)
                    if left <= 0:
                        break
                    if pace is not None:
                        await pace()
                    err_ind, err_stat, _idx, vbs = await hl.bulk_cmd(
                        self._engine,
                        self._auth(auth),
                        target,
                        hl.ContextData(),
                        0,
                        max(1, min(MAX_REPETITIONS, MAX_VARBINDS // len(active), left)),
                        *(hl.ObjectType(hl.ObjectIdentity(cursors[c])) for c in active),
                        lookupMib=False,
                    )
                    if err_ind or err_stat:
                        return None if first else out
                    first = False
                    advanced, done = _take(active, vbs, cursors, out, max_rows)
                    for c in done:
                        cursors.pop(c, None)
                    if not advanced:  # nothing new at all: the agent is stuck
                        break
        except TimeoutError:
            pass
        return None if first else out

    def close(self) -> None:
        self._engine.close_dispatcher()

    async def _target(self, ip: str, port: int) -> Any:
        return await self._hl.UdpTransportTarget.create(
            (ip, port), timeout=self.timeout, retries=self.retries
        )

    def _auth(self, auth: Auth) -> Any:
        hl = self._hl
        if isinstance(auth, V3User):
            return hl.UsmUserData(
                auth.user,
                authKey=auth.auth_key,
                privKey=auth.priv_key,
                authProtocol=getattr(hl, AUTH_PROTOCOLS[auth.auth_protocol])
                if auth.auth_key
                else None,
                privProtocol=getattr(hl, PRIV_PROTOCOLS[auth.priv_protocol])
                if auth.priv_key
                else None,
            )
        return hl.CommunityData(auth, mpModel=1)


def _take(
    active: list[str],
    vbs: Any,
    cursors: dict[str, tuple[int, ...]],
    out: dict[str, dict[str, Any]],
    max_rows: int,
) -> tuple[set[str], set[str]]:
    """File one GETBULK answer's var-binds (column by column, repetition after
    repetition) under their columns; (the columns that advanced, the ones that ended)."""
    advanced: set[str] = set()
    done: set[str] = set()
    prefix = {c: _oid_tuple(c) for c in active}
    for i, (name, value) in enumerate(vbs):
        col = active[i % len(active)]
        if col in done:
            continue
        oid = tuple(name)
        base = prefix[col]
        if (
            oid[: len(base)] != base
            or len(oid) == len(base)
            or oid <= cursors[col]  # an agent going backwards or in circles
            or type(value).__name__ == "EndOfMibView"
            or len(out[col]) >= max_rows
        ):
            done.add(col)
            continue
        out[col][".".join(map(str, oid[len(base) :]))] = value_of(value)
        cursors[col] = oid
        advanced.add(col)
    return advanced, done


def _oid_tuple(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.strip(".").split("."))


def value_of(value: Any) -> Any:
    """A pysnmp value as plain Python (see the module docstring)."""
    from pyasn1.type import univ

    try:
        if isinstance(value, univ.ObjectIdentifier):
            return "." + str(value).lstrip(".")
        if type(value).__name__ == "IpAddress":
            return ".".join(str(b) for b in bytes(value)[:4])
        if isinstance(value, univ.OctetString):  # also Opaque and BITS
            return bytes(value)[:MAX_VALUE]
        if isinstance(value, univ.Integer):  # also Counter, Gauge, TimeTicks, Unsigned
            return int(value)
    except Exception:  # decoded but cannot be rendered: ignore it
        return None
    return None  # noSuchObject, noSuchInstance, endOfMibView, Null, anything else


def text(value: Any) -> str:
    """A value as text: readable UTF-8 as is, other bytes as hex (``00:15:65:...``)."""
    if isinstance(value, bytes):
        decoded = _decode(value)
        return value.hex(":") if decoded is None else decoded
    return str(value)[:MAX_VALUE]


def printable(value: Any, limit: int = 256) -> str | None:
    """Text a person can read, or None (empty, binary, a number, absent)."""
    if isinstance(value, bytes):
        decoded = _decode(value)
    elif isinstance(value, str):
        decoded = value.strip()
    else:
        decoded = None
    return decoded[:limit] if decoded else None


def _decode(raw: bytes) -> str | None:
    """UTF-8 without control characters (a trailing NUL tolerated), else None."""
    try:
        s = raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not all(c.isprintable() or c in "\t\r\n" for c in s):
        return None
    return s.strip()
