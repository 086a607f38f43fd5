"""Client side of the reflector protocol (docs/reflector.md), and its wire format.

- :func:`mirror` sends a SIP request to the reflector and returns what the reflector
  received (the XOR-obfuscated body of its answer) and the source address it saw.
- :func:`sip_diff` lists the header and SDP lines a router rewrote on the way (SIP ALG).
- :func:`alg_probe_request` builds a realistic REGISTER/OPTIONS/INVITE carrying the
  private address everywhere an ALG looks.
- :func:`lifetime` measures which idle delays a NAT UDP mapping survives (PDLT).

Every network operation has a timeout; malformed answers are ignored, never raised.
The server (``agent.reflector``) shares the wire-format helpers defined here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
import socket
import struct
import sys
import time
from dataclasses import dataclass

from sipmessage import Request
from sipmessage.message import COMPACT_FORMS

from agent.net.sip import USER_AGENT, parse_message, parse_response

# ---------------------------------------------------------------- wire format (contract)

XOR_KEY = 0x5A
MIRROR_CONTENT_TYPE = "application/x-phonediag-mirror"
SOURCE_HEADER = "X-Phonediag-Source"
MAX_REQUEST = 4096  # bytes; a larger request gets no answer
MIRROR_OVERHEAD = 512  # a mirror answer is at most the request plus this
PDLT_MAX_ANSWER = 64  # bytes
MAX_DELAY_MS = 300_000

_XOR_TABLE = bytes(b ^ XOR_KEY for b in range(256))
_TOKEN_CHARS = r"[!%'*+\-.0-9A-Z_`a-z~]+"  # RFC 3261 token (a method)
PDLT_REQUEST = re.compile(rb"PDLT ([A-Za-z0-9]{1,32}) ([0-9]{1,6})")
PDLT_ANSWER = re.compile(rb"PDLT ([A-Za-z0-9]{1,32}) (ACK|LATE)\r?\n?")
_METHOD = re.compile(_TOKEN_CHARS)


def xor(data: bytes) -> bytes:
    """The mirror body's obfuscation (its own inverse)."""
    return data.translate(_XOR_TABLE)


def parse_request(data: bytes) -> Request | None:
    """Parse a SIP request (the counterpart of :func:`agent.net.sip.parse_response`).

    LF-only line ends are tolerated, and so is a request without the blank line that
    ends the headers (a UDP datagram holding only a request line and headers).
    None for anything else: no ``METHOD uri SIP/2.0`` line, undecodable headers.
    """
    msg = parse_message(data)
    if not isinstance(msg, Request) or not _METHOD.fullmatch(msg.method):
        return None
    return msg


def number(text: str | None) -> int | None:
    """A Content-Length or a port: at most 9 ASCII digits (spaces around allowed), else
    None. Not ``isdigit()`` then ``int()``: ``"²".isdigit()`` is true and ``int("²")``
    raises, as does ``int()`` of more than 4300 digits (tests/fuzz)."""
    text = (text or "").strip()
    if not (0 < len(text) <= 9 and text.isascii() and text.isdigit()):
        return None
    return int(text)


def format_source(addr: tuple) -> str:
    ip, port = addr[0], addr[1]
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def parse_source(value: str | None) -> tuple[str, int] | None:
    """``ip:port`` or ``[ipv6]:port`` as the reflector writes it; None if not that."""
    if not value:
        return None
    host, sep, port_text = value.strip().rpartition(":")
    port = number(port_text) if sep else None
    if port is None:
        return None
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        return None
    return (ip, port) if 0 < port < 65536 else None


# ---------------------------------------------------------------- mirror


@dataclass
class Mirror:
    sent: bytes  # the request as this client sent it
    arrived: bytes  # the request as the reflector received it
    source: tuple[str, int]  # the client's address as the reflector saw it


_LINGER_RESET = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)
RTO = 0.5  # UDP retransmission: 0.5 s, doubling (RFC 3261 T1), within the timeout
MAX_ANSWER = MAX_REQUEST + MIRROR_OVERHEAD


def _decode_mirror(data: bytes, sent: bytes) -> Mirror | None:
    """A mirror answer to ``sent``, decoded; None for anything else."""
    resp = parse_response(data)
    if resp is None or resp.code != 200:
        return None
    ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    source = parse_source(resp.headers.get(SOURCE_HEADER))
    if ctype != MIRROR_CONTENT_TYPE or source is None:
        return None
    body = resp.body
    if (resp.headers.get("Content-Length") or "").strip():
        length = number(resp.headers.get("Content-Length"))
        if length is None or length > len(body):
            return None
        body = body[:length]
    arrived = xor(body)
    # The answer is for this request: an ALG may rewrite addresses, not the CSeq.
    want = _header_values(sent).get("cseq")
    if want and _header_values(arrived).get("cseq") != want:
        return None
    return Mirror(sent=sent, arrived=arrived, source=source)


class _Inbox(asyncio.DatagramProtocol):
    """Datagrams (with their arrival time) into a queue; ICMP errors noted."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)
        self.refused = False
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait((time.monotonic(), data))

    def error_received(self, exc: Exception) -> None:  # port unreachable, etc.
        self.refused = True

    async def close(self, transport: asyncio.BaseTransport) -> None:
        """Close and wait until the socket is really closed (its port is free again)."""
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 1.0)

    async def get(self, until: float) -> tuple[float, bytes] | None:
        """The next datagram, or None once the monotonic time ``until`` has passed."""
        remaining = until - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(self.queue.get(), remaining)
        except TimeoutError:
            return None


async def mirror(
    host: str,
    port: int,
    request: bytes,
    transport: str = "udp",
    local_ip: str = "0.0.0.0",
    local_port: int = 0,
    timeout: float = 2.0,
) -> Mirror | None:
    """Send ``request`` to the reflector; what it received, or None (no valid answer)."""
    kind = transport.lower()
    if kind not in ("udp", "tcp"):
        raise ValueError(f"transport must be udp or tcp, not {transport!r}")
    try:
        async with asyncio.timeout(timeout):
            if kind == "udp":
                return await _mirror_udp(host, port, request, local_ip, local_port)
            return await _mirror_tcp(host, port, request, local_ip, local_port)
    except (OSError, TimeoutError, EOFError, ValueError, asyncio.LimitOverrunError):
        return None  # IncompleteReadError is an EOFError; UnicodeError a ValueError


async def _mirror_udp(
    host: str, port: int, request: bytes, local_ip: str, local_port: int
) -> Mirror | None:
    loop = asyncio.get_running_loop()
    transport, inbox = await loop.create_datagram_endpoint(
        _Inbox, local_addr=(local_ip, local_port), remote_addr=(host, port)
    )
    try:
        rto = RTO
        while True:  # the caller's timeout ends this
            transport.sendto(request)
            until = time.monotonic() + rto
            while (got := await inbox.get(until)) is not None:
                found = _decode_mirror(got[1], request)
                if found is not None:
                    return found
            if inbox.refused:
                return None
            rto = min(rto * 2, 4.0)
    finally:
        await inbox.close(transport)


async def _mirror_tcp(
    host: str, port: int, request: bytes, local_ip: str, local_port: int
) -> Mirror | None:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
    infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    if not infos:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform != "win32":  # there, SO_REUSEADDR would take a port in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # same port again soon
        sock.bind((local_ip, local_port))
        sock.setblocking(False)
        await loop.sock_connect(sock, infos[0][4])
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_ANSWER)
    except BaseException:
        sock.close()
        raise
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        resp = parse_response(head)
        if resp is None:
            return None
        length = number(resp.headers.get("Content-Length") or "0")
        if length is None or length > MAX_ANSWER:
            return None
        body = await reader.readexactly(length)
        return _decode_mirror(head + body, request)
    finally:
        # Reset rather than close: no TIME_WAIT, so the same local port (the one the
        # request names in Via/Contact) can make the next connection at once.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# ---------------------------------------------------------------- diff

_CANONICAL = {
    name.lower(): name
    for name in (
        *COMPACT_FORMS.values(),
        "Via",
        "Contact",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Route",
        "Record-Route",
        "User-Agent",
        "Expires",
        "Allow",
        "Accept",
    )
}
_IGNORED = {"content-length"}  # follows the body: a rewritten SDP changes it
_SDP = ("o=", "c=", "m=")


def _split(data: bytes) -> tuple[str, list[tuple[str, str]], list[str]]:
    """Request line, headers (canonical name, value) in order, body lines.

    Deliberately more tolerant than :func:`parse_request`: what arrived may have been
    mangled by a router, and the diff must still show where.
    """
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            continue
        full = COMPACT_FORMS.get(name.lower(), name) if len(name) == 1 else name
        headers.append((_CANONICAL.get(full.lower(), full), value.strip()))
    return lines[0].strip(), headers, [b.strip() for b in body.split("\n")]


def _header_values(data: bytes) -> dict[str, str]:
    """First value of each header, by lower-case name."""
    out: dict[str, str] = {}
    for name, value in _split(data)[1]:
        out.setdefault(name.lower(), value)
    return out


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), (name, []))[1].append(value)
    return out


def _diff_groups(
    sent: dict[str, tuple[str, list[str]]], arrived: dict[str, tuple[str, list[str]]]
) -> list[tuple[str, str, str]]:
    out = []
    for key in [*sent, *(k for k in arrived if k not in sent)]:
        name = (sent.get(key) or arrived[key])[0]
        svals = sent[key][1] if key in sent else []
        avals = arrived[key][1] if key in arrived else []
        for i in range(max(len(svals), len(avals))):
            s = svals[i] if i < len(svals) else ""
            a = avals[i] if i < len(avals) else ""
            if s != a:
                out.append((name if i == 0 else f"{name} #{i + 1}", s, a))
    return out


def sip_diff(sent: bytes, arrived: bytes) -> list[tuple[str, str, str]]:
    """``(where, sent value, arrived value)`` for each line a router changed.

    ``where`` is ``request line``, a header's name (``Via``, ``Contact``...; ``Via #2``
    for the second Via) or ``SDP c=`` / ``SDP o=`` / ``SDP m=``. Headers are matched by
    name (any case, compact forms) and order; a missing line has the value ``""``.
    Content-Length is left out: it only follows a rewritten body.
    """
    s_line, s_headers, s_body = _split(sent)
    a_line, a_headers, a_body = _split(arrived)
    out: list[tuple[str, str, str]] = []
    if s_line != a_line:
        out.append(("request line", s_line, a_line))
    keep = [(n, v) for n, v in s_headers if n.lower() not in _IGNORED]
    akeep = [(n, v) for n, v in a_headers if n.lower() not in _IGNORED]
    out += _diff_groups(_grouped(keep), _grouped(akeep))

    def sdp(lines: list[str]) -> list[tuple[str, str]]:
        return [(f"SDP {ln[:2]}", ln[2:].strip()) for ln in lines if ln[:2] in _SDP]

    out += _diff_groups(_grouped(sdp(s_body)), _grouped(sdp(a_body)))
    return out


# ---------------------------------------------------------------- ALG probe requests

ALG_METHODS = ("REGISTER", "OPTIONS", "INVITE")


def alg_probe_request(
    method: str,
    local_ip: str,
    local_port: int,
    target: tuple[str, int],
    transport: str = "udp",
) -> bytes:
    """A realistic REGISTER, OPTIONS or INVITE (with SDP) from ``local_ip:local_port``.

    The private address is where a phone puts it and where an ALG rewrites it: Via,
    Contact, From, Call-ID, and for INVITE the SDP ``o=``/``c=`` lines, with an audio
    port in the 30000 range. ``local_port`` must be the port the request leaves from
    (an ALG only rewrites addresses that match the packet's source).
    """
    method = method.upper()
    if method not in ALG_METHODS:
        raise ValueError(f"method must be one of {', '.join(ALG_METHODS)}")
    host, port = target
    proto = transport.upper()
    branch = "z9hG4bK" + secrets.token_hex(8)
    contact_params = ";transport=tcp" if proto == "TCP" else ""
    uri = {
        "REGISTER": f"sip:{host}:{port}",
        "OPTIONS": f"sip:{host}:{port}",
        "INVITE": f"sip:echo@{host}:{port}",
    }[method]
    to = {"REGISTER": f"<sip:phonediag@{host}>", "INVITE": f"<sip:echo@{host}>"}.get(
        method, f"<sip:{host}:{port}>"
    )
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{proto} {local_ip}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f'From: "phonediag" <sip:phonediag@{local_ip}>;tag={secrets.token_hex(6)}',
        f"To: {to}",
        f"Call-ID: {secrets.token_hex(12)}@{local_ip}",
        f"CSeq: {secrets.randbelow(9000) + 1} {method}",
        f"Contact: <sip:phonediag@{local_ip}:{local_port}{contact_params}>",
        f"User-Agent: {USER_AGENT}",
    ]
    body = ""
    if method == "REGISTER":
        lines.append("Expires: 60")
    elif method == "OPTIONS":
        lines.append("Accept: application/sdp")
    else:
        session = secrets.randbelow(10**9)
        rtp = 30000 + 2 * secrets.randbelow(500)
        body = "\r\n".join(
            [
                "v=0",
                f"o=phonediag {session} {session} IN IP4 {local_ip}",
                "s=phonediag",
                f"c=IN IP4 {local_ip}",
                "t=0 0",
                f"m=audio {rtp} RTP/AVP 0 8 101",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:101 telephone-event/8000",
                "a=sendrecv",
                "",
            ]
        )
        lines += ["Allow: INVITE, ACK, CANCEL, BYE, OPTIONS", "Content-Type: application/sdp"]
    lines += [f"Content-Length: {len(body.encode())}", "", ""]
    return "\r\n".join(lines).encode() + body.encode()


# ---------------------------------------------------------------- NAT binding lifetime

_EARLY = 0.005  # timer slack: a LATE is "late" when it comes at least delay - this


async def lifetime(
    host: str,
    port: int,
    delays_s: list[float],
    local_ip: str = "0.0.0.0",
    grace_s: float = 2.0,
    warmup_s: float = 0.0,
) -> dict[float, bool]:
    """Which idle delays a NAT UDP mapping survives: ``{delay: late answer arrived}``.

    With ``warmup_s``, each mapping first carries a short two-way exchange spread over
    that time (as a phone's registration and keep-alives do) before it is left idle.

    One socket (one mapping) per delay, all at once. ``{}`` when no answer at all came
    back (the reflector is unreachable), so that it is not mistaken for short mappings.
    At most 16 delays: the reflector keeps no more pending per source address.
    """
    delays = list(dict.fromkeys(delays_s))
    for d in delays:
        if not 0 <= round(d * 1000) <= MAX_DELAY_MS:
            raise ValueError(f"delay {d} s is outside 0..{MAX_DELAY_MS // 1000} s")
    if grace_s <= 0:
        raise ValueError("grace_s must be positive")
    results = await asyncio.gather(
        *(_one_lifetime(host, port, d, local_ip, grace_s, warmup_s) for d in delays)
    )
    if not any(acked or late for acked, late in results):
        return {}
    return {d: late for d, (_acked, late) in zip(delays, results, strict=True)}


async def _one_lifetime(
    host: str, port: int, delay: float, local_ip: str, grace_s: float, warmup_s: float = 0.0
) -> tuple[bool, bool]:
    """(ACK seen, LATE seen at least ``delay`` after the last packet we sent)."""
    loop = asyncio.get_running_loop()
    try:
        transport, inbox = await asyncio.wait_for(
            loop.create_datagram_endpoint(
                _Inbox, local_addr=(local_ip, 0), remote_addr=(host, port)
            ),
            grace_s,
        )
    except (OSError, TimeoutError):
        return False, False
    ms = round(delay * 1000)
    tokens: set[bytes] = set()
    acked = late = False
    last_send = 0.0

    async def listen(until: float, stop_on_ack: bool) -> None:
        nonlocal acked, late
        while not late and not (stop_on_ack and acked):
            got = await inbox.get(until)
            if got is None:
                return
            at, data = got
            m = PDLT_ANSWER.fullmatch(data)
            if m is None or len(data) > PDLT_MAX_ANSWER or m[1] not in tokens:
                continue
            if m[2] == b"ACK":
                acked = True
            elif at - last_send >= delay - _EARLY:  # an older try's LATE comes too soon
                late = acked = True

    try:
        if warmup_s > 0:
            # Make the mapping a two-way stream first, as a phone's REGISTER, 200 OK and
            # keep-alives do: routers keep such mappings longer than a single exchange
            # (Linux only extends a UDP flow still active 2 s after it started).
            token = secrets.token_hex(8).encode()
            transport.sendto(b"PDLT %s 0" % token)
            await asyncio.sleep(warmup_s)
            transport.sendto(b"PDLT %s 0" % secrets.token_hex(8).encode())
            await asyncio.sleep(0.2)
        tries = 3  # UDP may lose the request or its ACK: try again, new token each time
        for _ in range(tries):
            token = secrets.token_hex(8).encode()
            tokens.add(token)
            transport.sendto(b"PDLT %s %d" % (token, ms))
            last_send = time.monotonic()
            await listen(last_send + grace_s / tries, stop_on_ack=True)
            if acked or inbox.refused:
                break
        if acked:
            await listen(last_send + delay + grace_s, stop_on_ack=False)
        return acked, late
    finally:
        await inbox.close(transport)
