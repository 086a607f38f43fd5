"""SIP OPTIONS over UDP and TCP: build, send to many targets at once, parse tolerantly.

Replies are matched to the probe that caused them by the From tag, which carries
the target's address (as SIPVicious does), so a device answering from another
address (NAT, several interfaces) is still attributed to the right target.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import time
from dataclasses import dataclass, field

from sipmessage import Message, Response

from agent import __version__

USER_AGENT = f"phonediag/{__version__}"
MAX_DATAGRAM = 65535


@dataclass
class SipReply:
    target: tuple[str, int]  # where the probe went
    source: tuple[str, int]  # where the answer came from
    transport: str
    code: int
    reason: str
    rtt_ms: float
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> value

    @property
    def agent(self) -> str | None:
        """User-Agent, else Server: what the device says it is."""
        return self.headers.get("user-agent") or self.headers.get("server")


def encode_tag(ip: str, port: int) -> str:
    """A From tag carrying the target: 8 hex (IPv4) + 4 hex (port) + 8 random hex."""
    return f"{int(ipaddress.IPv4Address(ip)):08x}{port:04x}{secrets.token_hex(4)}"


def decode_tag(tag: str | None) -> tuple[str, int] | None:
    if not tag or len(tag) < 12:
        return None
    try:
        return str(ipaddress.IPv4Address(int(tag[:8], 16))), int(tag[8:12], 16)
    except ValueError:
        return None


def build_options(
    target: tuple[str, int], local: tuple[str, int], transport: str = "UDP", uri: str | None = None
) -> bytes:
    """An OPTIONS to ``target``; ``uri`` (e.g. ``sip:1001@sip.ovh.net``) asks a proxy to
    relay it to that address of record instead of answering itself."""
    ip, port = target
    lip, lport = local
    uri = uri or f"sip:{ip}:{port}"
    branch = "z9hG4bK" + secrets.token_hex(8)
    lines = [
        f"OPTIONS {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {lip}:{lport};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:phonediag@{lip}>;tag={encode_tag(ip, port)}",
        f"To: <{uri}>",
        f"Call-ID: {secrets.token_hex(12)}@{lip}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:phonediag@{lip}:{lport}>",
        "Accept: application/sdp",
        f"User-Agent: {USER_AGENT}",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def parse_message(data: bytes) -> Message | None:
    """Parse a SIP message, tolerating LF-only line ends and a missing blank line after
    the headers; None for anything that is not SIP."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    head = head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    try:
        return Message.parse(head + b"\r\n\r\n" + body)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None


def parse_response(data: bytes) -> Response | None:
    """Parse a SIP response (see :func:`parse_message`); None for anything else."""
    msg = parse_message(data)
    return msg if isinstance(msg, Response) else None


def _headers(resp: Response) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("User-Agent", "Server", "Allow", "Contact", "Supported", "Via", "To"):
        with contextlib.suppress(Exception):
            value = resp.headers.get(name)
            if value:
                out[name.lower()] = str(value)[:512]
    return out


def _tag(resp: Response) -> str | None:
    try:
        return resp.from_address.parameters.get("tag")
    except (KeyError, ValueError, AttributeError):
        return None


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, sent: dict[tuple[str, int], float]) -> None:
        self.sent = sent
        self.replies: dict[tuple[str, int], SipReply] = {}

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        resp = parse_response(data)
        if resp is None:
            return
        target = decode_tag(_tag(resp))
        if target is None or target not in self.sent or target in self.replies:
            return
        self.replies[target] = SipReply(
            target=target,
            source=(addr[0], addr[1]),
            transport="udp",
            code=resp.code,
            reason=resp.phrase,
            rtt_ms=(time.monotonic() - self.sent[target]) * 1000,
            headers=_headers(resp),
        )

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable etc.
        pass


async def sweep_udp(
    targets: list[tuple[str, int]],
    local_ip: str = "0.0.0.0",
    timeout: float = 1.5,
    rate: int = 500,
) -> list[SipReply]:
    """Send one OPTIONS to every target from one socket; wait ``timeout`` after the last."""
    loop = asyncio.get_running_loop()
    sent: dict[tuple[str, int], float] = {}
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Collector(sent), local_addr=(local_ip, 0)
    )
    try:
        lip, lport = transport.get_extra_info("sockname")[:2]
        gap = 1.0 / rate if rate > 0 else 0.0
        if lip == "0.0.0.0" and targets:
            lip = _source_ip_for(targets[0][0])
        for t in targets:
            sent[t] = time.monotonic()
            transport.sendto(build_options(t, (lip, lport)), t)
            if gap:
                await asyncio.sleep(gap)
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(proto.replies) < len(targets):
            await asyncio.sleep(0.02)
    finally:
        transport.close()
    return list(proto.replies.values())


async def query_tcp(target: tuple[str, int], timeout: float = 1.5) -> SipReply | None:
    """One OPTIONS over TCP; None when nothing (or nothing SIP) answers in time."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*target)
            try:
                lip, lport = writer.get_extra_info("sockname")[:2]
                writer.write(build_options(target, (lip, lport), "TCP"))
                await writer.drain()
                data = await reader.readuntil(b"\r\n\r\n")
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    resp = parse_response(data)
    if resp is None:
        return None
    return SipReply(
        target=target,
        source=target,
        transport="tcp",
        code=resp.code,
        reason=resp.phrase,
        rtt_ms=(time.monotonic() - start) * 1000,
        headers=_headers(resp),
    )


async def sweep_tcp(
    targets: list[tuple[str, int]], timeout: float = 1.5, concurrency: int = 256
) -> list[SipReply]:
    sem = asyncio.Semaphore(concurrency)

    async def one(t: tuple[str, int]) -> SipReply | None:
        async with sem:
            return await query_tcp(t, timeout)

    results = await asyncio.gather(*(one(t) for t in targets))
    return [r for r in results if r is not None]


def _source_ip_for(dest: str) -> str:
    """The local address the OS would use to reach ``dest`` (no packet is sent)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((dest, 9))
            return s.getsockname()[0]
        except OSError:
            return "0.0.0.0"


class _FinalAnswer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[tuple[Response, tuple[str, int]]] = (
            asyncio.get_running_loop().create_future()
        )

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        resp = parse_response(data)
        if resp is not None and resp.code >= 200 and not self.answer.done():
            self.answer.set_result((resp, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass


async def options_to(
    target: tuple[str, int], uri: str, local_ip: str = "0.0.0.0", timeout: float = 5.0
) -> SipReply | None:
    """One OPTIONS for ``uri`` sent to ``target`` (a proxy); its final answer, or None."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    transport, proto = await loop.create_datagram_endpoint(_FinalAnswer, local_addr=(local_ip, 0))
    try:
        lip, lport = transport.get_extra_info("sockname")[:2]
        if lip == "0.0.0.0":
            lip = _source_ip_for(target[0])
        request = build_options(target, (lip, lport), uri=uri)
        for wait in (0.5, 1.0, 2.0, 4.0):  # UDP retransmits (RFC 3261 timer E)
            transport.sendto(request, target)
            with contextlib.suppress(TimeoutError):
                resp, source = await asyncio.wait_for(
                    asyncio.shield(proto.answer),
                    min(wait, max(0.0, timeout - (time.monotonic() - start))),
                )
                return SipReply(
                    target,
                    source,
                    "udp",
                    resp.code,
                    resp.phrase,
                    (time.monotonic() - start) * 1000,
                    _headers(resp),
                )
            if time.monotonic() - start >= timeout:
                break
        return None
    finally:
        transport.close()
