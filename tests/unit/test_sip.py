"""SIP OPTIONS: tags that carry the target, tolerant parsing, sweeps over loopback."""

import asyncio

import pytest

from agent.net import sip


def test_tag_round_trip():
    tag = sip.encode_tag("10.66.0.11", 5060)
    assert sip.decode_tag(tag) == ("10.66.0.11", 5060)
    assert sip.encode_tag("10.66.0.11", 5060) != tag  # random part
    assert sip.decode_tag("zz") is None and sip.decode_tag(None) is None
    assert sip.decode_tag("nothexnothexnothex") is None


def test_options_request_is_well_formed():
    raw = sip.build_options(("10.66.0.11", 5060), ("10.66.0.100", 40000)).decode()
    assert raw.startswith("OPTIONS sip:10.66.0.11:5060 SIP/2.0\r\n")
    assert "Via: SIP/2.0/UDP 10.66.0.100:40000;branch=z9hG4bK" in raw
    assert raw.endswith("Content-Length: 0\r\n\r\n")


def reply(tag: str, ua: str = "Yealink SIP-T46S 66.86.0.15", eol: str = "\r\n") -> bytes:
    lines = [
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx",
        f"From: <sip:phonediag@127.0.0.1>;tag={tag}",
        "To: <sip:127.0.0.2:5060>;tag=1",
        "Call-ID: abc",
        "CSeq: 1 OPTIONS",
        f"User-Agent: {ua}",
        "Allow: INVITE, ACK, OPTIONS",
        "Content-Length: 0",
        "",
        "",
    ]
    return eol.join(lines).encode()


def test_parse_tolerates_lf_only():
    r = sip.parse_response(reply("abc", eol="\n"))
    assert r is not None and r.code == 200


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x00" * 50,
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"SIP/2.0 abc\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\n\r\n",
        "SIP/2.0 200 OK\r\nFrom: é\r\n\r\n".encode("latin-1"),
    ],
)
def test_parse_junk_is_none(junk):
    assert sip.parse_response(junk) is None


class Phone(asyncio.DatagramProtocol):
    """Answers OPTIONS like a phone; optionally from another socket (NAT, multi-homed)."""

    def __init__(self, answer_from=None, garbage_first=False):
        self.answer_from = answer_from
        self.garbage_first = garbage_first

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        tag = data.decode().split(";tag=")[1].split("\r\n")[0]
        out = self.answer_from or self.transport
        if self.garbage_first:
            out.sendto(b"\xff garbage", addr)
        out.sendto(reply(tag), addr)


async def test_udp_sweep_attributes_replies_by_tag():
    loop = asyncio.get_running_loop()
    other, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, ("127.0.0.9", 0))
    a, _ = await loop.create_datagram_endpoint(lambda: Phone(garbage_first=True), ("127.0.0.2", 0))
    b, _ = await loop.create_datagram_endpoint(lambda: Phone(answer_from=other), ("127.0.0.3", 0))
    pa, pb = a.get_extra_info("sockname")[1], b.get_extra_info("sockname")[1]
    try:
        targets = [("127.0.0.2", pa), ("127.0.0.3", pb), ("127.0.0.4", 5060)]
        replies = await sip.sweep_udp(targets, "127.0.0.1", timeout=0.5, rate=0)
    finally:
        for t in (a, b, other):
            t.close()
    got = {r.target: r for r in replies}
    assert set(got) == {("127.0.0.2", pa), ("127.0.0.3", pb)}
    assert got[("127.0.0.3", pb)].source[0] == "127.0.0.9"  # answered from elsewhere
    assert got[("127.0.0.2", pa)].agent == "Yealink SIP-T46S 66.86.0.15"
    assert got[("127.0.0.2", pa)].code == 200


async def test_tcp_query_and_silence():
    async def handle(reader, writer):
        data = await reader.readuntil(b"\r\n\r\n")
        tag = data.decode().split(";tag=")[1].split("\r\n")[0]
        writer.write(reply(tag, ua="Grandstream GXP1625 1.0.4.128"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.5", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        r = await sip.query_tcp(("127.0.0.5", port), timeout=1)
        closed = await sip.query_tcp(("127.0.0.6", port), timeout=1)
    assert r is not None and r.transport == "tcp" and r.agent.startswith("Grandstream")
    assert closed is None


async def test_tcp_silent_peer_times_out():
    async def handle(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(handle, "127.0.0.7", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await sip.query_tcp(("127.0.0.7", port), timeout=0.3) is None
