"""The reflector (docs/reflector.md), server and client, over loopback.

The server runs in-process on 127.0.0.2 (UDP 15060 and 15062, TCP 15060); clients use
other 127.0.0.x addresses when a test needs several source IPs. A small UDP "NAT" in
the test (a relay with its own outside address, an optional SIP ALG and an optional
mapping timeout) stands in for the office router.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.net import reflector as client
from agent.net.sip import parse_response
from agent.reflector import COUNTERS, Limits, Reflector, serve
from agent.reflector.limits import Gauge, RateLimiter
from agent.reflector.server import mirror_answer

HOST = "127.0.0.2"
UDP, UDP2, TCP = 15060, 15062, 15060
CLIENT = "127.0.0.1"
PRIVATE, PUBLIC = "10.66.0.100", "100.64.66.2"
EXE = str(Path(sys.executable).with_name("phonediag"))


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def no_errors_logged(caplog):
    """No exception in a callback or a task (asyncio logs those as errors): no traceback."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def start():
    """start(limits=None, clock=None) -> a running Reflector on HOST; closed afterwards."""
    servers: list[Reflector] = []

    async def _start(limits: Limits | None = None, clock=None) -> Reflector:
        s = Reflector(HOST, (UDP, UDP2), (TCP,), limits, clock or time.monotonic)
        await s.start()
        servers.append(s)
        return s

    yield _start
    for s in servers:
        await s.close()


class Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait((time.monotonic(), data, addr))

    def send(self, data: bytes, port: int = UDP) -> None:
        self.transport.sendto(data, (HOST, port))

    async def get(self, timeout: float):
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def all(self, quiet: float = 0.2) -> list[bytes]:
        """Every datagram until none comes for ``quiet`` seconds."""
        out = []
        while (got := await self.get(quiet)) is not None:
            out.append(got[1])
        return out

    @property
    def port(self) -> int:
        return self.transport.get_extra_info("sockname")[1]


@pytest.fixture
async def udp():
    """udp(local_ip=CLIENT) -> a raw UDP client socket (Inbox); closed afterwards."""
    opened = []

    async def _udp(local_ip: str = CLIENT) -> Inbox:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(Inbox, local_addr=(local_ip, 0))
        opened.append(transport)
        return proto

    yield _udp
    for t in opened:
        t.close()


def options(local_port: int, local_ip: str = PRIVATE) -> bytes:
    return client.alg_probe_request("OPTIONS", local_ip, local_port, (HOST, UDP))


def check_answer_size(answer: bytes, request: bytes) -> None:
    assert len(answer) <= len(request) + 512


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head)[1])
    return head + await reader.readexactly(length)


def linux_alg(msg: bytes, private: str = PRIVATE, public: str = PUBLIC) -> bytes:
    """What the kernel's SIP helper does to a request: the private address becomes the
    public one in Via, Contact and the SDP c= line, and Content-Length follows."""
    head, _, body = msg.partition(b"\r\n\r\n")
    p, q = private.encode(), public.encode()
    lines = [
        ln.replace(p, q) if ln.lower().startswith((b"via:", b"contact:")) else ln
        for ln in head.split(b"\r\n")
    ]
    body = b"\r\n".join(
        ln.replace(p, q) if ln.startswith(b"c=") else ln for ln in body.split(b"\r\n")
    )
    lines = [
        b"Content-Length: %d" % len(body) if ln.startswith(b"Content-Length:") else ln
        for ln in lines
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def header(msg: bytes, name: str) -> str:
    return re.search(rf"^{name}: (.*?)\r$".encode(), msg, re.M)[1].decode()


def sdp(msg: bytes, kind: str) -> str:
    return re.search(rf"^{kind}=(.*?)\r$".encode(), msg, re.M)[1].decode()


class Nat:
    """A UDP NAT on loopback: clients talk to ``inside``; each client gets its own socket
    on ``outside_ip`` (a mapping), forgotten after ``timeout`` s without traffic. With
    ``alg``, requests going out have PRIVATE rewritten to PUBLIC (Via, Contact, SDP c=)
    and answers coming back have it restored in Via/Contact, like a real SIP ALG."""

    def __init__(self, inside, outside_ip, upstream, timeout=None, alg=False) -> None:
        self.inside, self.outside_ip, self.upstream = inside, outside_ip, upstream
        self.timeout, self.alg = timeout, alg
        self.maps: dict = {}
        self.delivered: list[bytes] = []
        self.tasks: set = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.t, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_inside), local_addr=self.inside
        )

    def close(self) -> None:
        self.t.close()
        for m in self.maps.values():
            if m["t"].done():
                m["t"].result()[0].close()

    def _from_inside(self, data: bytes, addr) -> None:
        task = asyncio.ensure_future(self._out(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _out(self, data: bytes, client_addr) -> None:
        m = self.maps.get(client_addr)
        if m is None or m["dead"]:
            loop = asyncio.get_running_loop()
            m = {"dead": False, "last": time.monotonic()}
            m["t"] = asyncio.ensure_future(
                loop.create_datagram_endpoint(
                    lambda: _Side(lambda d, a: self._in(m, client_addr, d)),
                    local_addr=(self.outside_ip, 0),
                )
            )
            self.maps[client_addr] = m
        transport, _ = await m["t"]
        m["last"] = time.monotonic()
        transport.sendto(linux_alg(data) if self.alg else data, self.upstream)

    def _in(self, m: dict, client_addr, data: bytes) -> None:
        now = time.monotonic()
        if m["dead"] or (self.timeout is not None and now - m["last"] > self.timeout):
            m["dead"] = True  # the mapping is gone: the answer is dropped
            return
        m["last"] = now
        if self.alg:
            head, sep, body = data.partition(b"\r\n\r\n")
            head = head.replace(PUBLIC.encode(), PRIVATE.encode())
            data = head + sep + body
        self.delivered.append(data)
        self.t.sendto(data, client_addr)


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_data) -> None:
        self.on_data = on_data

    def datagram_received(self, data, addr) -> None:
        self.on_data(data, addr)


# ---------------------------------------------------------------- mirror


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS", "INVITE"])
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_mirror_round_trip_is_byte_exact(start, method, transport):
    server = await start()
    for local_port in (41000, 41000, 41002):  # the same port twice in a row: it is freed
        req = client.alg_probe_request(method, CLIENT, local_port, (HOST, UDP), transport)
        m = await client.mirror(HOST, UDP, req, transport, CLIENT, local_port, timeout=1.0)
        assert m is not None
        assert m.sent == req and m.arrived == req
        assert m.source == (CLIENT, local_port)
        assert client.sip_diff(m.sent, m.arrived) == []
    assert server.counters["mirrored"] == 3


async def test_mirror_of_a_binary_body_and_lf_only_request(start):
    await start()
    body = bytes(range(256)) + b"\r\n\r\n" + bytes(range(255, -1, -1))
    req = (
        b"MESSAGE sip:x@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"CSeq: 7 MESSAGE\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    lf_only = b"OPTIONS sip:127.0.0.2 SIP/2.0\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
    for transport in ("udp", "tcp"):
        for r in (req, lf_only):
            m = await client.mirror(HOST, UDP, r, transport, CLIENT, timeout=1.0)
            assert m is not None and m.arrived == r


async def test_answer_copies_headers_and_names_the_source(start, udp):
    await start()
    sock = await udp()
    req = client.alg_probe_request("INVITE", PRIVATE, sock.port, (HOST, UDP))
    sock.send(req)
    _at, answer, addr = await sock.get(1.0)
    assert addr == (HOST, UDP)
    check_answer_size(answer, req)
    resp = parse_response(answer)
    assert resp.code == 200
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        assert resp.headers.get(name) == header(req, name)
    assert resp.headers.get("X-Phonediag-Source") == f"{CLIENT}:{sock.port}"
    assert resp.headers.get("Content-Type") == "application/x-phonediag-mirror"
    assert resp.headers.get("Content-Length") == str(len(req))
    assert bytes(b ^ 0x5A for b in resp.body) == req
    assert PRIVATE.encode() not in resp.body  # nothing an ALG could recognise on the way back
    # Compact forms are copied under their full names.
    compact = b"OPTIONS sip:127.0.0.2 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060\r\ni: abc\r\n\r\n"
    sock.send(compact)
    resp = parse_response((await sock.get(1.0))[1])
    assert resp.headers.get("Via") == "SIP/2.0/UDP 10.0.0.1:5060" and resp.call_id == "abc"


async def test_tcp_connection_carries_several_requests(start):
    server = await start()
    reader, writer = await asyncio.open_connection(HOST, TCP, local_addr=(CLIENT, 0))
    port = writer.get_extra_info("sockname")[1]
    a = client.alg_probe_request("REGISTER", PRIVATE, port, (HOST, TCP), "tcp")
    b = client.alg_probe_request("INVITE", PRIVATE, port, (HOST, TCP), "tcp")
    writer.write(b"\r\n" + a + b)  # a keep-alive CRLF, then two requests in one write
    for sent in (a, b):
        answer = await asyncio.wait_for(read_answer(reader), 1.0)
        check_answer_size(answer, sent)
        resp = parse_response(answer)
        assert resp.headers.get("X-Phonediag-Source") == f"{CLIENT}:{port}"
        assert client.xor(resp.body) == sent
    writer.close()
    assert server.counters["tcp_requests"] == 2


async def test_answer_never_exceeds_request_plus_512(start, udp):
    await start()
    sock = await udp()
    vias = "".join(f"Via: SIP/2.0/UDP 10.0.0.{i}:5060;branch=z9hG4bK{i:04d}\r\n" for i in range(70))
    req = (
        f"OPTIONS sip:127.0.0.2 SIP/2.0\r\n{vias}From: <sip:a@10.0.0.1>;tag=1\r\n"
        "To: <sip:127.0.0.2>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    assert 3000 < len(req) <= 4096
    sock.send(req)
    answer = (await sock.get(1.0))[1]
    check_answer_size(answer, req)
    assert client.xor(parse_response(answer).body) == req  # the body is whole, always
    m = await client.mirror(HOST, UDP, req, "tcp", CLIENT, timeout=1.0)
    assert m is not None and m.arrived == req
    # Whatever comes in, an answer stays within the bound (and nothing raises).
    rng = random.Random(5060)
    base = client.alg_probe_request("INVITE", PRIVATE, 5060, (HOST, UDP))
    for _ in range(500):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = bytes(data[: rng.randint(10, len(data))]) * rng.choice((1, 1, 2, 20))
        answer = mirror_answer(data, (CLIENT, 5060))
        assert answer is None or len(answer) <= len(data) + 512
        client.sip_diff(base, data)


# ---------------------------------------------------------------- sip_diff and the ALG


def test_sip_diff_finds_exactly_what_the_alg_rewrote():
    sent = client.alg_probe_request("INVITE", PRIVATE, 5060, ("203.0.113.5", 5060))
    for public in (PUBLIC, "203.0.113.250"):  # the second changes the Content-Length too
        arrived = linux_alg(sent, public=public)
        assert client.sip_diff(sent, arrived) == [
            ("Via", header(sent, "Via"), header(sent, "Via").replace(PRIVATE, public)),
            ("Contact", header(sent, "Contact"), header(sent, "Contact").replace(PRIVATE, public)),
            ("SDP c=", f"IN IP4 {PRIVATE}", f"IN IP4 {public}"),
        ]
    assert header(arrived, "Content-Length") != header(sent, "Content-Length")


def test_sip_diff_is_tolerant_of_case_compact_forms_and_line_ends():
    sent = client.alg_probe_request("INVITE", PRIVATE, 5060, ("203.0.113.5", 5060))
    head, _, body = sent.partition(b"\r\n\r\n")
    renamed = (
        head.replace(b"Via:", b"v:")
        .replace(b"Contact:", b"m:")
        .replace(b"From:", b"FROM :")
        .replace(b"Call-ID:", b"call-id:")
    )
    assert client.sip_diff(sent, (renamed + b"\r\n\r\n" + body).replace(b"\r\n", b"\n")) == []


def test_sip_diff_reports_order_additions_and_removals():
    sent = (
        b"REGISTER sip:ovh.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060\r\nFrom: <sip:a@10.0.0.1>\r\n"
        b"Contact: <sip:a@10.0.0.1>\r\nContent-Length: 0\r\n\r\n"
    )
    arrived = (
        b"REGISTER sip:ovh.test:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5060\r\n"
        b"Via: SIP/2.0/UDP 1.2.3.4:5060\r\nFrom: <sip:a@10.0.0.1>\r\n"
        b"Record-Route: <sip:alg>\r\nContent-Length: 0\r\n\r\n"
    )
    assert client.sip_diff(sent, arrived) == [
        ("request line", "REGISTER sip:ovh.test SIP/2.0", "REGISTER sip:ovh.test:5060 SIP/2.0"),
        ("Via #2", "SIP/2.0/UDP 10.0.0.1:5060", "SIP/2.0/UDP 1.2.3.4:5060"),
        ("Contact", "<sip:a@10.0.0.1>", ""),
        ("Record-Route", "", "<sip:alg>"),
    ]
    for junk in (b"", b"\xff\xfe\x00", b"\n\n\n", b"x" * 5000):
        assert isinstance(client.sip_diff(sent, junk), list)


async def test_alg_on_the_way_is_seen_through_the_mirror(start):
    """Through a NAT with a SIP ALG: the answer's plain headers come back "restored",
    but the XOR-ed body shows what reached the reflector, and from which address."""
    await start()
    nat = Nat(("127.0.0.3", 15070), "127.0.0.4", (HOST, UDP), alg=True)
    await nat.start()
    try:
        sent = client.alg_probe_request("INVITE", PRIVATE, 41010, (HOST, UDP))
        m = await client.mirror("127.0.0.3", 15070, sent, "udp", CLIENT, 41010, timeout=1.0)
        assert m is not None and m.arrived == linux_alg(sent)
        assert m.source[0] == "127.0.0.4" and m.source != (CLIENT, 41010)
        assert [w for w, _s, _a in client.sip_diff(m.sent, m.arrived)] == [
            "Via",
            "Contact",
            "SDP c=",
        ]
        assert parse_response(nat.delivered[-1]).headers.get("Via") == header(sent, "Via")
    finally:
        nat.close()


# ---------------------------------------------------------------- delayed replies


async def test_delayed_reply_acks_at_once_and_answers_after_the_delay(start, udp):
    server = await start()
    sock = await udp()
    t0 = time.monotonic()
    sock.send(b"PDLT abc123 300\r\nanything after the first line\r\n", UDP2)
    at, ack, addr = await sock.get(1.0)
    assert ack == b"PDLT abc123 ACK" and addr == (HOST, UDP2) and at - t0 < 0.1
    at, late, addr = await sock.get(1.0)
    assert late == b"PDLT abc123 LATE" and addr == (HOST, UDP2)  # same socket, same client
    assert 0.3 <= at - t0 < 0.55
    sock.send(b"PDLT " + b"T" * 32 + b" 0", UDP)  # on 5060 too; longest token, no delay
    answers = [d for d in await sock.all() if d.startswith(b"PDLT")]
    assert answers == [b"PDLT " + b"T" * 32 + b" ACK", b"PDLT " + b"T" * 32 + b" LATE"]
    assert all(len(a) <= 64 for a in answers)
    sock.send(b"PDLT long 300000", UDP2)  # the longest delay is accepted; close cancels it
    assert (await sock.get(1.0))[1] == b"PDLT long ACK"
    assert server.counters["delayed_late"] == 2


async def test_lifetime_all_delays_at_once(start):
    await start()
    t0 = time.monotonic()
    got = await client.lifetime(HOST, UDP2, [0.2, 0.6], CLIENT, grace_s=0.3)
    assert got == {0.2: True, 0.6: True}
    assert time.monotonic() - t0 < 1.2  # in parallel, not one after the other


async def test_lifetime_through_a_nat_that_forgets(start):
    await start()
    nat = Nat(("127.0.0.3", 15071), "127.0.0.4", (HOST, UDP2), timeout=0.4)
    await nat.start()
    try:
        got = await client.lifetime("127.0.0.3", 15071, [0.15, 0.8], CLIENT, grace_s=0.3)
        assert got == {0.15: True, 0.8: False}
    finally:
        nat.close()


async def test_lifetime_tells_an_unreachable_reflector(udp):
    # Nothing listens: every ACK is missing, so {} rather than "every mapping is short".
    assert await client.lifetime(HOST, 15099, [0.1, 0.2], CLIENT, grace_s=0.3) == {}

    class AckOnly(asyncio.DatagramProtocol):  # a reflector whose late answers get lost
        def connection_made(self, t):
            self.t = t

        def datagram_received(self, data, addr):
            self.t.sendto(data.split(b" ")[0] + b" " + data.split(b" ")[1] + b" ACK", addr)

    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(AckOnly, local_addr=(HOST, 15098))
    try:
        got = await client.lifetime(HOST, 15098, [0.1, 0.2], CLIENT, grace_s=0.3)
        assert got == {0.1: False, 0.2: False}
    finally:
        t.close()
    with pytest.raises(ValueError):
        await client.lifetime(HOST, UDP2, [301.0])


# ---------------------------------------------------------------- limits


def test_token_bucket():
    clock = FakeClock()
    rl = RateLimiter(20, 40, max_ips=3, clock=clock)
    assert [rl.allow("a") for _ in range(41)] == [True] * 40 + [False]
    clock.now += 0.1  # 2 tokens back
    assert [rl.allow("a") for _ in range(3)] == [True, True, False]
    clock.now += 100  # never more than the burst
    assert sum(rl.allow("a") for _ in range(50)) == 40
    for ip in "bcde":
        rl.allow(ip)
    assert len(rl) == 3  # least recently used forgotten
    g = Gauge(per_ip=2, total=3)
    assert [g.acquire("a"), g.acquire("a"), g.acquire("a"), g.acquire("b"), g.acquire("c")] == [
        True,
        True,
        False,
        True,
        False,
    ]
    g.release("a")
    assert g.acquire("c") and g.total == 3


async def test_the_41st_request_of_a_burst_is_dropped(start, udp):
    clock = FakeClock()
    server = await start(clock=clock)
    sock = await udp()
    for _ in range(41):
        sock.send(options(sock.port))
    assert len(await sock.all()) == 40
    assert server.counters["dropped_rate"] == 1
    other = await udp("127.0.0.3")  # another source IP has its own bucket
    other.send(options(other.port))
    assert len(await other.all()) == 1
    clock.now += 0.1  # 20 per second: two more
    for _ in range(3):
        sock.send(options(sock.port))
    assert len(await sock.all()) == 2
    # TCP requests count against the same bucket; over it, dropped (the connection stays).
    reader, writer = await asyncio.open_connection(HOST, TCP, local_addr=(CLIENT, 0))
    writer.write(options(1))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.2)
    clock.now += 1
    writer.write(options(2))
    assert b"200 OK" in await asyncio.wait_for(read_answer(reader), 1.0)
    writer.close()


async def test_the_17th_pending_delayed_reply_is_refused(start, udp):
    server = await start()
    sock = await udp()
    for i in range(17):
        sock.send(b"PDLT t%d 5000" % i, UDP2)
    acks = await sock.all()
    assert acks == [b"PDLT t%d ACK" % i for i in range(16)]
    assert server.counters["dropped_pending"] == 1
    other = await udp("127.0.0.3")  # another source IP has its own 16
    other.send(b"PDLT x 5000", UDP2)
    assert await other.all() == [b"PDLT x ACK"]


async def test_pending_slots_total_and_freed(start, udp):
    server = await start(Limits(pending_per_ip=1, pending_total=2))
    a, b, c = await udp(), await udp("127.0.0.3"), await udp("127.0.0.4")
    a.send(b"PDLT a1 100", UDP2)
    a.send(b"PDLT a2 100", UDP2)  # over the per-IP cap
    b.send(b"PDLT b1 5000", UDP2)
    c.send(b"PDLT c1 5000", UDP2)  # over the overall cap
    assert await a.all() == [b"PDLT a1 ACK", b"PDLT a1 LATE"]
    assert await b.all(0.05) == [b"PDLT b1 ACK"] and await c.all(0.05) == []
    a.send(b"PDLT a3 0", UDP2)  # a1 done: its slot is free again
    assert await a.all() == [b"PDLT a3 ACK", b"PDLT a3 LATE"]
    assert server.counters["dropped_pending"] == 2


async def test_oversized_requests_get_no_answer(start, udp):
    server = await start()
    sock = await udp()
    base = options(sock.port)

    def padded(size: int) -> bytes:
        filler = b"X-Pad: " + b"p" * (size - len(base) - 9) + b"\r\n"
        return base.replace(b"Content-Length:", filler + b"Content-Length:")

    biggest, too_big = padded(4096), padded(4097)
    assert len(biggest) == 4096 and len(too_big) == 4097
    sock.send(too_big)
    sock.send(biggest)
    answers = await sock.all()
    assert len(answers) == 1 and client.xor(parse_response(answers[0]).body) == biggest
    assert server.counters["dropped_size"] == 1
    assert await client.mirror(HOST, UDP, too_big, "udp", CLIENT, timeout=0.3) is None
    # TCP: more than 4096 bytes of request (or announced by Content-Length) closes.
    for data in (
        too_big,
        b"OPTIONS sip:x@127.0.0.2 SIP/2.0\r\n" + b"X: y\r\n" * 700,
        b"OPTIONS sip:x@127.0.0.2 SIP/2.0\r\nContent-Length: 5000\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(HOST, TCP, local_addr=(CLIENT, 0))
        writer.write(data)
        assert await asyncio.wait_for(reader.read(), 1.0) == b""
        writer.close()


JUNK = [
    b"\x00" * 50,
    b"\xff\xfe garbage",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
    b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\n",
    b"OPTIONS sip:127.0.0.2 SIP/2.1\r\n\r\n",
    b"OPTIONS sip:127.0.0.2\r\n\r\n",
    b"OPTIONS http://127.0.0.2/ SIP/2.0\r\n\r\n",
    b"OPT\x01ONS sip:127.0.0.2 SIP/2.0\r\n\r\n",
    b"OPTIONS sip:127.0.0.2 SIP/2.0\r\nno colon here\r\n\r\n",
    b"OPTIONS sip:127.0.0.2 SIP/2.0\r\nFrom: \xe9\r\n\r\n",
    b"PDLT",
    b"PDLT tok",
    b"PDLT bad-token 100",
    b"PDLT tok 300001",
    b"PDLT tok -5",
    b"PDLT " + b"a" * 33 + b" 10",
    b"PDLT tok 10 extra",
]


async def test_malformed_requests_get_no_answer(start, udp):
    server = await start()
    sock = await udp()
    for junk in JUNK:
        sock.send(junk)
        sock.send(junk, UDP2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as empty:  # asyncio sends no b""
        empty.sendto(b"", (HOST, UDP))
    sock.send(options(sock.port))  # ... while a good one still does
    answers = await sock.all()
    assert len(answers) == 1 and answers[0].startswith(b"SIP/2.0 200 OK")
    assert server.counters["dropped_malformed"] == 2 * len(JUNK) + 1
    assert server.counters["mirrored"] == 1


async def test_tcp_malformed_request_closes_the_connection(start):
    server = await start()
    reader, writer = await asyncio.open_connection(HOST, TCP, local_addr=(CLIENT, 0))
    good = options(1)
    writer.write(good + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + good)
    answer = await asyncio.wait_for(read_answer(reader), 1.0)
    assert client.xor(parse_response(answer).body) == good
    assert await asyncio.wait_for(reader.read(), 1.0) == b""  # closed, no second answer
    writer.close()
    assert server.counters["mirrored"] == 1 and server.counters["dropped_malformed"] == 1


async def test_tcp_idle_connections_are_closed(start):
    server = await start(Limits(tcp_idle_s=0.3))
    t0 = time.monotonic()
    silent = await asyncio.open_connection(HOST, TCP, local_addr=(CLIENT, 0))
    slow = await asyncio.open_connection(HOST, TCP, local_addr=(CLIENT, 0))
    slow[1].write(b"OPTIONS sip:x@127.0.0.2 SIP/2.0\r\n")  # a request that never ends
    for reader, writer in (silent, slow):
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()
    assert 0.3 <= time.monotonic() - t0 < 1.0
    assert server.counters["tcp_idle_closed"] == 2


async def test_tcp_connection_caps(start):
    server = await start(Limits(tcp_per_ip=2, tcp_total=3))

    async def connect(ip):
        return await asyncio.open_connection(HOST, TCP, local_addr=(ip, 0))

    async def served(conn) -> bool:
        reader, writer = conn
        try:
            writer.write(options(1))
            return b"200 OK" in await asyncio.wait_for(read_answer(reader), 1.0)
        except (OSError, asyncio.IncompleteReadError):
            return False

    a1, a2, a3 = await connect(CLIENT), await connect(CLIENT), await connect(CLIENT)
    b1, c1 = await connect("127.0.0.3"), await connect("127.0.0.4")
    assert [await served(c) for c in (a1, a2, a3, b1, c1)] == [True, True, False, True, False]
    assert server.counters["tcp_refused"] == 2
    a1[1].close()
    await asyncio.sleep(0.1)
    a4 = await connect(CLIENT)
    assert await served(a4)
    for _r, w in (a2, a3, b1, c1, a4):
        w.close()


# ---------------------------------------------------------------- serve() and the CLI


async def test_serve_until_stopped_returns_the_counters():
    stop = asyncio.Event()
    seen: list[Reflector] = []
    task = asyncio.create_task(serve(HOST, (UDP,), (TCP,), stop, ready=seen.append))
    while not seen:
        await asyncio.sleep(0.01)
    assert sorted(seen[0].listening) == [("tcp", HOST, TCP), ("udp", HOST, UDP)]
    assert await client.mirror(HOST, UDP, options(1), timeout=1.0) is not None
    stop.set()
    counters = await asyncio.wait_for(task, 2.0)
    assert list(counters) == list(COUNTERS) and counters["mirrored"] == 1
    with pytest.raises(OSError):  # not an address of this host
        await serve("192.0.2.1", (UDP,), (), asyncio.Event())


def run_cli(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=30)


def test_cli_usage_errors_are_one_line():
    h = run_cli("reflector", "--help")
    assert h.returncode == 0 and "--listen" in h.stdout and "Serveur réflecteur" in h.stdout
    for args, text in (
        (("--listen", "not-an-ip"), "not an IP address"),
        (("--listen", "192.0.2.1"), "cannot listen on 192.0.2.1"),
        (("--listen", "127.0.0.5", "--udp-port", "0"), "--udp-port"),
        ((), "--listen"),
    ):
        r = run_cli("reflector", "--lang", "en", *args)
        assert r.returncode == 2, r
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_cli_runs_until_signalled(sig):
    ports = ("--udp-port", "15080", "--tcp-port", "15080")
    proc = subprocess.Popen(
        [EXE, "reflector", "--listen", "127.0.0.5", *ports, "--lang", "en"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = await asyncio.to_thread(proc.stdout.readline)
        assert first.strip() == (
            "reflector listening on udp 127.0.0.5:15080, tcp 127.0.0.5:15080 (Ctrl-C to stop)"
        )
        m = await client.mirror("127.0.0.5", 15080, options(1), "tcp", CLIENT, timeout=1.0)
        assert m is not None
        proc.send_signal(sig)
        out, err = await asyncio.to_thread(proc.communicate, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err
    assert out.startswith("reflector stopped: ") and "mirrored=1" in out
