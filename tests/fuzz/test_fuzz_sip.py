"""SIP answers (agent/net/sip.py): what a phone, or anything on the LAN, sends back to an
OPTIONS sweep, over UDP and TCP. Parsing returns a message or None and never raises; a
reply only counts for a target the sweep probed; TCP framing never over-reads."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sipmessage import Message, Response

from agent.net import sip
from tests.fuzz.strategies import KIB, bounded, hostile_bytes, mutated_bytes

# The User-Agents of the lab's phones (lab/phones.toml) and of soft phones.
AGENTS = (
    "Yealink SIP-T46S 66.86.0.15",
    "Cisco/SPA504G-7.6.2c",
    "Gigaset C530 IP/42.245.00.000",
    "PolycomVVX-VVX_450-UA/6.4.0.1",
    "Grandstream HT802 1.0.43.11",
    "snomD785/10.1.54.13",
    "Fanvil V65 2.12.8.2",
    "Gigaset N670 IP PRO/2.20.0",
    "baresip v3.10.1 (x86_64/linux)",
)
CODES = (100, 180, 200, 400, 401, 403, 404, 405, 407, 480, 486, 488, 500, 503, 603)
PHRASES = {100: "Trying", 180: "Ringing", 200: "OK", 486: "Busy Here", 503: "Unavailable"}

addresses = st.ip_addresses(v=4).map(str)
ports = st.integers(1, 65535)


@st.composite
def options_answers(draw: st.DrawFn, tag: str | None = None) -> bytes:
    """An answer to our OPTIONS as the lab's phones send it (lab/services/fleet_sip.py):
    the Via, From (our tag), To, Call-ID and CSeq echoed; Contact, User-Agent, Allow,
    Accept, Supported; sometimes compact header names, LF-only line ends, an SDP body."""
    ip, port = draw(addresses), draw(ports)
    tag = tag or sip.encode_tag(ip, port)
    code = draw(st.sampled_from(CODES))
    compact = draw(st.booleans())
    name = lambda long, short: short if compact else long  # noqa: E731
    lines = [
        f"SIP/2.0 {code} {PHRASES.get(code, 'Whatever')}",
        f"{name('Via', 'v')}: SIP/2.0/UDP 10.66.0.100:40000;branch=z9hG4bK1;rport={port}",
        f"{name('From', 'f')}: <sip:phonediag@10.66.0.100>;tag={tag}",
        f"{name('To', 't')}: <sip:{ip}:{port}>;tag=9a8b7c",
        f"{name('Call-ID', 'i')}: 0123456789abcdef@10.66.0.100",
        "CSeq: 1 OPTIONS",
        f"{name('Contact', 'm')}: <sip:{ip}:{port}>",
        f"User-Agent: {draw(st.sampled_from(AGENTS))}",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER",
        "Accept: application/sdp",
        f"{name('Supported', 'k')}: replaces, timer",
    ]
    body = ""
    if draw(st.booleans()):
        body = f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        lines.append(f"{name('Content-Type', 'c')}: application/sdp")
    lines.append(f"{name('Content-Length', 'l')}: {len(body)}")
    eol = draw(st.sampled_from(("\r\n", "\n")))
    return (eol.join(lines) + eol + eol + body).encode()


answers = st.one_of(options_answers(), mutated_bytes(options_answers()), hostile_bytes)


def _check_message(msg: Message | None) -> None:
    if msg is None:
        return
    assert isinstance(msg, Message)
    if isinstance(msg, Response):
        assert isinstance(msg.code, int)


@given(answers)
def test_parse_message_never_raises(data: bytes) -> None:
    _check_message(sip.parse_message(data))
    resp = sip.parse_response(data)
    assert resp is None or isinstance(resp, Response)


@given(options_answers())
def test_lab_answers_parse_and_name_their_target(data: bytes) -> None:
    """The well-formed answers (LF-only or compact headers too) parse, and their From tag
    names the target they answer."""
    resp = sip.parse_response(data)
    assert resp is not None and 100 <= resp.code < 700
    target = sip.decode_tag(sip._tag(resp))
    assert target is not None
    reply = sip._reply(resp, target, target, "udp", 0.0, 1.0)
    assert reply.agent in AGENTS


@given(answers)
def test_reply_fields_are_bounded(data: bytes) -> None:
    """What a sweep keeps of any answer: a short reason, a few short headers."""
    resp = sip.parse_response(data)
    assume(resp is not None)
    reply = sip._reply(resp, ("10.0.0.1", 5060), ("10.0.0.2", 5060), "udp", 0.0, 1.0)
    assert len(reply.reason) <= 128
    assert all(len(v) <= 512 for v in reply.headers.values())
    tag = sip._tag(resp)
    assert tag is None or isinstance(tag, str)


@given(st.one_of(st.none(), st.text(max_size=64), st.from_regex(r"[0-9a-fA-F]{12,40}")))
def test_decode_tag(tag: str | None) -> None:
    got = sip.decode_tag(tag)
    if got is not None:
        ip, port = got
        assert ipaddress.IPv4Address(ip) and 0 <= port <= 0xFFFF


@given(addresses, st.integers(0, 0xFFFF))
def test_tag_round_trip(ip: str, port: int) -> None:
    assert sip.decode_tag(sip.encode_tag(ip, port)) == (ip, port)


@st.composite
def sweeps(draw: st.DrawFn) -> tuple[sip._UdpSweep, list[tuple[bytes, tuple[str, int]]]]:
    """A sweep that probed a few targets, and what comes back: answers carrying one of
    its tags (from the target or elsewhere), mutated ones, forged ones, junk."""
    targets = draw(st.lists(st.tuples(addresses, ports), min_size=1, max_size=6, unique=True))
    sweep = sip._UdpSweep(len(targets))
    sweep.backlog = None  # parse at once
    tags = []
    for t in targets:
        tag = sip.encode_tag(*t)
        sweep.tags[tag] = t
        sweep.sent[t] = 0.0
        tags.append(tag)
    ours = st.sampled_from(tags).flatmap(lambda tag: options_answers(tag))
    datagrams = st.one_of(ours, mutated_bytes(ours, max_ops=2), answers)
    sources = st.one_of(st.sampled_from(targets), st.tuples(addresses, ports))
    return sweep, draw(st.lists(st.tuples(datagrams, sources), max_size=12))


@given(sweeps())
def test_udp_sweep_keeps_only_answers_to_its_probes(case) -> None:
    sweep, received = case
    for data, source in received:
        sweep.received(data, source, when=0.5)
    assert set(sweep.replies) <= set(sweep.sent)
    for target, reply in sweep.replies.items():
        assert reply.target == target
        assert len(reply.also_from) <= sip.MAX_ALSO_FROM
        assert reply.source not in reply.also_from
    assert sweep.final <= len(received)
    assert sweep.done.is_set() == (sweep.final >= sweep.expected)


@given(st.one_of(answers, st.lists(answers, max_size=4).map(b"".join)))
def test_tcp_framing(data: bytes) -> None:
    end = sip._head_end(data)
    assert end is None or 2 <= end <= len(data)
    if end is not None:
        assert 0 <= sip._content_length(data[:end]) <= sip.MAX_BODY


async def _read(chunks: list[bytes], limit: int) -> bytes | None:
    reader = asyncio.StreamReader(limit=limit)
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return await asyncio.wait_for(sip._read_reply(reader, limit), 5)


TRYING = b"SIP/2.0 100 Trying\r\n\r\n"


@given(
    st.lists(st.one_of(options_answers(), answers, st.just(TRYING)), max_size=5),
    st.sampled_from((64, 512, sip.MAX_TCP_REPLY)),
)
def test_tcp_reply_reader(pieces: list[bytes], limit: int) -> None:
    """One message, not provisional, read from what a stream gives (in any chunks), or
    None; never more than the stream held, never a hang on a stream that ends."""
    data = b"".join(pieces)
    chunks = [data[i : i + 700] for i in range(0, len(data), 700)]
    got = asyncio.run(_read(chunks, limit))
    if got is not None:
        assert len(got) <= len(data) and got in data
        assert not sip._PROVISIONAL.match(got)


# ------------------------------------------------------------------ worst cases, 64 KiB


WORST = {
    "distinct tiny headers": b"SIP/2.0 200 OK\r\n"
    + b"".join(b"%x:\r\n" % i for i in range(16 * KIB))[: 64 * KIB]
    + b"\r\n",
    "one endless header": b"SIP/2.0 200 OK\r\nVia: " + b"a" * 64 * KIB,
    "blank lines": b"\r\n" * 32 * KIB,
    "NULs": b"\x00" * 64 * KIB,
    "bad UTF-8": b"SIP/2.0 200 OK\r\nUser-Agent: " + b"\xff\xc3" * 32 * KIB + b"\r\n\r\n",
    "folded lines": b"SIP/2.0 200 OK\r\nVia: a\r\n" + b" b\r\n" * 16 * KIB + b"\r\n",
    "many From params": b"SIP/2.0 200 OK\r\nFrom: <sip:a@b>" + b";t=1" * 16 * KIB + b"\r\n\r\n",
    "nested brackets": b"SIP/2.0 200 OK\r\nFrom: " + b"<" * 32 * KIB + b"\r\n\r\n",
    "huge content-length": b"SIP/2.0 200 OK\r\nContent-Length: 999999999\r\n\r\n" + b"x" * 64 * KIB,
}


@pytest.mark.parametrize("name", WORST)
def test_worst_case_answers_cost_little(name: str) -> None:
    data = WORST[name]
    bounded(sip.parse_response, data, seconds=0.25)
    sweep = sip._UdpSweep(1)
    sweep.backlog = None
    bounded(sweep.received, data, ("10.0.0.1", 5060), seconds=0.25)
    bounded(sip._head_end, data, seconds=0.05)
    bounded(sip._content_length, data, seconds=0.05)


def test_a_flood_of_header_stuffed_answers_costs_little() -> None:
    """The sweep parses up to 2 MiB of answers at once (its backlog): the costliest answer
    must cost about a millisecond per KiB, not more. Regression: 16 KiB of distinct
    one-letter headers cost 0.46 s (sipmessage files each header line with a linear
    search of the names before it), so a backlog of them blocked the loop for a minute."""
    distinct = WORST["distinct tiny headers"][: sip.MAX_HEAD]
    bounded(sip.parse_response, distinct, seconds=0.02)
    names = b"".join(b"%x:\r\n" % (i % sip.MAX_HEADER_NAMES) for i in range(4000))
    allowed = (b"SIP/2.0 200 OK\r\n" + names)[: sip.MAX_HEAD - 4] + b"\r\n\r\n"
    bounded(sip.parse_response, allowed, seconds=0.1)


def test_an_answer_of_max_header_names_still_parses() -> None:
    """The caps: distinct names (what costs) and lines; a message through many proxies
    repeats its Via and Record-Route lines."""
    vias = [b"Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bK%d" % (i, i) for i in range(200)]
    names = [b"X-H%d: v" % i for i in range(sip.MAX_HEADER_NAMES - 1)]
    lines = [b"SIP/2.0 200 OK", *vias, *names]
    assert sip.parse_response(b"\r\n".join(lines) + b"\r\n\r\n") is not None
    lines.append(b"X-One-Too-Many: v")
    assert sip.parse_response(b"\r\n".join(lines) + b"\r\n\r\n") is None
    lines = [b"SIP/2.0 200 OK", *[b"Via: x"] * sip.MAX_HEADER_LINES]
    assert sip.parse_response(b"\r\n".join(lines) + b"\r\n\r\n") is not None
    lines.append(b"Via: x")
    assert sip.parse_response(b"\r\n".join(lines) + b"\r\n\r\n") is None


def test_regression_a_final_answer_is_not_its_own_other_source() -> None:
    """Found by the nightly fuzz run: provisional answers from the target and from another
    address, then the final one from that other address: the final answer's source was
    also listed among the "other" sources (the evidence named it twice)."""
    target, elsewhere = ("10.0.0.5", 5060), ("10.0.0.9", 5060)
    sweep = sip._UdpSweep(1)
    sweep.backlog = None
    tag = sip.encode_tag(*target)
    sweep.tags[tag], sweep.sent[target] = target, 0.0
    head = f"From: <sip:phonediag@10.0.0.1>;tag={tag}\r\nCSeq: 1 OPTIONS\r\n\r\n".encode()
    trying, final = b"SIP/2.0 100 Trying\r\n" + head, b"SIP/2.0 200 OK\r\n" + head
    for data, source in ((trying, target), (trying, elsewhere), (final, elsewhere)):
        sweep.received(data, source, when=0.5)
    reply = sweep.replies[target]
    assert reply.code == 200 and reply.source == elsewhere and reply.also_from == [target]
