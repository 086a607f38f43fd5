"""SIP OPTIONS over UDP and TCP: build, send to many targets at once, parse tolerantly.

Replies are matched to the probe that caused them by the From tag, which carries
the target's address (as SIPVicious does), so a device answering from another
address (NAT, several interfaces) is still attributed to the right target.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent import __version__, platform
from agent.net import udp
from agent.net.pacing import Pacer
from agent.net.udp import MAX_SOCKETS, PROBE_COST, plan_sockets  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from sipmessage import Message, Response

USER_AGENT = f"phonediag/{__version__}"
MAX_DATAGRAM = 65535
MAX_HEAD = 16384  # a reply whose headers are longer is not parsed (no phone needs that)
# Header names and lines in a message parsed at most: sipmessage files each header line
# with a linear search of the names before it, so 16 KiB of distinct one-letter headers
# cost 0.4 s of CPU. With these caps any message costs about a millisecond (tests/fuzz).
MAX_HEADER_NAMES = 48
MAX_HEADER_LINES = 256  # Via and Record-Route lines repeat; no answer needs more
MAX_BODY = 16384  # body bytes kept for parsing; the sweep reads headers only
MAX_TCP_REPLY = 65536  # bytes read from one TCP answer at most
MAX_ALSO_FROM = 4  # other addresses kept when one probe is answered from several
MAX_BACKLOG = 2 * 1024 * 1024  # bytes of answers kept unread while probes are paced out
_PROVISIONAL = re.compile(rb"SIP/2\.0[ \t]+1\d\d\b")
_STATUS = re.compile(rb"SIP/2\.0 [1-6][0-9][0-9] ")
_CONTENT_LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d{1,9})[ \t]*\r?$")

Pace = Callable[[], Awaitable[None]]


@dataclass
class SipReply:
    target: tuple[str, int]  # where the probe went
    source: tuple[str, int]  # where the answer came from
    transport: str
    code: int
    reason: str
    rtt_ms: float
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> value
    also_from: list[tuple[str, int]] = field(default_factory=list)  # other answering sources

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
    target: tuple[str, int],
    local: tuple[str, int],
    transport: str = "UDP",
    uri: str | None = None,
    tag: str | None = None,
) -> bytes:
    """An OPTIONS to ``target``; ``uri`` (e.g. ``sip:1001@sip.ovh.net``) asks a proxy to
    relay it to that address of record instead of answering itself. ``tag`` is the From
    tag (default: a fresh :func:`encode_tag` of the target)."""
    ip, port = target
    lip, lport = local
    uri = uri or f"sip:{ip}:{port}"
    branch = "z9hG4bK" + secrets.token_hex(8)
    lines = [
        f"OPTIONS {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {lip}:{lport};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:phonediag@{lip}>;tag={tag or encode_tag(ip, port)}",
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
    the headers (and reading folded header lines: :func:`_unfold`); None for anything that
    is not SIP, a status code out of 100-699 included (never raises: replies are
    untrusted). sipmessage is imported here, at the first answer, not at start-up (50 ms)."""
    from sipmessage import Message

    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if len(head) > MAX_HEAD or head.count(b"\n") > MAX_HEADER_LINES:
        return None
    if head.startswith(b"SIP/2.0 ") and not _STATUS.match(head):
        return None  # a status code is 3 digits, 1xx to 6xx (RFC 4475 bigcode)
    head = _unfold(head.replace(b"\r\n", b"\n").split(b"\n"))
    if _header_names(head) > MAX_HEADER_NAMES:
        return None
    try:
        return Message.parse(head + b"\r\n\r\n" + body[:MAX_BODY])
    except Exception:  # sipmessage raises ValueError, UnicodeDecodeError, IndexError...
        return None


def _unfold(lines: list[bytes]) -> bytes:
    """The start line and headers as sipmessage reads them (one header a line, its name
    right before the colon), CRLF-joined. RFC 3261 §7.3.1: a line starting with SP or HTAB
    continues the header above it (line break and whitespace stand for one SP), and
    whitespace may come before the colon (``TO :``, ``Content-Length   : 150``). Both are
    in RFC 4475's valid ``wsinv``, which sipmessage refused (tests/fuzz/torture)."""
    out: list[list[bytes]] = [[lines[0]]]
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and len(out) > 1:
            out[-1] += (b" ", line.lstrip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        out.append([name.rstrip(b" \t"), colon, value] if colon else [line])
    return b"\r\n".join(b"".join(parts) for parts in out)


def _header_names(head: bytes) -> int:
    """How many distinct header names ``head`` holds (its first line is no header)."""
    return len({line.partition(b":")[0].strip().lower() for line in head.split(b"\n")[1:]})


def parse_response(data: bytes) -> Response | None:
    """Parse a SIP response (see :func:`parse_message`); None for anything else."""
    from sipmessage import Response

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
        tag = resp.from_address.parameters.get("tag")
    except Exception:
        return None
    return tag if isinstance(tag, str) else None


def _reply(
    resp: Response, target, source, transport: str, start: float, end: float | None = None
) -> SipReply:
    return SipReply(
        target=target,
        source=source,
        transport=transport,
        code=resp.code,
        reason=str(resp.phrase)[:128],
        rtt_ms=((end or time.monotonic()) - start) * 1000,
        headers=_headers(resp),
    )


class _UdpSweep:
    """What one UDP sweep sent and heard, shared by the sockets it spreads probes over.

    A reply counts only if its From tag is exactly one this sweep sent: the tag names
    the target, so an answer from another address (NAT, several interfaces) is kept as
    the target's, with where it came from, and a forged or stale tag is ignored.

    While ``backlog`` is a list, datagrams are only kept there (parsing one costs far
    more than receiving it): :meth:`parse_backlog` reads them once the probes are out."""

    def __init__(self, targets: int) -> None:
        self.backlog: list[tuple[bytes, tuple, float]] | None = []
        self.backlog_bytes = 0
        self.expected = targets
        self.tags: dict[str, tuple[str, int]] = {}
        self.sent: dict[tuple[str, int], float] = {}
        self.replies: dict[tuple[str, int], SipReply] = {}
        self.final = 0
        self.ignored = 0  # datagrams that were not an answer to one of our probes
        self.done = asyncio.Event()

    def received(self, data: bytes, addr: tuple, when: float | None = None) -> None:
        if self.backlog is not None:
            if self.backlog_bytes < MAX_BACKLOG:  # a flood gets no further
                self.backlog_bytes += len(data)
                self.backlog.append((data, addr, time.monotonic()))
            return
        resp = parse_response(data)
        target = self.tags.get(_tag(resp) or "") if resp is not None else None
        if resp is None or target is None or target not in self.sent:
            self.ignored += 1
            return
        reply = _reply(resp, target, (addr[0], addr[1]), "udp", self.sent[target], when)
        old = self.replies.get(target)
        kept = reply if old is None or old.code < 200 <= reply.code else old
        if old is not None and kept is reply:  # its own source is no "other" (tests/fuzz)
            reply.also_from = [s for s in old.also_from if s != reply.source]
        self.replies[target] = kept
        other = old.source if kept is reply and old is not None else reply.source
        known = other == kept.source or other in kept.also_from
        if not known and len(kept.also_from) < MAX_ALSO_FROM:
            kept.also_from.append(other)
        if kept is reply and reply.code >= 200:
            self.final += 1
            if self.final >= self.expected:
                self.done.set()

    def parse_backlog(self) -> None:
        backlog, self.backlog = self.backlog or [], None
        for data, addr, when in backlog:
            self.received(data, addr, when)


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, sweep: _UdpSweep) -> None:
        self.sweep = sweep

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self.sweep.received(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable etc.
        pass


def _pacer(pace: Pace | None, rate: float) -> Pace:
    return pace if pace is not None else Pacer(rate)


async def sweep_udp(
    targets: list[tuple[str, int]],
    local_ip: str = "0.0.0.0",
    timeout: float = 1.5,
    rate: float = 500,
    *,
    pace: Pace | None = None,
    quiet: Pace | None = None,
) -> list[SipReply]:
    """Send one OPTIONS to every target; return when each has a final answer, or
    ``timeout`` after the last probe has left this host, whichever comes first.
    Answers are parsed once the probes are out (after ``quiet`` too, when given: the
    other senders sharing ``pace`` are done), so that parsing never delays a probe.

    Probes to addresses nobody answers ARP for wait in the kernel for about 3 s and are
    charged to the socket's send buffer meanwhile: :func:`agent.net.udp.open_sockets`
    sizes the buffers and spreads the probes so that no send ever stalls
    (peer-benchmark.md). ``pace`` (shared by every discovery method), else ``rate``
    packets per second, spaces the sends; nothing here blocks the event loop.
    """
    targets = list(dict.fromkeys(targets))
    if not targets:
        return []
    loop = asyncio.get_running_loop()
    pace = _pacer(pace, rate)
    sweep = _UdpSweep(len(targets))
    socks = udp.open_sockets(local_ip, len(targets))
    transports: list[asyncio.DatagramTransport] = []
    try:
        for s in socks:
            tr, _ = await loop.create_datagram_endpoint(lambda: _Collector(sweep), sock=s)
            transports.append(tr)
        lip = local_ip if local_ip != "0.0.0.0" else _source_ip_for(targets[0][0])
        for i, t in enumerate(targets):
            tr = transports[i % len(transports)]
            tag = encode_tag(*t)
            request = build_options(t, (lip, tr.get_extra_info("sockname")[1]), tag=tag)
            await pace()
            sweep.tags[tag] = t
            sweep.sent[t] = time.monotonic()
            tr.sendto(request, t)
        end = time.monotonic() + timeout
        await _drained(transports, timeout)
        if quiet is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quiet(), max(0.0, end - time.monotonic()))
        sweep.parse_backlog()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sweep.done.wait(), max(0.0, end - time.monotonic()))
    finally:
        for tr in transports:
            tr.close()
        for s in socks[len(transports) :]:
            s.close()
    return list(sweep.replies.values())


async def _drained(transports: list[asyncio.DatagramTransport], limit: float) -> None:
    """Wait (at most ``limit``) until asyncio holds no unsent probe in user space."""
    end = time.monotonic() + limit
    while any(tr.get_write_buffer_size() for tr in transports) and time.monotonic() < end:
        await asyncio.sleep(0.005)


async def _read_reply(reader: asyncio.StreamReader, limit: int) -> bytes | None:
    """The first whole message on a stream that is not a provisional response (those are
    skipped), reading at most ``limit`` bytes; None when the peer sends too much or closes
    early. Not parsed here: see :func:`query_tcp`."""
    buf = b""
    while len(buf) <= limit:
        chunk = await reader.read(4096)
        if not chunk:  # closed before a whole message (a truncated one is ignored)
            return None
        buf += chunk
        while True:
            end = _head_end(buf)
            if end is None:
                break
            length = _content_length(buf[:end])
            if len(buf) < end + length:
                break
            if not _PROVISIONAL.match(buf):
                return buf[: end + length]
            buf = buf[end + length :]
    return None


def _head_end(buf: bytes) -> int | None:
    """Where the body starts (after the blank line), or None while the head is incomplete."""
    crlf, lf = buf.find(b"\r\n\r\n"), buf.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return None
    if lf < 0 or 0 <= crlf < lf:
        return crlf + 4
    return lf + 2


def _content_length(head: bytes) -> int:
    m = _CONTENT_LENGTH.search(head)
    return min(int(m.group(1)), MAX_BODY) if m else 0


async def query_tcp(
    target: tuple[str, int],
    timeout: float = 1.5,
    limit: int = MAX_TCP_REPLY,
    local_ip: str | None = None,
    quiet: Pace | None = None,
) -> SipReply | None:
    """One OPTIONS over TCP: connect, send, read one reply of at most ``limit`` bytes,
    all within ``timeout``; None when nothing (or nothing SIP) answers in time. The reply
    is parsed after ``quiet`` (if given, at most ``timeout`` later): a sweep's parsing
    waits until its probes are out."""
    start = time.monotonic()
    local = (local_ip, 0) if local_ip and local_ip != "0.0.0.0" else None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*target, limit=limit, local_addr=local)
            try:
                lip, lport = writer.get_extra_info("sockname")[:2]
                writer.write(build_options(target, (lip, lport), "TCP"))
                await writer.drain()
                raw = await _read_reply(reader, limit)
                end = time.monotonic()
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError):
        return None
    if raw is None:
        return None
    if quiet is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(quiet(), timeout)
    resp = parse_response(raw)
    if resp is None or resp.code < 200:
        return None
    return _reply(resp, target, target, "tcp", start, end)


async def sweep_tcp(
    targets: list[tuple[str, int]],
    timeout: float = 1.5,
    concurrency: int | None = None,
    *,
    pace: Pace | None = None,
    rate: float = 0,
    local_ip: str | None = None,
    quiet: Pace | None = None,
) -> list[SipReply]:
    """:func:`query_tcp` every target, all in flight at once (as many as this process
    may hold sockets open), each connection attempt paced like a datagram and started in
    target order, so this sweep takes turns with the others sharing ``pace``; answers
    are parsed after ``quiet``, as in :func:`sweep_udp`."""
    targets = list(dict.fromkeys(targets))
    if not targets:
        return []
    pace = _pacer(pace, rate)
    sem = asyncio.Semaphore(concurrency or max(1, platform.open_files_budget() // 2))

    async def one(t: tuple[str, int]) -> SipReply | None:
        try:
            return await query_tcp(t, timeout, local_ip=local_ip, quiet=quiet)
        finally:
            sem.release()

    tasks: list[asyncio.Task[SipReply | None]] = []
    async with asyncio.TaskGroup() as tg:
        for t in targets:
            await sem.acquire()
            await pace()
            tasks.append(tg.create_task(one(t)))
    return [r for task in tasks if (r := task.result()) is not None]


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
