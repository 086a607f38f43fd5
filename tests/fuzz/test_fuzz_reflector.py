"""The reflector's wire format (agent/net/reflector.py, agent/reflector/server.py): what the
server reads from anyone on the Internet (SIP requests, PDLT lines, TCP streams) and what
the client reads back (mirror answers, PDLT answers). Requests give an answer or none,
bounded in size; answers give a Mirror or None; nothing raises."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.net import reflector as wire
from agent.reflector import server
from agent.reflector.limits import Limits
from tests.fuzz.strategies import KIB, FakeTransport, bounded, hostile_bytes, mutated_bytes

addresses = st.ip_addresses(v=4).map(str)
ports = st.integers(1, 65535)
sources = st.one_of(st.tuples(addresses, ports), st.tuples(st.ip_addresses(v=6).map(str), ports))
hexes = st.binary(min_size=6, max_size=12).map(bytes.hex)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A request as the ALG test sends it (:func:`wire.alg_probe_request`), with drawn
    values where that one draws random ones (so that a case can be replayed)."""
    method = draw(st.sampled_from(wire.ALG_METHODS))
    request = wire.alg_probe_request(
        method, draw(addresses), draw(ports), draw(st.tuples(addresses, ports)),
        draw(st.sampled_from(("udp", "tcp"))),
    )  # fmt: skip
    text = request.decode()
    text = re.sub(r"branch=z9hG4bK[0-9a-f]+", f"branch=z9hG4bK{draw(hexes)}", text)
    text = re.sub(r"tag=[0-9a-f]+", f"tag={draw(hexes)}", text)
    text = re.sub(r"Call-ID: [0-9a-f]+", f"Call-ID: {draw(hexes)}", text)
    text = re.sub(r"CSeq: \d+", f"CSeq: {draw(st.integers(1, 9000))}", text)
    session = draw(st.integers(0, 10**9))
    text = re.sub(r"o=phonediag \d+ \d+", f"o=phonediag {session} {session}", text)
    text = re.sub(r"m=audio \d+", f"m=audio {draw(st.integers(30000, 30999))}", text)
    head, _, body = text.partition("\r\n\r\n")
    head = re.sub(r"Content-Length: \d+", f"Content-Length: {len(body.encode())}", head)
    return f"{head}\r\n\r\n{body}".encode()


datagrams = st.one_of(requests(), mutated_bytes(requests()), hostile_bytes)
pdlt = st.builds("PDLT {} {}\r\n".format, st.from_regex(r"[A-Za-z0-9]{1,40}", fullmatch=True),
                 st.integers(0, 10**7)).map(str.encode)  # fmt: skip


@given(datagrams, sources)
def test_mirror_answer(request: bytes, source) -> None:
    answer = server.mirror_answer(request, source)
    if answer is None:
        return
    assert answer.startswith(b"SIP/2.0 200 OK\r\n")
    assert len(answer) <= len(request) + wire.MIRROR_OVERHEAD


@given(requests(), sources)
def test_a_request_mirrored_comes_back_unchanged(request: bytes, source) -> None:
    mirror = wire._decode_mirror(server.mirror_answer(request, source), request)
    assert mirror is not None and mirror.arrived == request
    assert wire.sip_diff(request, mirror.arrived) == []


@given(st.one_of(requests(), datagrams), st.one_of(datagrams, st.builds(server.mirror_answer,
       datagrams, sources).map(lambda a: a or b"")))  # fmt: skip
def test_decode_mirror(sent: bytes, answer: bytes) -> None:
    for data in (answer, *variants(answer)):
        mirror = wire._decode_mirror(data, sent)
        assert mirror is None or (mirror.sent == sent and isinstance(mirror.arrived, bytes))


def variants(data: bytes) -> list[bytes]:
    """Cheap fixed mutations of what the client checks: the Content-Length (a digit that
    int() does not read, too many digits) and the source address."""
    return [
        data.replace(b"Content-Length: ", b"Content-Length: \xc2\xb2"),
        data.replace(b"Content-Length: ", b"Content-Length: " + b"9" * 5000),
        data.replace(b"Source: ", b"Source: [::1]:\xc2\xb2"),
    ]


@given(datagrams, datagrams)
def test_sip_diff(sent: bytes, arrived: bytes) -> None:
    for where, before, after in wire.sip_diff(sent, arrived):
        assert isinstance(where, str) and before != after
    assert wire.sip_diff(sent, sent) == []


@given(st.one_of(st.none(), st.text(max_size=60), sources.map(wire.format_source)))
def test_parse_source(value) -> None:
    got = wire.parse_source(value)
    assert got is None or 0 < got[1] < 65536


@given(st.one_of(pdlt, mutated_bytes(pdlt), hostile_bytes))
def test_parse_pdlt(data: bytes) -> None:
    got = server.parse_pdlt(data)
    assert got is None or (0 <= got[1] <= wire.MAX_DELAY_MS and len(got[0]) <= 32)


@given(st.lists(st.tuples(st.one_of(datagrams, pdlt), sources), max_size=10))
def test_udp_server_answers_only_the_source_and_boundedly(received) -> None:
    async def run() -> FakeTransport:
        reflector = server.Reflector("127.0.0.1", (), (), Limits())
        transport = FakeTransport()
        for data, source in received:
            reflector._datagram(transport, data, source)
        await reflector.close()
        return transport

    transport = asyncio.run(run())
    asked = {source for _, source in received}
    for data, addr in transport.sent:
        assert addr in asked
        assert len(data) <= wire.MAX_REQUEST + wire.MIRROR_OVERHEAD


@given(st.lists(st.one_of(requests(), datagrams, st.just(b"\r\n")), max_size=4),
       st.integers(1, 600))  # fmt: skip
def test_tcp_server_framing(pieces: list[bytes], chunk: int) -> None:
    """What a TCP client streams, in any chunks: requests read one by one, never beyond
    the size limit, never a hang once the stream ends."""
    data = b"".join(pieces)

    async def run() -> list[bytes]:
        reflector = server.Reflector("127.0.0.1", (), (), Limits())
        reader = asyncio.StreamReader(limit=reflector.limits.max_request + 1)
        for i in range(0, len(data), chunk):
            reader.feed_data(data[i : i + chunk])
        reader.feed_eof()
        buf = bytearray()
        got = []
        for _ in range(len(pieces) + 2):
            request = await reflector._read_request(reader, buf, "192.0.2.1")
            if request is None:
                break
            got.append(request)
        return got

    for request in asyncio.run(asyncio.wait_for(run(), 5)):
        assert len(request) <= wire.MAX_REQUEST and request in data


WORST = {
    "distinct tiny headers": b"OPTIONS sip:x SIP/2.0\r\n"
    + b"".join(b"%x:\r\n" % i for i in range(1000))[: 4 * KIB - 40]
    + b"\r\n",
    "blank lines": b"\r\n" * 2 * KIB,
    "folded lines": b"OPTIONS sip:x SIP/2.0\r\nVia: a\r\n" + b" b\r\n" * 1000,
}


@pytest.mark.parametrize("name", WORST)
def test_worst_case_requests_cost_little(name: str) -> None:
    bounded(server.mirror_answer, WORST[name], ("192.0.2.1", 5060), seconds=0.05)
    bounded(wire.sip_diff, WORST[name], WORST[name], seconds=0.1)


def test_regressions() -> None:
    """Found by the fuzzer: a Content-Length or a port that ``isdigit()`` accepts and
    ``int()`` refuses (``²``, 5000 digits) raised ValueError in the client (a mirror
    answer) and in the server (a TCP request: the connection's task died with a
    traceback)."""
    for bad in ("\u00b2", "9" * 5000):
        assert wire.parse_source(f"192.0.2.1:{bad}") is None
        assert wire.number(bad) is None
    request = wire.alg_probe_request("OPTIONS", "10.0.0.2", 5060, ("192.0.2.1", 5060))
    answer = server.mirror_answer(request, ("192.0.2.7", 5060))
    for data in variants(answer):
        assert wire._decode_mirror(data, request) is None

    async def read(stream: bytes) -> bytes | None:
        reflector = server.Reflector("127.0.0.1", (), (), Limits())
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        return await reflector._read_request(reader, bytearray(), "192.0.2.1")

    for bad in (b"\xc2\xb2", b"9" * 3000):
        stream = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: " + bad + b"\r\n\r\n"
        assert asyncio.run(read(stream)) is None
