"""The hostile scenario's neighbours, served by the fleet process: one behaviour per host.

``start(host, community)`` binds what ``host["behaviour"]`` (lab/hostile.py) needs, on the
host's own address, and returns what the process must keep alive (transports, servers,
tasks). The lab's nftables (lab/topology.py ``fleet_firewall``) does the rest: everything
to ``silent`` is dropped, and UDP to ``reset``.

- ``silent``: nothing is bound (only the kernel's ARP answers);
- ``slow``: SIP over UDP and TCP (5060), SNMP (161) and HTTP (80) answered right, each
  ``delay_s`` late;
- ``garbage``: every datagram to 5060 or 161 gets random bytes back, every TCP connection to
  5060 or 80 gets random bytes at once and on every read (some of it shaped like the start
  of an answer: ``SIP/2.0 200 OK``, ``HTTP/1.1 200 OK``, a BER SEQUENCE);
- ``huge``: SIP answers of ``size`` bytes (a body over UDP, one long header over TCP), an
  SNMP answer with a ``size``-byte sysDescr, and over HTTP, in turn, a page of ``size`` bytes
  and a chunked body that never ends (it streams until the client hangs up);
- ``reset``: TCP connections to 5060 and 80 are accepted and reset at once (SO_LINGER 0,
  then close: RST);
- ``outscope``: SIP over UDP and SNMP answered from ``source``, an address outside the
  office's scope, with a Contact naming that address;
- ``mdns-flood``: mDNS answers for ever-new DNS-SD instances, every ``interval_s``, whose
  address records name public addresses or the real phones (their TXT claiming another
  vendor), and junk service types (hostile.toml ``[flood]``).

Every handler catches its own errors: the other hosts go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

from lab.services import fleet_sip, fleet_snmp

SIP_PORT, SNMP_PORT, HTTP_PORT, MDNS_PORT = 5060, 161, 80, 5353
MDNS_GROUP = ("224.0.0.251", MDNS_PORT)
TCP_IDLE = 10.0
CHUNK = 16 * 1024  # the endless body's chunk
MAX_REQUEST = 64 * 1024  # bytes of a request head read at most
MDNS_TTL = 120
OUT_OF_SCOPE_MARK = "OUT-OF-SCOPE"  # logged when a packet reaches outscope's other address

log = logging.getLogger("fleet.hostile")


# -- helpers -----------------------------------------------------------------------------------
class Udp(asyncio.DatagramProtocol):
    """A UDP socket whose datagrams go to ``handle(data, addr, transport)``."""

    def __init__(self, name: str, handle: Callable[[bytes, tuple[str, int], Any], None]) -> None:
        self.name = name
        self.handle = handle
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.handle(data, addr, self.transport)
        except Exception:
            log.exception("%s from %s", self.name, addr)

    def error_received(self, exc: Exception) -> None:
        pass


async def _udp(ip: str, port: int, name: str, handle: Callable[..., None]) -> Any:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Udp(name, handle), local_addr=(ip, port)
    )
    return transport


def _send(transport: Any, data: bytes | None, addr: tuple[str, int]) -> None:
    if data and transport is not None and not transport.is_closing():
        transport.sendto(data, addr)


async def _tcp(ip: str, port: int, name: str, handle: Callable[..., Any]) -> Any:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.LimitOverrunError:
            pass
        except Exception:
            log.exception("%s", name)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    return await asyncio.start_server(guarded, ip, port, backlog=64, limit=MAX_REQUEST)


async def _read_sip(reader: asyncio.StreamReader) -> bytes:
    """One SIP request from a stream (head and body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TCP_IDLE)
    length = min(fleet_sip.content_length(head), MAX_REQUEST)
    body = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE) if length else b""
    return head + body


async def _read_http(reader: asyncio.StreamReader) -> bytes:
    """One HTTP request head (a body, if any, is not read)."""
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TCP_IDLE)


def _sip_answer(
    host: dict[str, Any], data: bytes, addr: tuple[str, int], tcp: bool = False
) -> bytes:
    reply = fleet_sip.answer(
        data,
        ip=host["ip"],
        user_agent=host["user_agent"],
        source=addr,
        transport="TCP" if tcp else "UDP",
    )
    return reply or b""


def _page(host: dict[str, Any], body: bytes, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nServer: {host['model']} web server\r\n"
        f"Content-Type: text/html\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _small_page(host: dict[str, Any]) -> bytes:
    return f"<html><head><title>{host['model']}</title></head><body></body></html>".encode()


def _mib(host: dict[str, Any], sys_descr: str | None = None) -> fleet_snmp.Mib:
    snmp = dict(host["snmp"])
    if sys_descr is not None:
        snmp["sys_descr"] = sys_descr
    return fleet_snmp.host_mib({**host, "kind": "phone", "snmp": snmp})


# -- behaviours --------------------------------------------------------------------------------
async def slow(host: dict[str, Any], community: str) -> list[Any]:
    """Right answers, ``delay_s`` late."""
    loop = asyncio.get_running_loop()
    ip, delay = host["ip"], float(host["delay_s"])
    mib = _mib(host)

    def sip_udp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        loop.call_later(delay, _send, transport, _sip_answer(host, data, addr), addr)

    def snmp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        loop.call_later(delay, _send, transport, fleet_snmp.answer(data, mib, community), addr)

    async def sip_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        while True:
            request = await _read_sip(reader)
            await asyncio.sleep(delay)
            writer.write(_sip_answer(host, request, (peer[0], peer[1]), tcp=True))
            await writer.drain()

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_http(reader)
        await asyncio.sleep(delay)
        writer.write(_page(host, _small_page(host)))
        await writer.drain()

    return [
        await _udp(ip, SIP_PORT, "slow sip/udp", sip_udp),
        await _udp(ip, SNMP_PORT, "slow snmp", snmp),
        await _tcp(ip, SIP_PORT, "slow sip/tcp", sip_tcp),
        await _tcp(ip, HTTP_PORT, "slow http", http),
    ]


GARBAGE_HEADS = (b"", b"SIP/2.0 200 OK\r\n", b"HTTP/1.1 200 OK\r\n", b"\x30\x82")


def garbage_bytes(limit: int, rng: random.Random | None = None) -> bytes:
    """1..``limit`` random bytes, sometimes after the start of a plausible answer."""
    rng = rng or random.Random()
    head = rng.choice(GARBAGE_HEADS)
    return head + os.urandom(rng.randint(1, max(1, limit - len(head))))


async def garbage(host: dict[str, Any], community: str) -> list[Any]:
    """Random bytes for every datagram and every TCP connection."""
    ip, limit = host["ip"], int(host["garbage_max"])
    rng = random.Random()

    def udp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        _send(transport, garbage_bytes(limit, rng), addr)

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = 0
        while sent < 16 * limit:  # then hang up
            chunk = garbage_bytes(limit, rng)
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
            if not await asyncio.wait_for(reader.read(4096), TCP_IDLE):
                return

    return [
        await _udp(ip, SIP_PORT, "garbage sip/udp", udp),
        await _udp(ip, SNMP_PORT, "garbage snmp", udp),
        await _tcp(ip, SIP_PORT, "garbage sip/tcp", tcp),
        await _tcp(ip, HTTP_PORT, "garbage http", tcp),
    ]


def huge_sip(host: dict[str, Any], data: bytes, addr: tuple[str, int], tcp: bool) -> bytes:
    """The right SIP answer made ``size`` bytes long: a body over UDP, one header over TCP."""
    reply = _sip_answer(host, data, addr, tcp)
    if not reply:
        return b""
    size = int(host["size"])
    head = reply.removesuffix(b"Content-Length: 0\r\n\r\n")
    if tcp:
        pad = b"X-Padding: " + b"x" * max(0, size - len(reply) - 13) + b"\r\n"
        return head + pad + b"Content-Length: 0\r\n\r\n"
    fields = b"Content-Type: text/plain\r\nContent-Length: 00000\r\n\r\n"
    body = b"0123456789abcdef" * (max(0, size - len(head) - len(fields)) // 16)
    fields = f"Content-Type: text/plain\r\nContent-Length: {len(body):05d}\r\n\r\n".encode()
    return head + fields + body


async def huge(host: dict[str, Any], community: str) -> list[Any]:
    """``size``-byte answers; over HTTP a big page and an endless body in turn."""
    ip, size = host["ip"], int(host["size"])
    mib = _mib(host, sys_descr=f"{host['user_agent']} " + "A" * (size - 200))
    requests = itertools.count(1)

    def sip_udp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        _send(transport, huge_sip(host, data, addr, tcp=False), addr)

    def snmp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        _send(transport, fleet_snmp.answer(data, mib, community), addr)

    async def sip_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        while True:
            request = await _read_sip(reader)
            writer.write(huge_sip(host, request, (peer[0], peer[1]), tcp=True))
            await writer.drain()

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_http(reader)
        if next(requests) % 2:
            row = b"<tr><td>status</td><td>&nbsp;</td></tr>\n"
            body = b"<html><body><table>\n" + row * (size // len(row)) + b"</table></body></html>"
            writer.write(_page(host, body))
            await writer.drain()
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"<p>" + b"z" * (CHUNK - 8) + b"</p>\n"
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:  # until the client hangs up (a write then fails)
            writer.write(frame)
            await asyncio.wait_for(writer.drain(), TCP_IDLE)

    return [
        await _udp(ip, SIP_PORT, "huge sip/udp", sip_udp),
        await _udp(ip, SNMP_PORT, "huge snmp", snmp),
        await _tcp(ip, SIP_PORT, "huge sip/tcp", sip_tcp),
        await _tcp(ip, HTTP_PORT, "huge http", http),
    ]


async def reset(host: dict[str, Any], community: str) -> list[Any]:
    """Accept, then reset: SO_LINGER 0 and close sends a RST instead of a FIN."""

    async def rst(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    return [
        await _tcp(host["ip"], SIP_PORT, "reset sip/tcp", rst),
        await _tcp(host["ip"], HTTP_PORT, "reset http", rst),
    ]


async def outscope(host: dict[str, Any], community: str) -> list[Any]:
    """SIP (UDP) and SNMP heard on the host's address, answered from ``source``."""
    ip, source = host["ip"], host["source"]
    mib = _mib(host)
    away = {port: await _udp(source, port, f"outscope {port}", _heard) for port in (5060, 161)}
    as_source = {**host, "ip": source}

    def sip_udp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        _send(away[SIP_PORT], _sip_answer(as_source, data, addr), addr)

    def snmp(data: bytes, addr: tuple[str, int], transport: Any) -> None:
        _send(away[SNMP_PORT], fleet_snmp.answer(data, mib, community), addr)

    return [
        *away.values(),
        await _udp(ip, SIP_PORT, "outscope sip/udp", sip_udp),
        await _udp(ip, SNMP_PORT, "outscope snmp", snmp),
    ]


def _heard(data: bytes, addr: tuple[str, int], transport: Any) -> None:
    """Something reached the out-of-scope address itself: log it (the test reads the log)."""
    here = transport.get_extra_info("sockname") if transport is not None else ("?", "?")
    log.warning("%s %s:%s got %d bytes from %s:%s", OUT_OF_SCOPE_MARK, *here[:2], len(data), *addr)


# -- mDNS flood --------------------------------------------------------------------------------
def flood_packets(host: dict[str, Any]) -> Iterator[bytes]:
    """The flood's packets, for ever: each one ``per_packet`` new instances (PTR, SRV, TXT, A)
    and, every tenth, a batch of junk service types in _services._dns-sd._udp."""
    from zeroconf import DNSAddress, DNSOutgoing, DNSPointer, DNSService, DNSText
    from zeroconf.const import (
        _CLASS_IN,
        _CLASS_UNIQUE,
        _FLAGS_AA,
        _FLAGS_QR_RESPONSE,
        _TYPE_A,
        _TYPE_PTR,
        _TYPE_SRV,
        _TYPE_TXT,
    )

    spec = host["flood"]
    unique = _CLASS_IN | _CLASS_UNIQUE
    addresses: list[tuple[str, dict[str, Any] | None]] = [(a, None) for a in spec["outside"]]
    for target in spec["targets"]:
        addresses += [(target["ip"], claim) for claim in target["claims"]]
    places = itertools.cycle(addresses)
    types = itertools.cycle(spec["types"])
    junk = itertools.cycle(range(spec["junk_types"]))
    serial = itertools.count(1)
    for n in itertools.count():
        out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
        for _ in range(spec["per_packet"]):
            i = next(serial)
            address, claim = next(places)
            kind = f"{next(types)}.local."
            label = f"{claim['name']} {i:06X}" if claim else f"Phone {i:06X}"
            instance = f"{label}.{kind}"
            server = f"spoof-{i:06x}.local."
            txt = {"txtvers": "1"}
            if claim:
                mac = f"{claim['mac_prefix']}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
                txt.update(vendor=claim["vendor"], model=claim["model"], fw=claim["fw"], mac=mac)
            text = b"".join(
                bytes([len(item)]) + item for item in (f"{k}={v}".encode() for k, v in txt.items())
            )
            port = 5060 if kind.startswith("_sip") else 80
            out.add_answer_at_time(DNSPointer(kind, _TYPE_PTR, _CLASS_IN, MDNS_TTL, instance), 0)
            out.add_answer_at_time(
                DNSService(instance, _TYPE_SRV, unique, MDNS_TTL, 0, 0, port, server), 0
            )
            out.add_answer_at_time(DNSText(instance, _TYPE_TXT, unique, MDNS_TTL, text), 0)
            out.add_answer_at_time(
                DNSAddress(server, _TYPE_A, unique, MDNS_TTL, socket.inet_aton(address)), 0
            )
        if n % 10 == 0:
            for _ in range(8):
                name = f"_junk{next(junk)}._tcp.local."
                out.add_answer_at_time(
                    DNSPointer(
                        "_services._dns-sd._udp.local.", _TYPE_PTR, _CLASS_IN, MDNS_TTL, name
                    ),
                    0,
                )
        yield from out.packets()


async def mdns_flood(host: dict[str, Any], community: str) -> list[Any]:
    """Send the flood from ip:5353 to the mDNS group, for ever."""
    loop = asyncio.get_running_loop()
    ip = host["ip"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, MDNS_PORT))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Udp("mdns-flood", lambda *_: None), sock=sock
    )
    interval = float(host["flood"]["interval_s"])

    async def send() -> None:
        sent = 0
        for packet in flood_packets(host):
            try:
                transport.sendto(packet, MDNS_GROUP)
                sent += 1
            except OSError as exc:
                log.warning("mdns-flood %s: %s", ip, exc)
            if sent % 3000 == 0:
                log.info("mdns-flood %s: %d packets sent", ip, sent)
            await asyncio.sleep(interval)

    return [transport, asyncio.create_task(send())]


BEHAVIOURS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "silent": lambda host, community: _nothing(),
    "slow": slow,
    "garbage": garbage,
    "huge": huge,
    "reset": reset,
    "outscope": outscope,
    "mdns-flood": mdns_flood,
}


async def _nothing() -> list[Any]:
    return []


async def start(host: dict[str, Any], community: str) -> list[Any]:
    """Bind ``host``'s behaviour; what to keep alive (transports, servers, tasks)."""
    return await BEHAVIOURS[host["behaviour"]](host, community)
