"""The SIP OPTIONS sweep with real sockets on loopback: fake phones on 127.0.0.x answering
over UDP and TCP, one answering from another address, garbage, silence; the sweep ends one
timeout after its last probe, keeps to the shared rate, and sends nothing out of scope."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import pytest

from agent import platform
from agent.config import Config
from agent.discovery import Context
from agent.discovery import sip as sip_discovery
from agent.net import sip
from agent.net.pacing import Pacer
from agent.scope import ScopedNetwork

UA = "Yealink SIP-T46S 66.86.0.15"


def answer(request: bytes, code: str = "200 OK", ua: str = UA, extra: str = "") -> bytes:
    """A phone's reply to ``request``: its Via, From (with our tag), Call-ID and CSeq."""
    head = request.decode().split("\r\n")
    keep = [h for h in head if h.split(":")[0] in ("Via", "From", "Call-ID", "CSeq")]
    lines = [
        f"SIP/2.0 {code}",
        *keep,
        "To: <sip:x@127.0.0.2>;tag=ph1",
        f"User-Agent: {ua}",
        "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE",
        "Supported: replaces, timer",
        "Contact: <sip:127.0.0.2:5060>",
        *([extra] if extra else []),
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


GARBAGE = [
    b"",
    b"\x00" * 64,
    b"\xff\xfe garbage \x80\x81",
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n",
    b"SIP/2.0 200 OK\r\n" + b"X-Junk: " + b"a" * 60000 + b"\r\n\r\n",  # huge
    b"SIP/2.0 200 OK\r\nFrom: <sip:a@b>;tag=00000000000000000000\r\n\r\n",  # a tag not ours
]


class FakePhone(asyncio.DatagramProtocol):
    """A UDP phone: ``mode`` is ok | other (answers from ``other``) | garbage | silent |
    provisional (100 then 200) | twice (from itself and from ``other``) | forged."""

    def __init__(self, mode: str = "ok", other=None) -> None:
        self.mode, self.other = mode, other
        self.received: list[tuple[float, tuple]] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.received.append((time.monotonic(), addr))
        out = self.transport
        if self.mode == "silent":
            return
        if self.mode == "garbage":
            for g in GARBAGE:
                out.sendto(g, addr)
            return
        if self.mode == "forged":  # our target's hex, but not the random part we sent
            tag = data.decode().split(";tag=")[1].split("\r\n")[0]
            out.sendto(answer(data.replace(tag.encode(), tag[:12].encode() + b"deadbeef")), addr)
            return
        if self.mode == "provisional":
            out.sendto(answer(data, "100 Trying"), addr)
        if self.mode == "other":
            out = self.other
        out.sendto(answer(data), addr)
        if self.mode == "twice":
            self.other.sendto(answer(data), addr)


async def udp_phone(ip: str, port: int, mode: str = "ok", other=None):
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(lambda: FakePhone(mode, other), (ip, port))


def free_port(ip: str = "127.0.0.2") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind((ip, 0))
        return u.getsockname()[1]


# --- the net layer: sweep_udp -------------------------------------------------------------


async def test_udp_sweep_keeps_final_answers_and_ignores_garbage_and_forgeries():
    loop = asyncio.get_running_loop()
    other, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.9", 0))
    port = free_port()
    phones = [
        await udp_phone("127.0.0.2", port, "provisional"),
        await udp_phone("127.0.0.3", port, "twice", other),
        await udp_phone("127.0.0.4", port, "garbage"),
        await udp_phone("127.0.0.5", port, "forged"),
    ]
    try:
        targets = [(f"127.0.0.{i}", port) for i in (2, 3, 4, 5)]
        replies = await sip.sweep_udp(targets, "127.0.0.1", timeout=0.4, rate=0)
    finally:
        for t, _ in phones:
            t.close()
        other.close()
    got = {r.target[0]: r for r in replies}
    assert set(got) == {"127.0.0.2", "127.0.0.3"}
    assert got["127.0.0.2"].code == 200  # the final answer replaces "100 Trying"
    assert got["127.0.0.2"].headers["allow"].startswith("INVITE")
    assert got["127.0.0.2"].headers["supported"] == "replaces, timer"
    assert got["127.0.0.3"].source == ("127.0.0.3", port)
    assert got["127.0.0.3"].also_from == [other.get_extra_info("sockname")]


async def test_udp_sweep_ends_one_timeout_after_the_last_send():
    loop = asyncio.get_running_loop()
    port = free_port()
    silent = [await udp_phone(f"127.0.0.{i}", port, "silent") for i in (2, 3, 4, 5, 6)]
    try:
        start = loop.time()
        replies = await sip.sweep_udp(
            [(f"127.0.0.{i}", port) for i in (2, 3, 4, 5, 6)],
            "127.0.0.1",
            timeout=0.3,
            pace=Pacer(20, burst=1),
        )
        elapsed = loop.time() - start
        last_probe = max(p.received[-1][0] for _, p in silent)
    finally:
        for t, _ in silent:
            t.close()
    assert replies == []
    # 5 probes at 20/s: the last leaves at 0.2 s; then one timeout, no fixed extra wait.
    assert 0.48 <= elapsed < 0.7, elapsed
    assert time.monotonic() - last_probe < 0.3 + 0.15


async def test_udp_sweep_returns_as_soon_as_every_target_answered():
    port = free_port()
    phones = [await udp_phone(f"127.0.0.{i}", port) for i in (2, 3)]
    try:
        start = time.monotonic()
        replies = await sip.sweep_udp([(f"127.0.0.{i}", port) for i in (2, 3)], timeout=5, rate=0)
        elapsed = time.monotonic() - start
    finally:
        for t, _ in phones:
            t.close()
    assert len(replies) == 2 and elapsed < 1


async def test_udp_sweep_paces_at_the_rate():
    port = free_port()
    transport, _ = await udp_phone("127.0.0.2", port, "silent")
    try:
        targets = [("127.0.0.2", port)] + [(f"127.0.0.{i}", 9) for i in range(3, 22)]
        pacer = Pacer(200, burst=4)
        await sip.sweep_udp(targets[:1], "127.0.0.1", timeout=0.05, pace=pacer)
        start = time.monotonic()
        await sip.sweep_udp(targets, "127.0.0.1", timeout=0.05, pace=pacer)
    finally:
        transport.close()
    # 20 probes at 200/s with a burst of 4: at least 16 intervals of 5 ms.
    assert time.monotonic() - start >= 16 / 200 + 0.05 - 0.01
    assert pacer.sent == 21


async def test_udp_sweep_spreads_probes_over_sockets_when_one_buffer_is_small(monkeypatch):
    monkeypatch.setattr(platform, "set_send_buffer", lambda sock, size: 64 * 1024)
    port = free_port()
    phones = [await udp_phone(f"127.0.0.{i}", port, "silent") for i in range(2, 12)]
    try:
        targets = [(f"127.0.0.{i}", port) for i in range(2, 12)] * 1
        targets += [(f"127.0.0.{i}", 9) for i in range(12, 102)]  # 100 probes
        await sip.sweep_udp(targets, "127.0.0.1", timeout=0.05, rate=0)
    finally:
        for t, _ in phones:
            t.close()
    ports = {p.received[0][1][1] for _, p in phones}
    assert len(ports) == sip.plan_sockets(100, 64 * 1024) == 4


def test_socket_plan_and_send_buffer():
    assert sip.plan_sockets(254, 0) == 1
    assert sip.plan_sockets(254, 8 << 20) == 1
    assert sip.plan_sockets(254, 212992 * 2) == 2
    assert sip.plan_sockets(100_000, 212992) == sip.MAX_SOCKETS
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        granted = platform.set_send_buffer(s, 4 << 20)
        assert granted >= s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) > 0
        if platform.raw_socket_rights():  # root here: SO_SNDBUFFORCE passes wmem_max
            assert granted >= 4 << 20


# --- the net layer: TCP --------------------------------------------------------------------


async def tcp_phone(ip: str, port: int, chunks):
    """A TCP phone sending ``chunks(request)`` (a list of bytes, or None for silence)."""

    async def handle(reader, writer):
        try:
            data = await reader.readuntil(b"\r\n\r\n")
            out = chunks(data)
            if out is None:
                await asyncio.sleep(10)
            for c in out or []:
                writer.write(c)
                await writer.drain()
                await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, ip, port)


@pytest.mark.parametrize(
    "chunks, code",
    [
        (lambda r: [answer(r)], 200),
        (lambda r: [answer(r)[:40], answer(r)[40:]], 200),  # split across segments
        (lambda r: [answer(r).replace(b"\r\n", b"\n")], 200),  # LF-only
        (lambda r: [answer(r, "100 Trying") + answer(r, "486 Busy Here")], 486),
        (
            lambda r: [answer(r).replace(b"Content-Length: 0", b"Content-Length: 5") + b"hello"],
            200,
        ),
        (lambda r: [answer(r)[:60]], None),  # truncated, then closed
        (lambda r: [b"\x00\xff" * 40], None),
        (lambda r: [b"HTTP/1.1 400 Bad Request\r\n\r\n"], None),
        (lambda r: [b"SIP/2.0 200 OK\r\nX: " + b"a" * 200_000], None),  # endless header
        (lambda r: None, None),  # silent
    ],
)
async def test_tcp_replies_good_and_bad(chunks, code):
    server = await tcp_phone("127.0.0.5", 0, chunks)
    port = server.sockets[0].getsockname()[1]
    async with server:
        start = time.monotonic()
        r = await sip.query_tcp(("127.0.0.5", port), timeout=0.5)
        assert time.monotonic() - start < 0.5 + 0.2
    assert (r.code if r else None) == code
    if r:
        assert r.transport == "tcp" and r.agent == UA


# --- the discovery method ------------------------------------------------------------------


def context(port: int, **kw) -> Context:
    net = ScopedNetwork(ipaddress.ip_network("127.0.0.0/29"), "lo", "127.0.0.1")
    return Context(Config(sip_ports=[port], sweep_timeout=0.4, **kw), [net])


async def test_discover_attributes_answers_by_tag_and_never_makes_a_device_out_of_scope():
    loop = asyncio.get_running_loop()
    # 127.0.0.9 is outside 127.0.0.0/29: a NATed or multi-homed phone answers from there.
    outside = FakePhone("silent")
    other, _ = await loop.create_datagram_endpoint(lambda: outside, ("127.0.0.9", 0))
    port = free_port()
    phones = [
        await udp_phone("127.0.0.2", port),
        await udp_phone("127.0.0.3", port, "other", other),
        await udp_phone("127.0.0.4", port, "garbage"),
        await udp_phone("127.0.0.5", port, "silent"),
    ]
    tcp = await tcp_phone("127.0.0.2", port, lambda r: [answer(r, ua="Yealink TCP")])
    garbage_tcp = await tcp_phone("127.0.0.4", port, lambda r: [b"\x00" * 100])
    ctx = context(port)
    try:
        start = time.monotonic()
        sightings = await sip_discovery.discover(ctx)
        elapsed = time.monotonic() - start
    finally:
        for t, _ in phones:
            t.close()
        other.close()
        tcp.close()
        garbage_tcp.close()
    got = {s.ip: s.attrs for s in sightings}
    assert set(got) == {"127.0.0.2", "127.0.0.3"}
    assert got["127.0.0.2"][f"udp.{port}"] == "200 OK"
    assert got["127.0.0.2"][f"tcp.{port}"] == "200 OK"
    assert got["127.0.0.2"]["agent"] == UA  # the first answer's
    assert got["127.0.0.2"]["allow"].startswith("INVITE")
    assert f"udp.{port}.from" not in got["127.0.0.2"]
    src = other.get_extra_info("sockname")
    assert got["127.0.0.3"][f"udp.{port}.from"] == f"{src[0]}:{src[1]}"
    assert got["127.0.0.3"][f"udp.{port}.from_scope"] == "out"
    # Every in-scope host got one UDP probe and one TCP attempt through the shared limiter;
    # the address outside the scope got nothing.
    assert ctx.pacer.sent == 2 * len(ctx.targets()) == 2 * 5
    assert outside.received == []
    assert elapsed < 0.4 + 0.5


def test_context_scope_helpers():
    ctx = context(5060)
    assert ctx.targets() == [f"127.0.0.{i}" for i in range(2, 7)]
    assert ctx.scoped(["127.0.0.2", "127.0.0.9", "10.0.0.1", "junk"]) == ["127.0.0.2"]
    assert ctx.pacer.rate == Config().rate
