"""SNMP: GETs and bounded table walks for many targets at once, with a v2c community
(this module's own small BER codec) or a v3 user (pysnmp 7, imported only then).

Why a codec of its own for v2c: pysnmp's high-level API spends about 5 ms of CPU on each
request (it writes every target into its SNMP-TARGET-MIB configuration first), 1.4 s for
a /24, and its engine takes 0.25 s to import and build: that was most of a sweep's time.
A v2c GET or GETBULK is a few nested TLVs; encoding ours is trivial, and decoding an
answer (untrusted) is done by :func:`decode_response`, strictly bounded, never raising.

Values come back as plain Python, no MIB ever loaded (an OID stays numeric): ``bytes``
(cut at :data:`MAX_VALUE`), ``int``, an OID as ``".1.3..."``, an IpAddress as dotted
text, ``None`` for noSuchObject/noSuchInstance/endOfMibView. A device that answers a value
of the wrong type or an absurd length costs nothing but that value.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.net import udp

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

MAX_VALUE = 512  # bytes kept of one value
MAX_REPETITIONS = 10  # rows asked per GETBULK
MAX_VARBINDS = 48  # values asked per GETBULK, all columns together (a modest answer)
MAX_ANSWER_VARBINDS = 512  # var-binds read from one answer at most
MAX_OID = 128  # sub-identifiers of one OID at most (SNMP's own limit)

# BER / SNMP tags (RFC 3416, RFC 2578)
INTEGER, OCTET_STRING, NULL, OBJECT_ID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, OPAQUE = 0x40, 0x44
UNSIGNED = {0x41, 0x42, 0x43, 0x46, 0x47}  # Counter32, Gauge32, TimeTicks, Counter64, UInt32
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
GET_REQUEST, RESPONSE, GET_BULK_REQUEST = 0xA0, 0xA2, 0xA5
V2C = 1  # msgVersion of SNMPv2c


class _EndOfMib:
    def __repr__(self) -> str:
        return "END_OF_MIB"


END_OF_MIB = _EndOfMib()  # endOfMibView in a walk's answer (a GET's value is None instead)

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
    ``await client.walk(ip, auth, [columns], ...)`` -> {column: {index: value}} or None.

    v2c goes through this module's own codec (:func:`encode_request`, :func:`decode_response`)
    on sockets sized for ``probes`` requests parked at once (:mod:`agent.net.udp`): a sweep
    costs a few microseconds per request, and GETs to absent hosts never hold up the
    others. v3 (USM) goes through pysnmp's engine, created at the first v3 request, on a
    socket sized the same way. ``timeout`` is per request, ``retries`` the resends after it.
    """

    def __init__(
        self, timeout: float = 1.5, retries: int = 0, *, probes: int = 0, local_ip: str = ""
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self._probes = max(1, probes)
        self._local_ip = local_ip or "0.0.0.0"
        self._v2c: _V2cClient | None = None
        self._hl: Any = None
        self._engine: Any = None

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
        if isinstance(auth, V3User):
            return await self._v3_get(ip, auth, oids, port)
        names = [_oid_tuple(o) for o in oids]
        answer = await self._v2c_client().request(
            ip, port, auth, GET_REQUEST, names, 0, self.timeout, self.retries
        )
        if answer is None or answer.error_status:
            return None
        return {_dotted(name): _plain(value) for name, value in answer.varbinds}

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
        cursors = {c.strip("."): _oid_tuple(c) for c in columns}
        out: dict[str, dict[str, Any]] = {c: {} for c in cursors}
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
                    reps = max(1, min(MAX_REPETITIONS, MAX_VARBINDS // len(active), left))
                    vbs = await self._bulk(ip, port, auth, [cursors[c] for c in active], reps)
                    if vbs is None:
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

    async def open(self) -> None:
        """Open the v2c sockets now (else at the first request): a failure is then the
        caller's error, not every request's silent None."""
        await self._v2c_client().open()

    def close(self) -> None:
        if self._v2c is not None:
            self._v2c.close()
        if self._engine is not None:
            self._engine.close_dispatcher()

    # -- v2c -------------------------------------------------------------------------------

    def _v2c_client(self) -> _V2cClient:
        if self._v2c is None:
            self._v2c = _V2cClient(self._local_ip, self._probes)
        return self._v2c

    async def _bulk(
        self, ip: str, port: int, auth: Auth, oids: list[tuple[int, ...]], reps: int
    ) -> list[tuple[tuple[int, ...], Any]] | None:
        """One GETBULK: its (name, value) pairs (:data:`END_OF_MIB` for endOfMibView), or
        None when it got no usable answer."""
        if isinstance(auth, V3User):
            return await self._v3_bulk(ip, auth, oids, reps, port)
        answer = await self._v2c_client().request(
            ip, port, auth, GET_BULK_REQUEST, oids, reps, self.timeout, self.retries
        )
        if answer is None or answer.error_status:
            return None
        return answer.varbinds

    # -- v3 (pysnmp) -----------------------------------------------------------------------

    def _pysnmp(self) -> Any:
        if self._engine is None:
            from pysnmp.carrier.asyncio.dgram import udp as snmp_udp
            from pysnmp.entity import config as snmp_config
            from pysnmp.hlapi.v3arch import asyncio as hl

            self._hl = hl
            self._engine = hl.SnmpEngine()
            # pysnmp's own socket would keep the default send buffer: see agent.net.udp.
            sock = udp.open_socket(self._local_ip, udp.wanted_buffer(2 * self._probes))[0]
            transport = snmp_udp.UdpAsyncioTransport().open_server_mode(sock=sock)
            snmp_config.add_transport(self._engine, snmp_udp.DOMAIN_NAME, transport)
        return self._hl

    async def _v3_get(
        self, ip: str, auth: V3User, oids: list[str], port: int
    ) -> dict[str, Any] | None:
        hl = self._pysnmp()
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

    async def _v3_bulk(
        self, ip: str, auth: V3User, oids: list[tuple[int, ...]], reps: int, port: int
    ) -> list[tuple[tuple[int, ...], Any]] | None:
        hl = self._pysnmp()
        target = await self._target(ip, port)
        err_ind, err_stat, _idx, vbs = await hl.bulk_cmd(
            self._engine,
            self._auth(auth),
            target,
            hl.ContextData(),
            0,
            reps,
            *(hl.ObjectType(hl.ObjectIdentity(o)) for o in oids),
            lookupMib=False,
        )
        if err_ind or err_stat:
            return None
        return [
            (tuple(name), END_OF_MIB if type(v).__name__ == "EndOfMibView" else value_of(v))
            for name, v in vbs
        ]

    async def _target(self, ip: str, port: int) -> Any:
        return await self._hl.UdpTransportTarget.create(
            (ip, port), timeout=self.timeout, retries=self.retries
        )

    def _auth(self, auth: V3User) -> Any:
        hl = self._hl
        return hl.UsmUserData(
            auth.user,
            authKey=auth.auth_key,
            privKey=auth.priv_key,
            authProtocol=getattr(hl, AUTH_PROTOCOLS[auth.auth_protocol]) if auth.auth_key else None,
            privProtocol=getattr(hl, PRIV_PROTOCOLS[auth.priv_protocol]) if auth.priv_key else None,
        )


class _V2cClient:
    """v2c requests over a few UDP sockets, answers matched by request id and community."""

    def __init__(self, local_ip: str, probes: int) -> None:
        self._local_ip = local_ip
        self._probes = probes
        self._transports: list[asyncio.DatagramTransport] = []
        self._opening: asyncio.Task[None] | None = None
        self._next = 0
        self._pending: dict[int, tuple[bytes, asyncio.Future[Answer]]] = {}
        self._closed = False

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in udp.open_sockets(self._local_ip, self._probes):
            if self._closed:
                sock.close()
                continue
            tr, _ = await loop.create_datagram_endpoint(lambda: _V2cProtocol(self), sock=sock)
            self._transports.append(tr)

    async def open(self) -> None:
        if not self._transports and not self._closed:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
            await asyncio.shield(self._opening)

    async def request(
        self,
        ip: str,
        port: int,
        community: str,
        pdu: int,
        oids: list[tuple[int, ...]],
        reps: int,
        timeout: float,
        retries: int,
    ) -> Answer | None:
        """Send one request (and ``retries`` resends); its answer, or None."""
        await self.open()
        if self._closed or not self._transports:
            return None
        loop = asyncio.get_running_loop()
        secret = community.encode()
        request_id = secrets.randbits(31)
        while request_id in self._pending:
            request_id = secrets.randbits(31)
        data = encode_request(secret, pdu, request_id, oids, reps)
        future: asyncio.Future[Answer] = loop.create_future()
        self._pending[request_id] = (secret, future)
        transport = self._transports[self._next % len(self._transports)]
        self._next += 1
        try:
            for _ in range(1 + max(0, retries)):
                transport.sendto(data, (ip, port))
                try:
                    return await asyncio.wait_for(asyncio.shield(future), timeout)
                except TimeoutError:
                    continue
            return None
        except OSError:  # no route, message too long...
            return None
        finally:
            self._pending.pop(request_id, None)
            if not future.done():
                future.cancel()

    def received(self, data: bytes) -> None:
        answer = decode_response(data)
        if answer is None:
            return
        pending = self._pending.get(answer.request_id)
        if pending is None or pending[0] != answer.community or pending[1].done():
            return  # not ours, a stale answer, or a forged one
        pending[1].set_result(answer)

    def close(self) -> None:
        self._closed = True
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        for tr in self._transports:
            tr.close()
        for _secret, future in self._pending.values():
            if not future.done():
                future.cancel()


class _V2cProtocol(asyncio.DatagramProtocol):
    def __init__(self, client: _V2cClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        with contextlib.suppress(Exception):  # an answer never breaks the client
            self.client.received(data)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable etc.
        pass


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
            or value is END_OF_MIB
            or len(out[col]) >= max_rows
        ):
            done.add(col)
            continue
        out[col][".".join(map(str, oid[len(base) :]))] = value
        cursors[col] = oid
        advanced.add(col)
    return advanced, done


@functools.lru_cache(maxsize=1024)
def _oid_tuple(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.strip(".").split("."))


def _dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def _plain(value: Any) -> Any:
    return None if value is END_OF_MIB else value


# -- the v2c codec -------------------------------------------------------------------------


@dataclass
class Answer:
    """A decoded v2c Response-PDU."""

    community: bytes
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[tuple[int, ...], Any]]  # (name, plain value or END_OF_MIB)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _integer(v: int) -> bytes:
    return _tlv(INTEGER, v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True))


def _subid(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


@functools.lru_cache(maxsize=1024)
def encode_oid(oid: tuple[int, ...]) -> bytes:
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40) or min(oid) < 0:
        raise ValueError(f"not an OID: {oid}")
    return _tlv(OBJECT_ID, b"".join(_subid(n) for n in (40 * oid[0] + oid[1], *oid[2:])))


def encode_request(
    community: bytes, pdu: int, request_id: int, oids: list[tuple[int, ...]], reps: int = 0
) -> bytes:
    """A v2c GetRequest (``pdu`` :data:`GET_REQUEST`) or GetBulkRequest (non-repeaters 0,
    max-repetitions ``reps``) naming ``oids``."""
    varbinds = b"".join(_tlv(SEQUENCE, encode_oid(o) + b"\x05\x00") for o in oids)
    a, b = (0, reps) if pdu == GET_BULK_REQUEST else (0, 0)
    body = _integer(request_id) + _integer(a) + _integer(b) + _tlv(SEQUENCE, varbinds)
    return _tlv(SEQUENCE, _integer(V2C) + _tlv(OCTET_STRING, community) + _tlv(pdu, body))


def _read(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, first byte of the value, end of the value) of the TLV at ``pos``; ValueError
    when it is malformed or overruns ``end`` (definite lengths and one-byte tags only)."""
    if pos + 2 > end:
        raise ValueError("truncated")
    tag, n = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tag")
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4 or pos + k > end:
            raise ValueError("bad length")
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    if n > end - pos:
        raise ValueError("overrun")
    return tag, pos, pos + n


def _expect(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    got, start, stop = _read(data, pos, end)
    if got != tag:
        raise ValueError(f"tag {got:#x}, not {tag:#x}")
    return start, stop


def _int_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    start, stop = _expect(data, pos, end, INTEGER)
    if not 0 < stop - start <= 9:
        raise ValueError("bad integer")
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def decode_oid(body: bytes) -> tuple[int, ...]:
    """The sub-identifiers of an OID's value bytes; ValueError when malformed."""
    if not body or body[-1] & 0x80 or len(body) > 5 * MAX_OID:
        raise ValueError("bad OID")
    subids: list[int] = []
    n = 0
    for b in body:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            subids.append(n)
            n = 0
    if len(subids) >= MAX_OID:
        raise ValueError("OID too long")
    first = subids[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *subids[1:])


def _value(tag: int, body: bytes) -> Any:
    """A var-bind's value as plain Python; None for anything unreadable."""
    try:
        if tag in (OCTET_STRING, OPAQUE):
            return bytes(body[:MAX_VALUE])
        if tag == INTEGER:
            return int.from_bytes(body, "big", signed=True) if 0 < len(body) <= 9 else None
        if tag in UNSIGNED:
            return int.from_bytes(body, "big") if 0 < len(body) <= 9 else None
        if tag == OBJECT_ID:
            return "." + _dotted(decode_oid(body))
        if tag == IP_ADDRESS:
            return ".".join(map(str, body)) if len(body) == 4 else None
        if tag == END_OF_MIB_VIEW:
            return END_OF_MIB
    except ValueError:
        return None
    return None  # NULL, noSuchObject, noSuchInstance, anything else


def decode_response(data: bytes) -> Answer | None:
    """A v2c Response-PDU, or None for anything else (another version or PDU, garbage).
    Never raises, whatever ``data`` holds."""
    try:
        start, end = _expect(data, 0, len(data), SEQUENCE)
        version, pos = _int_at(data, start, end)
        if version != V2C:
            return None
        c_start, pos = _expect(data, pos, end, OCTET_STRING)
        community = bytes(data[c_start:pos])
        pos, pdu_end = _expect(data, pos, end, RESPONSE)
        request_id, pos = _int_at(data, pos, pdu_end)
        error_status, pos = _int_at(data, pos, pdu_end)
        error_index, pos = _int_at(data, pos, pdu_end)
        pos, vbl_end = _expect(data, pos, pdu_end, SEQUENCE)
        varbinds: list[tuple[tuple[int, ...], Any]] = []
        while pos < vbl_end and len(varbinds) < MAX_ANSWER_VARBINDS:
            vb_start, vb_end = _expect(data, pos, vbl_end, SEQUENCE)
            n_start, n_end = _expect(data, vb_start, vb_end, OBJECT_ID)
            name = decode_oid(data[n_start:n_end])
            tag, v_start, v_end = _read(data, n_end, vb_end)
            varbinds.append((name, _value(tag, data[v_start:v_end])))
            pos = vb_end
    except (ValueError, IndexError):
        return None
    return Answer(community, request_id, error_status, error_index, varbinds)


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
    if not decoded:
        return None
    return decoded[:limit].rstrip()  # a cut just after a space leaves no trailing space


def _decode(raw: bytes) -> str | None:
    """UTF-8 without control characters (a trailing NUL tolerated), else None."""
    try:
        s = raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not all(c.isprintable() or c in "\t\r\n" for c in s):
        return None
    return s.strip()
