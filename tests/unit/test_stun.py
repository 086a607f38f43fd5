"""STUN: the codec against RFC 5769, the client's hygiene, RFC 5780 classification.

The behaviour tests use a fake RFC 5780 server on 127.0.0.1/127.0.0.2 that also plays
the NAT: it reports the mapped address a NAT of the chosen mapping behaviour would
give, and drops the answers a NAT of the chosen filtering behaviour would drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import os
import struct
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from agent import catalog
from agent.config import Config
from agent.model import UNKNOWN
from agent.net import stun
from agent.probes import Context
from agent.probes import stun as stun_probe

EIM = stun.ENDPOINT_INDEPENDENT
AD = stun.ADDRESS_DEPENDENT
APD = stun.ADDRESS_AND_PORT_DEPENDENT

# ---------------------------------------------------------------- RFC 5769 test vectors

PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"
TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
REQUEST = bytes.fromhex(  # §2.1 sample request
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c6965"
    "6e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"
)
RESPONSE_V4 = bytes.fromhex(  # §2.2 sample IPv4 response
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
    "002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)
RESPONSE_V6 = bytes.fromhex(  # §2.3 sample IPv6 response
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220"
    "002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf1"
    "1784c97c8292c275bfe3ed4180280004c8fb0b4c"
)


def _integrity_ok(data: bytes) -> bool:
    """MESSAGE-INTEGRITY of a vector (RFC 5389 §15.4): proves the vector bytes are exact."""
    msg = stun.decode(data)
    assert msg is not None
    pos = data.index(struct.pack("!HH", 0x0008, 20))
    head = data[:2] + struct.pack("!H", pos + 24 - 20) + data[4:pos]
    mac = hmac.new(PASSWORD, head, hashlib.sha1).digest()
    return mac == msg.get(0x0008)


def test_rfc5769_request_decodes_with_fingerprint_and_integrity():
    msg = stun.decode(REQUEST)
    assert msg is not None and msg.type == stun.BINDING_REQUEST
    assert msg.transaction_id == TID
    assert msg.get(stun.SOFTWARE) == b"STUN test client"
    assert msg.get(0x0006) == b"evtj:h6vY"  # USERNAME (padding not part of the value)
    assert _integrity_ok(REQUEST)


def test_rfc5769_ipv4_response_xor_mapped_address():
    msg = stun.decode(RESPONSE_V4)
    assert msg is not None and msg.type == stun.BINDING_SUCCESS and _integrity_ok(RESPONSE_V4)
    assert stun.decode_address(msg.get(stun.XOR_MAPPED_ADDRESS), TID, xor=True) == (
        "192.0.2.1",
        32853,
    )
    r = stun._response(msg, ("192.0.2.99", 3478), 1.0, 1)
    assert r.mapped == ("192.0.2.1", 32853) and r.software == "test vector"
    assert r.other is None and r.error is None


def test_rfc5769_ipv6_response_xor_mapped_address():
    msg = stun.decode(RESPONSE_V6)
    assert msg is not None and _integrity_ok(RESPONSE_V6)
    mapped = stun.decode_address(msg.get(stun.XOR_MAPPED_ADDRESS), TID, xor=True)
    assert mapped == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)


def test_address_encoding_matches_the_vectors():
    assert stun.encode_address(("192.0.2.1", 32853), TID, xor=True) == bytes.fromhex(
        "0001a147e112a643"
    )
    v6 = stun.encode_address(("2001:db8:1234:5678:11:2233:4455:6677", 32853), TID, xor=True)
    assert v6 == bytes.fromhex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")
    plain = stun.encode_address(("203.0.113.5", 3478), TID, xor=False)
    assert plain == bytes.fromhex("00010d96cb007105")
    assert stun.decode_address(plain, TID, xor=False) == ("203.0.113.5", 3478)


def test_binding_request_encoding():
    tid = bytes(range(12))
    plain = stun.binding_request(tid)
    assert plain[:20] == bytes.fromhex("000100082112a442") + tid  # only FINGERPRINT
    change = stun.binding_request(tid, change_ip=True, change_port=True)
    assert change[:28] == bytes.fromhex("000100102112a442") + tid + bytes.fromhex(
        "0003000400000006"
    )
    msg = stun.decode(change)  # FINGERPRINT verified on decode
    assert msg is not None and msg.get(stun.CHANGE_REQUEST) == b"\x00\x00\x00\x06"
    port_only = stun.decode(stun.binding_request(tid, change_port=True))
    assert port_only is not None and port_only.get(stun.CHANGE_REQUEST) == b"\x00\x00\x00\x02"


def test_error_response_round_trip():
    msg = stun.decode(stun.binding_error(TID, 420, "Unknown Attribute"))
    assert msg is not None and msg.type == stun.BINDING_ERROR
    assert stun._response(msg, ("127.0.0.1", 1), 0, 1).error == (420, "Unknown Attribute")


def test_server_addresses_round_trip():
    data = stun.binding_success(
        TID, ("203.0.113.7", 40000), other=("127.0.0.2", 2), origin=("127.0.0.1", 1)
    )
    msg = stun.decode(data)
    assert msg is not None
    r = stun._response(msg, ("127.0.0.1", 1), 0, 1)
    assert (r.mapped, r.other, r.origin) == (
        ("203.0.113.7", 40000),
        ("127.0.0.2", 2),
        ("127.0.0.1", 1),
    )


def test_rfc3489_style_answers_are_understood():
    msg = stun.Message(
        stun.BINDING_SUCCESS,
        TID,
        [
            (stun.MAPPED_ADDRESS, stun.encode_address(("198.51.100.4", 5000), TID, xor=False)),
            (stun.CHANGED_ADDRESS, stun.encode_address(("198.51.100.9", 3479), TID, xor=False)),
        ],
    )
    decoded = stun.decode(stun.encode(msg))
    assert decoded is not None
    r = stun._response(decoded, ("198.51.100.8", 3478), 0, 1)
    assert r.mapped == ("198.51.100.4", 5000) and r.other == ("198.51.100.9", 3479)


@pytest.mark.parametrize("cut", range(len(RESPONSE_V4)))
def test_truncated_datagrams_are_not_stun(cut):
    assert stun.decode(RESPONSE_V4[:cut]) is None


def _patched(data: bytes, pos: int, value: bytes) -> bytes:
    return data[:pos] + value + data[pos + len(value) :]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        os.urandom(64),
        b"SIP/2.0 200 OK\r\n\r\n" + bytes(8),
        _patched(RESPONSE_V4, 0, b"\xc1"),  # top bits set (not STUN: RTP, ...)
        _patched(RESPONSE_V4, 4, b"\x21\x12\xa4\x43"),  # magic cookie
        _patched(RESPONSE_V4, 2, b"\x00\x40"),  # length larger than the datagram
        _patched(RESPONSE_V4, 2, b"\x00\x3b"),  # length not a multiple of 4
        _patched(RESPONSE_V4, 22, b"\x00\xff"),  # attribute runs past the end
        _patched(RESPONSE_V4, len(RESPONSE_V4) - 1, b"\x00"),  # bad FINGERPRINT
        RESPONSE_V4 + bytes(4),  # trailing bytes
    ],
)
def test_malformed_datagrams_are_not_stun(data):
    assert stun.decode(data) is None


# ---------------------------------------------------------------- a fake RFC 5780 server + NAT

PUBLIC_IP = "203.0.113.7"


class _Sock(asyncio.DatagramProtocol):
    def __init__(self, server: FakeServer, addr: tuple[str, int]) -> None:
        self.server, self.addr = server, addr
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self.server.handle(self.addr, data, (addr[0], addr[1]))


@dataclass
class FakeServer:
    """Four sockets (two IPs x two ports) answering Binding requests like a NAT would let them.

    mapping: "none" (no NAT) or a behaviour; filtering: a behaviour, or "silent".
    """

    mapping: str = EIM
    filtering: str = stun.ENDPOINT_INDEPENDENT
    other_address: bool = True
    change: str = "honour"  # honour | ignore | refuse
    noise: bool = False
    drop_first: int = 0
    socks: dict[tuple[str, int], _Sock] = field(default_factory=dict)
    requests: list[tuple[tuple[str, int], bool, bool]] = field(default_factory=list)
    ports: dict[tuple, int] = field(default_factory=dict)
    sent_to: dict[tuple[str, int], set[tuple[str, int]]] = field(default_factory=dict)

    @property
    def primary(self) -> tuple[str, int]:
        return next(iter(self.socks))

    def other_of(self, addr: tuple[str, int]) -> tuple[str, int]:
        return next(a for a in self.socks if a[0] != addr[0] and a[1] != addr[1])

    async def start(self) -> FakeServer:
        loop = asyncio.get_running_loop()
        for _ in range(50):
            try:
                p1, p2 = _free_port(), _free_port()
                for ip, port in itertools.product(("127.0.0.1", "127.0.0.2"), (p1, p2)):
                    _, proto = await loop.create_datagram_endpoint(
                        lambda a=(ip, port): _Sock(self, a), local_addr=(ip, port)
                    )
                    self.socks[(ip, port)] = proto
                return self
            except OSError:
                self.close()
                self.socks.clear()
        raise RuntimeError("no free ports")

    def close(self) -> None:
        for s in self.socks.values():
            if s.transport:
                s.transport.close()

    def _mapped(self, client: tuple[str, int], dest: tuple[str, int]) -> tuple[str, int]:
        if self.mapping == "none":
            return client
        key = {EIM: (client,), AD: (client, dest[0]), APD: (client, dest)}[self.mapping]
        return PUBLIC_IP, self.ports.setdefault(key, 40000 + len(self.ports))

    def _filter_passes(self, client: tuple[str, int], source: tuple[str, int]) -> bool:
        contacted = self.sent_to.get(client, set())
        return {
            EIM: True,
            AD: source[0] in {a[0] for a in contacted},
            APD: source in contacted,
            "silent": False,
        }[self.filtering]

    def handle(self, at: tuple[str, int], data: bytes, client: tuple[str, int]) -> None:
        msg = stun.decode(data)
        if msg is None or msg.type != stun.BINDING_REQUEST:
            return
        flags = struct.unpack("!I", msg.get(stun.CHANGE_REQUEST) or bytes(4))[0]
        change_ip, change_port = bool(flags & stun.CHANGE_IP), bool(flags & stun.CHANGE_PORT)
        self.requests.append((at, change_ip, change_port))
        self.sent_to.setdefault(client, set()).add(at)  # the NAT opens its filter
        if self.drop_first > 0:
            self.drop_first -= 1
            return
        tid = msg.transaction_id
        other = self.other_of(at)
        source = at
        if (change_ip or change_port) and self.change == "refuse":
            answer = stun.binding_error(tid, 420, "Unknown Attribute")
        else:
            if self.change == "honour":
                source = (other[0] if change_ip else at[0], other[1] if change_port else at[1])
            answer = stun.binding_success(
                tid,
                self._mapped(client, at),
                other=other if self.other_address else None,
                origin=source,
            )
        if not self._filter_passes(client, source):
            return
        out = self.socks[source].transport
        assert out is not None
        if self.noise:
            foreign = stun.binding_success(os.urandom(12), ("198.51.100.66", 666))
            wrong_tid = stun.binding_success(tid[:-1] + b"\x00", ("198.51.100.66", 666))
            for junk in (
                b"garbage",
                answer[:-3],
                foreign,
                wrong_tid,
                answer[:-1] + bytes([answer[-1] ^ 0xFF]),
            ):
                out.sendto(junk, client)
            out.sendto(stun.binding_request(tid), client)  # same tid, but a request
        out.sendto(answer, client)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def fake(**kw):
    server = await FakeServer(**kw).start()
    try:
        yield server
    finally:
        server.close()


FAST = {"timeout": 0.3, "rto": 0.05}


# ---------------------------------------------------------------- the client


async def test_binding_ignores_garbage_and_foreign_transactions():
    async with fake(noise=True) as srv, await stun.StunClient.open("127.0.0.1") as c:
        # A long RTO: a loaded machine must not retransmit while the junk is read.
        r = await c.binding(srv.primary, timeout=2.0, rto=1.0)
    assert r is not None and r.mapped == (PUBLIC_IP, 40000) and r.sends == 1
    assert r.source == srv.primary and r.origin == srv.primary
    assert r.other == srv.other_of(srv.primary)


async def test_binding_retransmits_until_answered():
    async with fake(drop_first=2) as srv, await stun.StunClient.open("127.0.0.1") as c:
        r = await c.binding(srv.primary, timeout=1.0, rto=0.05)
    assert r is not None and r.sends == 3 and len(srv.requests) == 3


async def test_binding_gives_up_at_its_timeout():
    async with fake(filtering="silent") as srv, await stun.StunClient.open("127.0.0.1") as c:
        start = time.monotonic()
        r = await c.binding(srv.primary, timeout=0.4, rto=0.05)
        elapsed = time.monotonic() - start
    assert r is None
    assert 0.4 <= elapsed < 0.6
    assert len(srv.requests) == 4  # sent at 0, 0.05, 0.15, 0.35 s: RTO doubling, within 0.4 s


async def test_binding_sends_at_most_rc_times():
    async with fake(filtering="silent") as srv, await stun.StunClient.open("127.0.0.1") as c:
        assert await c.binding(srv.primary, timeout=0.5, rto=0.001) is None
    assert len(srv.requests) == stun.RC


# ---------------------------------------------------------------- RFC 5780 classification


@pytest.mark.parametrize(
    ("mapping", "filtering"), list(itertools.product((EIM, AD, APD), repeat=2))
)
async def test_nat_behaviour_classifies_what_the_server_saw(mapping, filtering):
    async with fake(mapping=mapping, filtering=filtering) as srv:
        nb = await stun.nat_behaviour(srv.primary, "127.0.0.1", **FAST)
    assert (nb.mapping, nb.filtering) == (mapping, filtering)
    assert nb.mapped is not None and nb.mapped[0] == PUBLIC_IP and nb.nat is True
    assert nb.other == srv.other_of(srv.primary)
    assert nb.mapping_evidence and nb.filtering_evidence


async def test_no_nat_is_endpoint_independent_mapping():
    async with fake(mapping="none") as srv:
        nb = await stun.nat_behaviour(srv.primary, "127.0.0.1", **FAST)
    assert nb.mapping == EIM and "no NAT" in nb.mapping_evidence
    assert nb.mapped == nb.local and nb.nat is False
    assert all(at == srv.primary for at, _, _ in srv.requests)  # no mapping tests II, III


async def test_server_without_other_address_is_unknown():
    async with fake(other_address=False) as srv:
        nb = await stun.nat_behaviour(srv.primary, "127.0.0.1", **FAST)
    assert (nb.mapping, nb.filtering) == (stun.UNKNOWN, stun.UNKNOWN)
    assert nb.mapped is not None and nb.mapped[0] == PUBLIC_IP  # still reported
    assert "OTHER-ADDRESS" in nb.mapping_evidence and "OTHER-ADDRESS" in nb.filtering_evidence


@pytest.mark.parametrize(("change", "word"), [("ignore", "ignored"), ("refuse", "420")])
async def test_server_not_honouring_change_request_leaves_filtering_unknown(change, word):
    async with fake(mapping=AD, change=change) as srv:
        nb = await stun.nat_behaviour(srv.primary, "127.0.0.1", **FAST)
    assert nb.mapping == AD  # the mapping test needs no CHANGE-REQUEST
    assert nb.filtering == stun.UNKNOWN and word in nb.filtering_evidence


async def test_silent_server_is_unknown():
    async with fake(filtering="silent") as srv:
        nb = await stun.nat_behaviour(srv.primary, "127.0.0.1", **FAST)
    assert (nb.mapping, nb.filtering, nb.mapped) == (stun.UNKNOWN, stun.UNKNOWN, None)
    assert "no answer" in nb.mapping_evidence


# ---------------------------------------------------------------- the probe


def ctx(**kw) -> Context:
    return Context(config=Config(**kw), networks=[], devices=[])


def by_key(facts):
    return {f.key: f for f in facts}


def test_parse_server():
    assert stun_probe.parse_server("stun.example.net:3479") == ("stun.example.net", 3479)
    assert stun_probe.parse_server(" 192.0.2.1 ") == ("192.0.2.1", 3478)
    assert stun_probe.parse_server("[2001:db8::1]:5000") == ("2001:db8::1", 5000)
    for bad in ("", ":3478", "host:port", "host:0", "host:70000"):
        with pytest.raises(ValueError):
            stun_probe.parse_server(bad)


async def test_probe_without_a_server_contacts_nobody(monkeypatch):
    async def boom(*a, **k):
        raise AssertionError("no STUN server may be contacted")

    monkeypatch.setattr(stun.StunClient, "open", boom)
    facts = by_key(await stun_probe.probe(ctx()))
    assert set(facts) == {"lan.public_ip", "nat.mapping", "nat.filtering"}
    for f in facts.values():
        assert f.value is UNKNOWN and f.evidence == "no STUN server configured"


async def test_probe_reports_address_and_behaviour():
    async with fake(mapping=AD, filtering=APD) as srv:
        server = f"{srv.primary[0]}:{srv.primary[1]}"
        facts = by_key(await stun_probe.probe(ctx(stun_server=server, timeout=0.3)))
    assert facts["lan.public_ip"].value == PUBLIC_IP
    assert facts["nat.mapping"].value == AD and facts["nat.filtering"].value == APD
    for f in facts.values():
        assert f.evidence.startswith(f"STUN server {server}")
        spec = catalog.lookup(f.key)
        assert spec is not None and spec.type == "str" and spec.subject == "site"
    assert f"sees us as {PUBLIC_IP}:" in facts["lan.public_ip"].evidence


async def test_probe_unknown_with_reason_when_not_measurable():
    async with fake(other_address=False) as srv:
        server = f"{srv.primary[0]}:{srv.primary[1]}"
        facts = by_key(await stun_probe.probe(ctx(stun_server=server, timeout=0.3)))
    assert facts["lan.public_ip"].value == PUBLIC_IP
    for key in ("nat.mapping", "nat.filtering"):
        assert facts[key].value is UNKNOWN and "OTHER-ADDRESS" in facts[key].evidence


# ---------------------------------------------------------------- against a real coturn

TURNSERVER = "/usr/bin/turnserver"


@pytest.fixture
def coturn(tmp_path):
    if not os.path.exists(TURNSERVER):
        pytest.skip("coturn not installed")
    log = (tmp_path / "turn.log").open("wb")
    proc = subprocess.Popen(
        [
            *(TURNSERVER, "-n", "--stun-only", "-L", "127.0.0.1", "-L", "127.0.0.2"),
            *("--listening-port=34780", "--alt-listening-port=34781", "--no-cli", "--no-tls"),
            *("--no-dtls", f"--db={tmp_path / 'turndb'}", f"--pidfile={tmp_path / 'turn.pid'}"),
            *("--log-file=stdout", "--simple-log"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()  # by its PID
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def test_against_coturn(coturn):
    server = ("127.0.0.1", 34780)
    deadline = time.monotonic() + 10
    async with await stun.StunClient.open("127.0.0.1") as c:
        while await c.binding(server, timeout=0.2, rto=0.05) is None:
            assert coturn.poll() is None, "turnserver exited"
            assert time.monotonic() < deadline, "turnserver did not answer"
    nb = await stun.nat_behaviour(server)
    assert nb.mapping == EIM and nb.filtering == EIM
    assert nb.mapped is not None and nb.mapped[0].startswith("127.0.0.")
    assert nb.other == ("127.0.0.2", 34781)
