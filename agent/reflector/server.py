"""The reflector server (docs/reflector.md): SIP mirror over UDP and TCP, delayed replies.

Safety first: answers only go back to the request's source (UDP) or down its connection
(TCP); every answer is bounded (request + 512 bytes, or 64 bytes); requests over a rate,
pending or connection limit, oversized or malformed ones, get no answer. Nothing is
logged but counters and the source address of refused requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable

from agent.net import reflector as wire
from agent.reflector.limits import Gauge, Limits, RateLimiter

log = logging.getLogger("agent.reflector")

# The counters, in the order they are shown.
COUNTERS = (
    "udp_requests",  # datagrams received
    "tcp_requests",  # requests read from TCP connections
    "mirrored",  # mirror answers sent
    "delayed_acks",  # PDLT ACKs sent
    "delayed_late",  # PDLT LATEs sent
    "dropped_rate",  # over the per-IP rate
    "dropped_size",  # over the request size
    "dropped_malformed",  # not SIP, not PDLT
    "dropped_pending",  # over the pending delayed replies caps
    "tcp_connections",  # accepted and served
    "tcp_refused",  # over the connection caps
    "tcp_idle_closed",  # closed by the idle timeout
)

_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")
_LOG_EVERY_S = 60.0  # a refused source is logged at most once a minute
_LOG_TRACKED = 1024


def _clean(value: str) -> bool:
    return all(c == "\t" or c >= " " for c in value) and "\x7f" not in value


def mirror_answer(request: bytes, source: tuple) -> bytes | None:
    """The mirror answer to ``request`` from ``source``; None when it gets none."""
    if len(request) > wire.MAX_REQUEST:
        return None
    req = wire.parse_request(request)
    if req is None:
        return None
    tail = (
        f"{wire.SOURCE_HEADER}: {wire.format_source(source)}\r\n"
        f"Content-Type: {wire.MIRROR_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(request)}\r\n\r\n"
    ).encode()
    status = b"SIP/2.0 200 OK\r\n"
    budget = wire.MIRROR_OVERHEAD - len(status) - len(tail)
    values = {name: [v for v in req.headers.getlist(name) if _clean(v)] for name in _COPIED}
    kept: dict[str, list[str]] = {name: [] for name in _COPIED}
    # As many lines as fit, none that would not: the first of each header first (an answer
    # without its Call-ID is no SIP, yet five Via lines can fill the budget: RFC 4475
    # transports, tests/fuzz/torture), then the others; each header's lines in order.
    for others in (False, True):
        for name in _COPIED:
            for value in values[name][1:] if others else values[name][:1]:
                size = len(f"{name}: {value}\r\n".encode())
                if size <= budget:
                    kept[name].append(value)
                    budget -= size
    copied = b"".join(f"{name}: {v}\r\n".encode() for name in _COPIED for v in kept[name])
    answer = status + copied + tail + wire.xor(request)
    return answer if len(answer) <= len(request) + wire.MIRROR_OVERHEAD else None


def parse_pdlt(data: bytes) -> tuple[bytes, int] | None:
    """(token, delay ms) of a ``PDLT <token> <delay-ms>`` first line; None if not one."""
    first = data.split(b"\n", 1)[0]
    if first.endswith(b"\r"):
        first = first[:-1]
    m = wire.PDLT_REQUEST.fullmatch(first)
    if m is None or int(m[2]) > wire.MAX_DELAY_MS:
        return None
    return m[1], int(m[2])


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: Reflector) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        if self.transport is not None:
            self.owner._datagram(self.transport, data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP from a former client
        pass


class Reflector:
    """The server: bind with :meth:`start`, stop with :meth:`close`; :attr:`counters`."""

    def __init__(
        self,
        listen_ip: str,
        udp_ports: Iterable[int] = (5060, 5062),
        tcp_ports: Iterable[int] = (5060,),
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listen_ip = listen_ip
        self.udp_ports = tuple(dict.fromkeys(udp_ports))
        self.tcp_ports = tuple(dict.fromkeys(tcp_ports))
        self.limits = limits or Limits()
        self.clock = clock
        self.counters: Counter[str] = Counter({k: 0 for k in COUNTERS})
        self._rate = RateLimiter(
            self.limits.rate, self.limits.burst, self.limits.tracked_ips, clock
        )
        self._pending = Gauge(self.limits.pending_per_ip, self.limits.pending_total)
        self._conns = Gauge(self.limits.tcp_per_ip, self.limits.tcp_total)
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task] = set()
        self._logged: OrderedDict[str, float] = OrderedDict()
        self._closed = False

    # ------------------------------------------------------------ life cycle

    @property
    def listening(self) -> list[tuple[str, str, int]]:
        """(transport, ip, port) of every bound socket (ports as bound: 0 gives one)."""
        out = []
        for t in self._udp:
            ip, port = t.get_extra_info("sockname")[:2]
            out.append(("udp", ip, port))
        for s in self._tcp:
            for sock in s.sockets:
                ip, port = sock.getsockname()[:2]
                out.append(("tcp", ip, port))
        return out

    async def start(self) -> None:
        """Bind every port; on any failure nothing stays bound and OSError is raised."""
        loop = asyncio.get_running_loop()
        try:
            for port in self.udp_ports:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), local_addr=(self.listen_ip, port)
                )
                self._udp.append(transport)
            for port in self.tcp_ports:
                server = await asyncio.start_server(
                    self._connection,
                    self.listen_ip,
                    port,
                    limit=self.limits.max_request + 1,
                    reuse_address=True,
                )
                self._tcp.append(server)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        self._closed = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for server in self._tcp:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._tcp:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        for transport in self._udp:
            transport.close()
        self._tcp.clear()
        self._udp.clear()

    # ------------------------------------------------------------ shared checks

    def _refused(self, ip: str, counter: str) -> None:
        self.counters[counter] += 1
        now = self.clock()
        last = self._logged.pop(ip, None)
        if last is None or now - last >= _LOG_EVERY_S:
            log.info("refused %s (%s)", ip, counter)
            last = now
        self._logged[ip] = last
        while len(self._logged) > _LOG_TRACKED:
            self._logged.popitem(last=False)

    def _admit(self, ip: str, size: int) -> bool:
        """Rate and size checks common to every request."""
        if not self._rate.allow(ip):
            self._refused(ip, "dropped_rate")
            return False
        if size > self.limits.max_request:
            self._refused(ip, "dropped_size")
            return False
        return True

    # ------------------------------------------------------------ UDP

    def _datagram(self, transport: asyncio.DatagramTransport, data: bytes, addr: tuple) -> None:
        self.counters["udp_requests"] += 1
        ip = addr[0]
        if self._closed or not self._admit(ip, len(data)):
            return
        if data.startswith(b"PDLT"):
            self._delayed(transport, data, addr)
            return
        answer = mirror_answer(data, addr)
        if answer is None:
            self.counters["dropped_malformed"] += 1
            return
        transport.sendto(answer, addr)
        self.counters["mirrored"] += 1

    def _delayed(self, transport: asyncio.DatagramTransport, data: bytes, addr: tuple) -> None:
        parsed = parse_pdlt(data)
        if parsed is None:
            self.counters["dropped_malformed"] += 1
            return
        token, delay_ms = parsed
        ip = addr[0]
        if not self._pending.acquire(ip):
            self._refused(ip, "dropped_pending")
            return
        transport.sendto(b"PDLT %s ACK" % token, addr)
        self.counters["delayed_acks"] += 1
        key = self._next_timer
        self._next_timer += 1
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(
            delay_ms / 1000, self._late, key, transport, token, addr
        )

    def _late(self, key: int, transport: asyncio.DatagramTransport, token: bytes, addr) -> None:
        self._timers.pop(key, None)
        self._pending.release(addr[0])
        if self._closed or transport.is_closing():
            return
        transport.sendto(b"PDLT %s LATE" % token, addr)
        self.counters["delayed_late"] += 1

    # ------------------------------------------------------------ TCP

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        ip = peer[0] if peer else "?"
        if self._closed or not self._conns.acquire(ip):
            self._refused(ip, "tcp_refused")
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.counters["tcp_connections"] += 1
        try:
            await self._serve_connection(reader, writer, peer)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._conns.release(ip)
            if task is not None:
                self._tasks.discard(task)
            await _close(writer)

    async def _serve_connection(self, reader, writer, peer) -> None:
        buf = bytearray()
        while True:
            try:
                async with asyncio.timeout(self.limits.tcp_idle_s):
                    request = await self._read_request(reader, buf, peer[0])
                    if request is None:
                        return  # closed by the client, or malformed/oversized: close
                    self.counters["tcp_requests"] += 1
                    if not self._rate.allow(peer[0]):
                        self._refused(peer[0], "dropped_rate")
                        continue
                    answer = mirror_answer(request, peer)
                    if answer is None:
                        self.counters["dropped_malformed"] += 1
                        return
                    writer.write(answer)
                    await writer.drain()
                    self.counters["mirrored"] += 1
            except TimeoutError:
                self.counters["tcp_idle_closed"] += 1
                return

    async def _read_request(
        self, reader: asyncio.StreamReader, buf: bytearray, ip: str
    ) -> bytes | None:
        """One request framed by its blank line and Content-Length; None to close."""
        max_request = self.limits.max_request
        while True:
            while buf[:2] == b"\r\n" or buf[:1] == b"\n":  # keep-alive CRLFs between requests
                del buf[: 2 if buf[:2] == b"\r\n" else 1]
            end = _head_end(buf)
            if end is not None:
                break
            if len(buf) > max_request:
                self._refused(ip, "dropped_size")
                return None
            chunk = await reader.read(max_request + 1)
            if not chunk:
                return None
            buf += chunk
        req = wire.parse_request(bytes(buf[:end]))
        length = wire.number(req.headers.get("Content-Length") or "0") if req else None
        if req is None or length is None:
            self.counters["dropped_malformed"] += 1
            return None
        total = end + length
        if total > max_request:
            self._refused(ip, "dropped_size")
            return None
        while len(buf) < total:
            chunk = await reader.read(total - len(buf))
            if not chunk:
                return None
            buf += chunk
        request = bytes(buf[:total])
        del buf[:total]
        return request


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after the answers already written are flushed, but never wait long for it."""
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.CancelledError):
        writer.transport.abort()


def _head_end(buf: bytearray) -> int | None:
    """Index just past the blank line ending the headers (CRLF or LF), or None."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buf.find(sep)) >= 0]
    return min(ends) if ends else None


async def serve(
    listen_ip: str,
    udp_ports: Iterable[int] = (5060, 5062),
    tcp_ports: Iterable[int] = (5060,),
    stop: asyncio.Event | None = None,
    *,
    limits: Limits | None = None,
    ready: Callable[[Reflector], None] | None = None,
) -> dict[str, int]:
    """Run the reflector until ``stop`` is set (or the task is cancelled); the counters.

    Binding errors raise OSError before anything is served. ``ready`` is called once
    every socket is bound.
    """
    server = Reflector(listen_ip, udp_ports, tcp_ports, limits)
    await server.start()
    try:
        if ready is not None:
            ready(server)
        await (stop or asyncio.Event()).wait()
    finally:
        await server.close()
    return {k: server.counters[k] for k in COUNTERS}
