"""STUN Binding (RFC 5389) with the RFC 5780 NAT behaviour discovery tests.

The codec is hand-written (about a hundred lines; no library classifies NAT behaviour
the RFC 5780 way). The client keeps one UDP socket, matches answers to requests by
transaction id, drops anything that is not a well-formed STUN response to one of its
own requests, and retransmits each request the RFC 5389 way (RTO doubling, at most
Rc = 7 sends) within the request's timeout.

:func:`nat_behaviour` runs the mapping test (§4.3) and the filtering test (§4.4) on two
sockets, so the packets of one test cannot open the NAT's filter for the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442
HEADER = struct.Struct("!HHI12s")

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003  # RFC 5780 §7.2
CHANGED_ADDRESS = 0x0005  # RFC 3489, the ancestor of OTHER-ADDRESS
ERROR_CODE = 0x0009
XOR_MAPPED_ADDRESS = 0x0020
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B  # RFC 5780 §7.3
OTHER_ADDRESS = 0x802C  # RFC 5780 §7.4

CHANGE_IP = 0x04
CHANGE_PORT = 0x02
_FINGERPRINT_XOR = 0x5354554E

RTO = 0.5  # RFC 5389 §7.2.1 initial retransmission timeout
RC = 7  # at most this many sends per request

ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
UNKNOWN = "unknown"
BEHAVIOURS = (ENDPOINT_INDEPENDENT, ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT)

Address = tuple[str, int]


# ---------------------------------------------------------------- codec


@dataclass
class Message:
    type: int
    transaction_id: bytes
    attributes: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, attr: int) -> bytes | None:
        return next((v for t, v in self.attributes if t == attr), None)


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _fingerprint(data: bytes) -> bytes:
    return struct.pack("!I", (zlib.crc32(data) ^ _FINGERPRINT_XOR) & 0xFFFFFFFF)


def encode(msg: Message, fingerprint: bool = False) -> bytes:
    body = b"".join(
        struct.pack("!HH", t, len(v)) + v + b"\x00" * _pad(len(v)) for t, v in msg.attributes
    )
    if not fingerprint:
        return HEADER.pack(msg.type, len(body), MAGIC_COOKIE, msg.transaction_id) + body
    head = HEADER.pack(msg.type, len(body) + 8, MAGIC_COOKIE, msg.transaction_id)
    data = head + body
    return data + struct.pack("!HH", FINGERPRINT, 4) + _fingerprint(data)


def decode(data: bytes) -> Message | None:
    """A well-formed STUN message (RFC 5389 §6), else None; a bad FINGERPRINT is None too."""
    if len(data) < HEADER.size:
        return None
    mtype, length, cookie, tid = HEADER.unpack_from(data)
    if mtype & 0xC000 or cookie != MAGIC_COOKIE or length % 4 or length != len(data) - 20:
        return None
    attrs: list[tuple[int, bytes]] = []
    pos = HEADER.size
    while pos < len(data):
        if pos + 4 > len(data):
            return None
        atype, alen = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + alen
        if end > len(data):
            return None
        value = data[pos + 4 : end]
        if atype == FINGERPRINT and (end != len(data) or value != _fingerprint(data[:pos])):
            return None  # FINGERPRINT is last and must match, else this is not STUN
        attrs.append((atype, value))
        pos = end + _pad(alen)
    return Message(mtype, tid, attrs)


def encode_address(addr: Address, tid: bytes, xor: bool) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    port, raw = addr[1], ip.packed
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + tid
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    return struct.pack("!BBH", 0, 1 if ip.version == 4 else 2, port) + raw


def decode_address(value: bytes | None, tid: bytes, xor: bool) -> Address | None:
    if value is None or len(value) < 4:
        return None
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    raw = value[4:]
    if (family, len(raw)) not in ((1, 4), (2, 16)):
        return None
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + tid
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    return str(ipaddress.ip_address(raw)), port


def binding_request(tid: bytes, change_ip: bool = False, change_port: bool = False) -> bytes:
    attrs = []
    if change_ip or change_port:
        flags = (CHANGE_IP if change_ip else 0) | (CHANGE_PORT if change_port else 0)
        attrs.append((CHANGE_REQUEST, struct.pack("!I", flags)))
    return encode(Message(BINDING_REQUEST, tid, attrs), fingerprint=True)


def binding_success(
    tid: bytes,
    mapped: Address,
    *,
    other: Address | None = None,
    origin: Address | None = None,
    software: str | None = None,
) -> bytes:
    """A Binding success response, as an RFC 5780 server sends it (tests, reflectors)."""
    attrs = [(XOR_MAPPED_ADDRESS, encode_address(mapped, tid, xor=True))]
    if origin:
        attrs.append((RESPONSE_ORIGIN, encode_address(origin, tid, xor=False)))
    if other:
        attrs.append((OTHER_ADDRESS, encode_address(other, tid, xor=False)))
    if software:
        attrs.append((SOFTWARE, software.encode()))
    return encode(Message(BINDING_SUCCESS, tid, attrs), fingerprint=True)


def binding_error(tid: bytes, code: int, reason: str) -> bytes:
    value = struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()
    return encode(Message(BINDING_ERROR, tid, [(ERROR_CODE, value)]), fingerprint=True)


# ---------------------------------------------------------------- client


@dataclass
class BindingResponse:
    source: Address  # where the datagram came from
    mapped: Address | None  # XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS
    other: Address | None  # OTHER-ADDRESS, else RFC 3489 CHANGED-ADDRESS
    origin: Address | None  # RESPONSE-ORIGIN
    error: tuple[int, str] | None  # ERROR-CODE of an error response
    software: str | None
    rtt_ms: float
    sends: int  # transmissions before the answer


def _response(msg: Message, source: Address, rtt_ms: float, sends: int) -> BindingResponse:
    tid = msg.transaction_id
    mapped = decode_address(msg.get(XOR_MAPPED_ADDRESS), tid, xor=True) or decode_address(
        msg.get(MAPPED_ADDRESS), tid, xor=False
    )
    other = decode_address(msg.get(OTHER_ADDRESS), tid, xor=False) or decode_address(
        msg.get(CHANGED_ADDRESS), tid, xor=False
    )
    error = None
    if msg.type == BINDING_ERROR:
        v = msg.get(ERROR_CODE) or b""
        code = (v[2] & 0x07) * 100 + v[3] if len(v) >= 4 else 0
        error = (code, v[4:].decode("utf-8", "replace"))
    sw = msg.get(SOFTWARE)
    return BindingResponse(
        source=source,
        mapped=mapped,
        other=other,
        origin=decode_address(msg.get(RESPONSE_ORIGIN), tid, xor=False),
        error=error,
        software=sw.decode("utf-8", "replace") if sw else None,
        rtt_ms=rtt_ms,
        sends=sends,
    )


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.pending: dict[bytes, asyncio.Future[tuple[Message, Address]]] = {}

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        msg = decode(data)
        if msg is None or msg.type not in (BINDING_SUCCESS, BINDING_ERROR):
            return  # not STUN, or not an answer
        fut = self.pending.get(msg.transaction_id)
        if fut is not None and not fut.done():
            fut.set_result((msg, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable: keep waiting
        pass


class StunClient:
    """One UDP socket sending Binding requests; ``async with await StunClient.open()``."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    @classmethod
    async def open(cls, local_ip: str = "0.0.0.0", local_port: int = 0) -> StunClient:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Protocol, local_addr=(local_ip, local_port), family=socket.AF_INET
        )
        return cls(transport, protocol)

    @property
    def local(self) -> Address:
        ip, port = self._transport.get_extra_info("sockname")[:2]
        return ip, port

    def close(self) -> None:
        self._transport.close()

    async def __aenter__(self) -> StunClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def binding(
        self,
        server: Address,
        *,
        change_ip: bool = False,
        change_port: bool = False,
        timeout: float = 1.0,
        rto: float = RTO,
    ) -> BindingResponse | None:
        """Send a Binding request (retransmitted) to ``server``; None if none answered in time."""
        loop = asyncio.get_running_loop()
        tid = secrets.token_bytes(12)
        data = binding_request(tid, change_ip, change_port)
        fut: asyncio.Future[tuple[Message, Address]] = loop.create_future()
        self._protocol.pending[tid] = fut
        start = time.monotonic()
        deadline = start + timeout
        try:
            for sends in range(1, RC + 1):  # RFC 5389 §7.2.1: RTO doubles after each send
                with contextlib.suppress(OSError):
                    self._transport.sendto(data, server)
                left = deadline - time.monotonic()
                step = left if sends == RC else min(rto * 2 ** (sends - 1), left)
                done, _ = await asyncio.wait({fut}, timeout=max(step, 0))
                if done:
                    msg, source = fut.result()
                    return _response(msg, source, (time.monotonic() - start) * 1000, sends)
                if time.monotonic() >= deadline:
                    break
            return None
        finally:
            self._protocol.pending.pop(tid, None)
            fut.cancel()


# ---------------------------------------------------------------- RFC 5780 behaviour tests


@dataclass
class NatBehaviour:
    server: Address  # the address the tests were sent to
    local: Address | None = None  # our side of the mapping test's socket
    mapped: Address | None = None  # our public address, as the server saw it (test I)
    other: Address | None = None  # the server's OTHER-ADDRESS
    mapping: str = UNKNOWN
    filtering: str = UNKNOWN
    mapping_evidence: str = ""
    filtering_evidence: str = ""

    @property
    def nat(self) -> bool | None:
        """Whether a NAT rewrote our address (None: not measured)."""
        if self.mapped is None or self.local is None:
            return None
        return self.mapped != self.local


def _fmt(a: Address | None) -> str:
    return f"{a[0]}:{a[1]}" if a else "?"


def _local_address(sock_local: Address, server: Address) -> Address:
    """Our address towards ``server``: the bound one, or the one routing picks for 0.0.0.0."""
    if sock_local[0] not in ("0.0.0.0", ""):
        return sock_local
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(server)
            return s.getsockname()[0], sock_local[1]
        except OSError:
            return sock_local


def _test_one(r: BindingResponse | None, server: Address) -> str | None:
    """Why test I cannot support the behaviour tests, or None if it can."""
    if r is None:
        return f"no answer from {_fmt(server)}"
    if r.error:
        return f"{_fmt(server)} answered error {r.error[0]} {r.error[1]}".rstrip()
    if r.mapped is None:
        return f"{_fmt(server)} answered without a mapped address"
    if r.other is None:
        return f"{_fmt(server)} has no OTHER-ADDRESS (no RFC 5780 support)"
    if r.other[0] == server[0] or r.other[1] == server[1]:
        return f"{_fmt(server)} gives OTHER-ADDRESS {_fmt(r.other)}, not another IP and port"
    return None


async def mapping_test(
    server: Address, local_ip: str = "0.0.0.0", timeout: float = 1.0, rto: float = RTO
) -> NatBehaviour:
    """RFC 5780 §4.3: compare the mapped address seen by three server addresses."""
    out = NatBehaviour(server)
    async with await StunClient.open(local_ip) as c:
        out.local = _local_address(c.local, server)
        r1 = await c.binding(server, timeout=timeout, rto=rto)
        if r1 is not None:
            out.mapped, out.other = r1.mapped, r1.other
        why = _test_one(r1, server)
        if why:
            out.mapping_evidence = why
            return out
        assert r1 is not None and r1.mapped is not None and r1.other is not None
        m1, other = r1.mapped, r1.other
        if m1 == out.local:
            out.mapping = ENDPOINT_INDEPENDENT
            out.mapping_evidence = f"no NAT: {_fmt(server)} sees our own address {_fmt(m1)}"
            return out
        alt = (other[0], server[1])
        r2 = await c.binding(alt, timeout=timeout, rto=rto)
        if r2 is None or r2.mapped is None:
            out.mapping_evidence = f"test II: no mapped address from {_fmt(alt)}"
            return out
        if r2.mapped == m1:
            out.mapping = ENDPOINT_INDEPENDENT
            out.mapping_evidence = f"same mapping {_fmt(m1)} towards {_fmt(server)} and {_fmt(alt)}"
            return out
        r3 = await c.binding(other, timeout=timeout, rto=rto)
        if r3 is None or r3.mapped is None:
            out.mapping_evidence = f"test III: no mapped address from {_fmt(other)}"
            return out
        seen = (
            f"mapping {_fmt(m1)} towards {_fmt(server)}, {_fmt(r2.mapped)} towards "
            f"{_fmt(alt)}, {_fmt(r3.mapped)} towards {_fmt(other)}"
        )
        out.mapping = ADDRESS_DEPENDENT if r3.mapped == r2.mapped else ADDRESS_AND_PORT_DEPENDENT
        out.mapping_evidence = seen
        return out


async def filtering_test(
    server: Address, local_ip: str = "0.0.0.0", timeout: float = 1.0, rto: float = RTO
) -> tuple[str, str]:
    """RFC 5780 §4.4: which server addresses may answer through the NAT; (behaviour, evidence)."""
    async with await StunClient.open(local_ip) as c:
        r1 = await c.binding(server, timeout=timeout, rto=rto)
        why = _test_one(r1, server)
        if why:
            return UNKNOWN, why
        assert r1 is not None and r1.other is not None
        other = r1.other
        r2 = await c.binding(server, change_ip=True, change_port=True, timeout=timeout, rto=rto)
        if r2 is not None:
            if r2.error:
                return UNKNOWN, f"test II: CHANGE-REQUEST refused ({r2.error[0]} {r2.error[1]})"
            if r2.source[0] == server[0] or r2.source[1] == server[1]:
                return UNKNOWN, f"test II: CHANGE-REQUEST ignored (answer from {_fmt(r2.source)})"
            return ENDPOINT_INDEPENDENT, f"answer from the other address {_fmt(r2.source)} came in"
        r3 = await c.binding(server, change_port=True, timeout=timeout, rto=rto)
        if r3 is not None:
            if r3.error:
                return UNKNOWN, f"test III: CHANGE-REQUEST refused ({r3.error[0]} {r3.error[1]})"
            if r3.source[0] != server[0] or r3.source[1] == server[1]:
                return UNKNOWN, f"test III: CHANGE-REQUEST ignored (answer from {_fmt(r3.source)})"
            return ADDRESS_DEPENDENT, (
                f"no answer from the other IP {other[0]} within {timeout:g} s; "
                f"answer from the other port {_fmt(r3.source)} came in"
            )
        return ADDRESS_AND_PORT_DEPENDENT, (
            f"no answer from the other IP {other[0]} nor from the other port "
            f"{server[0]}:{other[1]} within {timeout:g} s"
        )


async def nat_behaviour(
    server: tuple[str, int], local_ip: str = "0.0.0.0", timeout: float = 1.0, rto: float = RTO
) -> NatBehaviour:
    """Run the mapping and filtering tests against ``server`` (host or IPv4, port).

    ``timeout`` bounds each request (retransmits included); both tests run at once on
    their own sockets, so the whole takes at most three timeouts.
    """
    host, port = server
    try:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(
                host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
        addr: Address = (infos[0][4][0], port)
    except (OSError, TimeoutError, IndexError) as e:
        reason = f"{host} does not resolve: {'timeout' if isinstance(e, TimeoutError) else e}"
        return NatBehaviour(server, mapping_evidence=reason, filtering_evidence=reason)
    try:
        out, (filtering, evidence) = await asyncio.gather(
            mapping_test(addr, local_ip, timeout, rto), filtering_test(addr, local_ip, timeout, rto)
        )
    except OSError as e:  # no socket, no route
        return NatBehaviour(addr, mapping_evidence=str(e), filtering_evidence=str(e))
    out.filtering, out.filtering_evidence = filtering, evidence
    return out
