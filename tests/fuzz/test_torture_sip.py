"""RFC 4475 torture messages (tests/fuzz/torture/*.sip, written anew after the RFC's list of
cases: see the README there) through every parser that meets SIP bytes from the network:

- ``agent/net/sip.py``: ``parse_message``, ``parse_response`` (UDP answers), the UDP sweep's
  ``_UdpSweep.received``, the TCP framing (``_head_end``, ``_content_length``, the reader
  ``_read_reply``);
- ``agent/discovery/pnp.py``: ``parse_subscribe`` and its listener (each message also made a
  PnP SUBSCRIBE, its torture feature kept);
- the reflector: ``agent/reflector/server.py`` ``mirror_answer``, its UDP handler and TCP
  request reader, and the client's ``agent/net/reflector.py`` ``_decode_mirror``, ``sip_diff``.

Each returns its documented result (a value or None), never raises, never hangs, and is
bounded in time and memory (``tests/fuzz/strategies.py`` ``bounded``); for the messages the
RFC calls valid, what a user sees (method and Request-URI, or status code and reason;
Call-ID, CSeq, User-Agent) comes out right; TCP framing stops at the Content-Length (lies
included) and never waits once a whole message is there.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sipmessage import Message, Request, Response

from agent.discovery import pnp
from agent.net import reflector as wire
from agent.net import sip
from agent.reflector import server
from agent.reflector.limits import Limits
from tests.fuzz.strategies import FakeTransport, bounded

TORTURE = Path(__file__).parent / "torture"
FIXTURES: dict[str, bytes] = {p.stem: p.read_bytes() for p in sorted(TORTURE.glob("*.sip"))}
SOURCE = ("192.0.2.77", 5060)  # where the reflector sees the messages come from
PARSE_S = 0.25  # seconds one parse may take at most (each is well under a millisecond)
STREAM_S = 2.0  # seconds one stream read may take at most (a few event-loop turns)
HANG_S = 5.0  # a stream read still waiting after this is a hang
OPEN_S = 0.5  # how long a read on a stream left open is given to return what it holds


@dataclass(frozen=True)
class Seen:
    """What a user sees of a valid message: the method (a request) or the status code and
    reason (a response); the Request-URI's scheme, user and host; Call-ID; CSeq; the
    User-Agent (else Server); the From tag (by which the sweep matches an answer)."""

    start: str | int
    call_id: str
    cseq: tuple[int, str]
    uri: tuple[str, str | None, str] | None = None
    reason: str | None = None
    agent: str | None = None
    from_tag: str | None = None


@dataclass(frozen=True)
class Case:
    section: str  # RFC 4475
    valid: bool  # the RFC's verdict
    feature: tuple[bytes, ...]  # bytes the file must hold: its torture feature
    seen: Seen | None = None  # for the valid messages our parsers read


# longreq's values, as the fixture was written
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliett", "kilo", "lima")  # fmt: skip
LONG_HOST = ".".join(f"segment{i:02d}" for i in range(20)) + ".example.net"
LONG_DISPLAY = " ".join(f"{w}-{i}" for i in range(6) for w in WORDS)
LONG_CALL_ID = "longreq." + "".join(f"{w}{i}" for i, w in enumerate(WORDS * 8)) + "@10.66.0.28"
INTMETH = "!strange-Method0123456789_*+`.%really'~"
UNREASON = "= 0x2A, ∧ 6·7 — ¿sí? «ça marche» 電話 ok ☎"


def _req(
    method: str, user: str | None, host: str, call_id: str, seq: int, agent: str | None = None
) -> Seen:
    """A valid request as seen: its CSeq names its method; its Request-URI is a sip: one."""
    return Seen(method, call_id, (seq, method), ("sip", user, host), agent=agent)


CASES: dict[str, Case] = {
    # 3.1.1 valid messages
    "wsinv": Case("3.1.1.1", True, (b"TO :\r\n ", b"\r\n\t INVITE", b"Content-Length   :"),
                  _req("INVITE", "mireille", "desk-lab.example.com",
                       "wsinv.qp7d2mzk@10.66.0.21", 12)),
    "intmeth": Case("3.1.1.2", True, (b"\\\x00", b"\\\x07", b"\\\x7f", b"\xef\xbb\xbf"),
                    _req(INTMETH, "1_odd.USER~(mind-the!chars)&ain't+it$/wild?,/;;*",
                         "example.com", "intmeth.qx%YZ-!.*_+'@ab`~)(><:\\/\"][?}{cd",
                         481516234)),
    "esc01": Case("3.1.1.3", True, (b"sips%3Amireille%40example.com", b"n%61me=v%61lue%25"),
                  _req("INVITE", "sips:mireille@example.com", "example.net",
                       "esc01.9f1bd7e2c40a@10.66.0.24", 31337,
                       agent="Esc%41pe-Phone/1.0 (percent signs stay as written)")),
    "escnull": Case("3.1.1.4", True, (b"nul-%00-nul", b"<sip:%00%00@"),
                    _req("REGISTER", None, "example.com", "escnull.h3k2v9s0d@10.66.0.25", 4410)),
    "esc02": Case("3.1.1.5", True, (b"RE%47IST%45R sip:", b'"%Z%45"', b"C%6Fntact:"),
                  _req("RE%47IST%45R", None, "registrar.example.com",
                       "esc02.qw81lx0vbn4@10.66.0.26", 60001)),
    "lwsdisp": Case("3.1.1.6", True, (b"appelant<sip:",),
                    _req("OPTIONS", "ondine", "example.com", "lwsdisp.5k2m0x7r@10.66.0.27", 2718,
                         agent="Desk-Phone-27/4.2")),
    "longreq": Case("3.1.1.7", True, (LONG_DISPLAY.encode(), b"x-remarkably-long-extension"),
                    _req("INVITE", "very.long.user.part." + ".".join(WORDS), LONG_HOST,
                         LONG_CALL_ID, 1, agent=f"LongWinded-Phone/9.9 ({LONG_DISPLAY[:300]})")),
    "dblreq": Case("3.1.1.8", True, (b"l: 0\r\n\r\nINVITE sip:",),
                   _req("REGISTER", None, "example.com", "dblreq.r2v0a8f1k@10.66.0.29", 3090,
                        agent="Twice-Phone/2.0")),
    "semiuri": Case("3.1.1.9", True, (b"sip:desk;par=v%40example.net@example.com",),
                    _req("OPTIONS", "desk;par=v@example.net", "example.com",
                         "semiuri.9dk3l2q@10.66.0.30", 771)),
    "transports": Case("3.1.1.10", True, (b"/SCTP ", b"/TLS ", b"/MADEUP ", b", SIP/2.0/WSS"),
                       _req("OPTIONS", "ondine", "example.com", "transports.k2m9s0b1@10.66.0.31",
                            61, agent="Multi-Transport/1.1")),
    "mpart01": Case("3.1.1.11", True, (b"multipart/mixed", b"\x00\x00\x00"),
                    _req("MESSAGE", "ondine", "example.com", "mpart01.z8x7c6v5@10.66.0.32", 52,
                         agent="Parts-Phone/3.0")),
    "unreason": Case("3.1.1.12", True, (UNREASON.encode(),),
                     Seen(200, "unreason.b6n5m4q3@10.66.0.33", (1024, "INVITE"), reason=UNREASON,
                          agent="Odd-Reason-UA/0.9", from_tag="0a9b8c")),
    "noreason": Case("3.1.1.13", True, (b"SIP/2.0 100 \r\n",),
                     Seen(100, "noreason.x1c2v3b4@10.66.0.35", (4, "INVITE"), reason="",
                          agent="Silent-Reason/1.0", from_tag="c0ffee1")),
    # 3.1.2 invalid messages
    "badinv01": Case("3.1.2.1", False, (b";;tag=", b";;,;,,", b">;;;;")),
    "clerr": Case("3.1.2.2", False, (b"Content-Length: 9999\r\n",)),
    "ncl": Case("3.1.2.3", False, (b"Content-Length: -999\r\n",)),
    "scalar02": Case("3.1.2.4", False, (b"CSeq: 73786976294838206464 ", b"Max-Forwards: 512",
                                        b"4" * 150)),
    "scalarlg": Case("3.1.2.5", False, (b"CSeq: 18446744073709551617000 ",
                                        b"Retry-After: 99999999999999999999999999")),
    "quotbal": Case("3.1.2.6", False, (b'To: "Ms. Ondine Roux <sip:ondine@example.com>\r\n',)),
    "ltgtruri": Case("3.1.2.7", False, (b"INVITE <sip:ondine@example.com> SIP/2.0\r\n",)),
    "lwsruri": Case("3.1.2.8", False, (b"INVITE sip:ondine@example.com; lr SIP/2.0\r\n",)),
    "lwsstart": Case("3.1.2.9", False, (b"INVITE  sip:ondine@example.com  SIP/2.0\r\n",)),
    "trws": Case("3.1.2.10", False, (b" SIP/2.0  \r\n",)),
    "escruri": Case("3.1.2.11", False, (b"example.com?Route=%3Csip:proxy.example.com%3E SIP",)),
    "baddate": Case("3.1.2.12", False, (b"Date: Tue, 14 Mar 2023 09:26:53 CET\r\n",)),
    "regbadct": Case("3.1.2.13", False, (b"Contact: sip:desk@example.com?Route=",)),
    "badaspec": Case("3.1.2.14", False, (b"< sip:ondine@example.org >",)),
    "baddn": Case("3.1.2.15", False, (b"From: Roux, Bastien <sip:",)),
    "badvers": Case("3.1.2.16", False, (b" SIP/7.0\r\n", b"Via: SIP/7.0/UDP")),
    "mismatch01": Case("3.1.2.17", False, (b"OPTIONS sip:", b"CSeq: 8 INVITE")),
    "mismatch02": Case("3.1.2.18", False, (b"FROBNICATE sip:", b"CSeq: 8 INVITE")),
    "bigcode": Case("3.1.2.19", False, (b"SIP/2.0 8589934597 ",)),
    # 3.2 transaction layer
    "badbranch": Case("3.2.1", True, (b";branch=z9hG4bK\r\n",),
                      _req("OPTIONS", "ondine", "example.com", "badbranch.l1k2j3h4@10.66.0.55", 8,
                           agent="Cookie-Only/1.0")),
    # 3.3 application layer
    "insuf": Case("3.3.1", False, (b"INVITE sip:",)),
    "unkscm": Case("3.3.2", True, (b"OPTIONS unheardofscheme:completely-opaque-content SIP",)),
    "novelsc": Case("3.3.3", True, (b"OPTIONS soap.beep://10.66.0.58:3002 SIP",)),
    "unksm2": Case("3.3.4", True, (b"To: isbn:", b"<http://", b"<name:"),
                   _req("REGISTER", None, "example.com", "unksm2.o9p8a7s6@10.66.0.59", 3,
                        agent="Odd-Schemes/1.0")),
    "bext01": Case("3.3.5", True, (b"Require: unheardOf", b"Proxy-Require: noProxy"),
                   _req("OPTIONS", "ondine", "example.com", "bext01.d5f6g7h8@10.66.0.60", 4)),
    "invut": Case("3.3.6", True, (b"Content-Type: application/x-no-such-format",),
                  _req("INVITE", "ondine", "example.com", "invut.j1k2l3z4@10.66.0.61", 6)),
    "regaut01": Case("3.3.7", True, (b"Authorization: UnheardOfScheme ",),
                     _req("REGISTER", None, "example.com", "regaut01.x7c8v9b0@10.66.0.62", 9338,
                          agent="Odd-Auth/1.0")),
    "multi01": Case("3.3.8", False, (b"Call-ID: multi01.first", b"Call-ID: multi01.second")),
    "mcl01": Case("3.3.9", False, (b"Content-Length: 0\r\nContent-Length: 3\r\nl: 77\r\n",)),
    "bcast": Case("3.3.10", True, (b"Via: SIP/2.0/UDP 255.255.255.255;",),
                  Seen(200, "bcast.r4t5y6u7@10.66.0.66", (35, "INVITE"), reason="OK",
                       agent="Broadcast-Via/1.0", from_tag="bc4st1")),
    "zeromf": Case("3.3.11", True, (b"Max-Forwards: 0\r\n",),
                   _req("OPTIONS", "ondine", "example.com", "zeromf.i8o9p0a1@10.66.0.68", 40)),
    "cparam01": Case("3.3.12", True, (b"Contact: sip:+33612345678@gw69.example.net;odd",),
                     _req("REGISTER", None, "example.com", "cparam01.s3d4f5g6@10.66.0.69", 9)),
    "cparam02": Case("3.3.13", True, (b"Contact: <sip:+33612345679@gw70.example.net;odd",),
                     _req("REGISTER", None, "example.com", "cparam02.h7j8k9l0@10.66.0.70", 9)),
    "regescrt": Case("3.3.14", True, (b"?Route=%3Csip:proxy.example.com%3E>",),
                     _req("REGISTER", None, "example.com", "regescrt.q9w8e7r6@10.66.0.71", 14)),
    "sdp01": Case("3.3.15", True, (b"Accept: text/x-nobody-reads-this",),
                  _req("INVITE", "ondine", "example.com", "sdp01.t1y2u3i4@10.66.0.72", 3)),
    # 3.4 backward compatibility
    "inv2543": Case("3.4.1", True, (b"Via: SIP/2.0/UDP gateway73.example.com\r\n",),
                    _req("INVITE", "desk.b", "example.com", "73730@gw73.client.example.com", 56)),
}  # fmt: skip

# Refused by parse_message (None): a Request-URI sipmessage does not read (sip, sips and
# tel only: the RFC wants these two valid ones refused with a 416; ours answer nothing),
# or a Request- or Status-Line the RFC calls invalid.
REFUSED = {"unkscm", "novelsc", "ltgtruri", "lwsruri", "lwsstart", "trws", "escruri",
           "badvers", "bigcode"}  # fmt: skip
NAMES = sorted(FIXTURES)


def _is_response(data: bytes) -> bool:
    return data.startswith(b"SIP/2.0 ")


def _head_len(data: bytes) -> int:
    """Where the first message's body starts (every fixture has CRLF line ends)."""
    return data.index(b"\r\n\r\n") + 4


# ------------------------------------------------------------------ the fixtures themselves


def test_every_fixture_is_a_known_case_and_documented() -> None:
    assert set(FIXTURES) == set(CASES), "a fixture without its case, or a case without file"
    readme = (TORTURE / "README.md").read_text(encoding="utf-8")
    for name, case in CASES.items():
        assert (
            f"| `{name}.sip` | §{case.section} | {'valid' if case.valid else 'invalid'}" in readme
        )


@pytest.mark.parametrize("name", NAMES)
def test_fixture_holds_its_torture_feature_byte_exact(name: str) -> None:
    """Each file still holds what its case is about (a re-saved file, a converted line end
    would lose it) and only CRLF line ends in its head."""
    data = FIXTURES[name]
    for feature in CASES[name].feature:
        assert feature in data, f"{name}: {feature!r} is gone"
    head = data[: _head_len(data)]
    assert head.count(b"\n") == head.count(b"\r\n")


# ------------------------------------------------------------------ agent/net/sip.py, UDP


def _check_seen(msg: Message, seen: Seen) -> None:
    if isinstance(seen.start, str):
        assert isinstance(msg, Request) and msg.method == seen.start
        assert seen.uri is not None
        assert (msg.uri.scheme, msg.uri.user, msg.uri.host) == seen.uri
    else:
        assert isinstance(msg, Response) and msg.code == seen.start
        assert msg.phrase == seen.reason
    assert msg.call_id == seen.call_id
    assert (msg.cseq.sequence, msg.cseq.method) == seen.cseq
    assert (msg.headers.get("User-Agent") or msg.headers.get("Server")) == seen.agent
    if seen.from_tag is not None:
        assert isinstance(msg, Response) and sip._tag(msg) == seen.from_tag


@pytest.mark.parametrize("name", NAMES)
def test_parse_message_and_response(name: str) -> None:
    data, case = FIXTURES[name], CASES[name]
    msg = bounded(sip.parse_message, data, seconds=PARSE_S)
    resp = bounded(sip.parse_response, data, seconds=PARSE_S)
    assert msg is None or isinstance(msg, Request | Response)
    assert (resp is not None) == isinstance(msg, Response)
    assert resp is None or (isinstance(msg, Response) and resp.code == msg.code)
    if name in REFUSED:
        assert msg is None, f"{name} should be refused"
        return
    if case.seen is not None:
        assert msg is not None, f"{name} is valid and should be read"
        _check_seen(msg, case.seen)
        if name in ("dblreq", "mpart01"):  # the body is what follows the blank line, as is
            assert msg.body == data[_head_len(data) :]


@pytest.mark.parametrize("name", [n for n in NAMES if _is_response(FIXTURES[n])])
def test_udp_sweep_reads_the_answers(name: str) -> None:
    """As is, the answer names no probe of ours: ignored. With one of our tags in its From,
    the sweep keeps it for that target, with the code, reason and agent a user sees."""
    data, seen = FIXTURES[name], CASES[name].seen
    sweep = sip._UdpSweep(1)
    sweep.backlog = None
    target = ("10.66.0.9", 5060)
    tag = sip.encode_tag(*target)
    sweep.tags[tag], sweep.sent[target] = target, 0.0
    bounded(sweep.received, data, SOURCE, seconds=PARSE_S, megabytes=None)
    assert sweep.replies == {} and sweep.ignored == 1
    if seen is None:
        return
    assert seen.from_tag is not None
    ours = data.replace(b";tag=" + seen.from_tag.encode(), b";tag=" + tag.encode(), 1)
    sweep.received(ours, SOURCE, when=0.5)
    reply = sweep.replies[target]
    assert (reply.code, reply.reason, reply.agent) == (seen.start, seen.reason, seen.agent)
    assert reply.source == SOURCE and sweep.final == (1 if reply.code >= 200 else 0)


# ------------------------------------------------------------------ TCP framing


Read = Callable[[asyncio.StreamReader], Awaitable[bytes | None]]


async def _stream(
    data: bytes, read: Read, eof: bool, chunk: int, reads: int, wait: float = HANG_S
) -> tuple[list[bytes | None], bool]:
    """Feed ``data`` in ``chunk``-byte pieces, one event-loop turn apart (so that a blank
    line or a CRLF is split), and ``read(reader)`` meanwhile, up to ``reads`` times or
    until it gives None; the messages read and whether the last read was still waiting
    after ``wait`` seconds."""
    reader = asyncio.StreamReader(limit=sip.MAX_TCP_REPLY)

    async def feed() -> None:
        for i in range(0, len(data), chunk):
            reader.feed_data(data[i : i + chunk])
            await asyncio.sleep(0)
        if eof:
            reader.feed_eof()

    feeder = asyncio.create_task(feed())
    got: list[bytes | None] = []
    waiting = False
    try:
        while len(got) < reads and (not got or got[-1] is not None):
            try:
                got.append(await asyncio.wait_for(read(reader), wait))
            except TimeoutError:
                waiting = True
                break
    finally:
        feeder.cancel()
    return got, waiting


def _expected_reply(name: str, data: bytes) -> bytes | None:
    """What the agent's TCP reader returns from a stream holding ``data`` then closed: the
    first message that is not provisional, framed by its blank line and first
    Content-Length (at most MAX_BODY)."""
    head = _head_len(data)
    if name == "noreason":  # provisional: skipped, and nothing follows
        return None
    if name == "clerr":  # 9999 bytes announced, fewer come before the stream ends
        return None
    if name in ("ncl", "mcl01", "dblreq"):  # -999 is no length; the first one is 0; l: 0
        return data[:head]
    return data


@pytest.mark.parametrize("name", NAMES)
def test_tcp_framing(name: str) -> None:
    data = FIXTURES[name]
    end = bounded(sip._head_end, data, seconds=PARSE_S)
    assert end == _head_len(data)
    length = bounded(sip._content_length, data[:end], seconds=PARSE_S)
    assert 0 <= length <= sip.MAX_BODY
    want = _expected_reply(name, data)
    if want is not None and not sip._PROVISIONAL.match(data):
        assert end + length == len(want)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("chunk", [13, 4096])
def test_tcp_reply_reader(name: str, chunk: int) -> None:
    """The reply reader returns exactly the frame, never bytes past it; once the stream
    ends it never waits; while it stays open, it returns as soon as a whole message is in
    (waiting only for what the Content-Length still announces, or for a final answer)."""
    data = FIXTURES[name]
    want = _expected_reply(name, data)

    def read(reader: asyncio.StreamReader) -> Awaitable[bytes | None]:
        return sip._read_reply(reader, sip.MAX_TCP_REPLY)

    def closed() -> tuple[list[bytes | None], bool]:
        return asyncio.run(_stream(data, read, eof=True, chunk=chunk, reads=1))

    got, waiting = bounded(closed, seconds=STREAM_S)
    assert not waiting, f"{name}: the reader hangs on a closed stream"
    assert got == [want]

    def still_open() -> tuple[list[bytes | None], bool]:
        return asyncio.run(_stream(data, read, eof=False, chunk=chunk, reads=1, wait=OPEN_S))

    got, waiting = bounded(still_open, seconds=STREAM_S, megabytes=None)
    if want is not None:
        assert got == [want] and not waiting
    else:  # waits for the rest of the body, or for a final answer
        assert waiting and got == []


@pytest.mark.parametrize("name", NAMES)
def test_tcp_reply_reader_limit(name: str) -> None:
    """A reader allowed 64 bytes stops after its first read (4 KiB at most): a message,
    the stream's first bytes, or None; never more than the stream held."""
    data = FIXTURES[name]

    async def run() -> bytes | None:
        reader = asyncio.StreamReader(limit=64)
        reader.feed_data(data)
        reader.feed_eof()
        return await asyncio.wait_for(sip._read_reply(reader, 64), HANG_S)

    got = bounded(lambda: asyncio.run(run()), seconds=STREAM_S)
    assert got is None or (len(got) <= len(data) and data.startswith(got))


# ------------------------------------------------------------------ PnP SUBSCRIBE

EVENT = b'Event: ua-profile;profile-type="device";vendor="Torture";model="RFC-4475";version="1.0"'


def as_subscribe(data: bytes) -> bytes:
    """The request made a PnP SUBSCRIBE: its method replaced, an Event header inserted
    after the Request-Line; the rest (the torture) as it was."""
    line, eol, rest = data.partition(b"\r\n")
    _method, space, tail = line.partition(b" ")
    return b"SUBSCRIBE" + space + tail + eol + EVENT + eol + rest


def _check_pnp(found: tuple[str | None, dict[str, str]] | None) -> None:
    if found is None:
        return
    mac, attrs = found
    assert mac is None or re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)
    assert set(attrs) <= {"vendor", "model", "version", "profile", "agent", "domain"}
    for value in attrs.values():
        assert isinstance(value, str) and 0 < len(value) <= pnp.MAX_TEXT and value.isprintable()


@pytest.mark.parametrize("name", NAMES)
def test_pnp_subscribe(name: str) -> None:
    data, seen = FIXTURES[name], CASES[name].seen
    assert bounded(pnp.parse_subscribe, data, seconds=PARSE_S) is None  # not a SUBSCRIBE
    if _is_response(data):
        return
    sub = as_subscribe(data)
    found = bounded(pnp.parse_subscribe, sub, seconds=PARSE_S)
    _check_pnp(found)
    if name in REFUSED:
        assert found is None
    if seen is None or name in REFUSED:
        return
    assert found is not None, f"{name} as a SUBSCRIBE should be read"
    mac, attrs = found
    assert mac is None  # no fixture names a MAC
    assert (attrs["vendor"], attrs["model"], attrs["version"], attrs["profile"]) == (
        "Torture", "RFC-4475", "1.0", "device",
    )  # fmt: skip
    assert attrs.get("agent") == (seen.agent[: pnp.MAX_TEXT] if seen.agent else None)
    assert seen.uri is not None
    assert attrs.get("domain") == seen.uri[2][: pnp.MAX_TEXT]


def test_pnp_listener_takes_them_all() -> None:
    """Every fixture and its SUBSCRIBE, each from its own address: only the SUBSCRIBEs
    read give sightings; nothing raises; the whole lot is cheap."""
    datagrams = [d for n in NAMES for d in (FIXTURES[n], as_subscribe(FIXTURES[n]))]
    listener = pnp._Listener(lambda ip: True)

    def run() -> None:
        for i, data in enumerate(datagrams):
            listener.datagram_received(data, (f"10.66.1.{i}", 5060))

    bounded(run, seconds=2.0, megabytes=None)
    read = sum(pnp.parse_subscribe(d) is not None for d in datagrams if len(d) <= pnp.MAX_MESSAGE)
    assert len(listener.sightings) == read > 0


# ------------------------------------------------------------------ the reflector


def _mirrored(name: str, data: bytes) -> bool:
    """Whether the reflector mirrors it: any request it reads (tolerantly, invalid ones
    included: an ALG test wants them as they arrived), within its size limit."""
    return not _is_response(data) and name not in REFUSED and len(data) <= wire.MAX_REQUEST


@pytest.mark.parametrize("name", NAMES)
def test_reflector_mirror(name: str) -> None:
    """The mirror answer: bounded, and what the client decodes from it is the request
    byte for byte (NULs, folded lines, bad escapes and all), with its CSeq."""
    data, seen = FIXTURES[name], CASES[name].seen
    answer = bounded(server.mirror_answer, data, SOURCE, seconds=PARSE_S)
    if not _mirrored(name, data):
        assert answer is None
        return
    assert answer is not None, f"{name} should be mirrored"
    assert answer.startswith(b"SIP/2.0 200 OK\r\n")
    assert len(answer) <= len(data) + wire.MIRROR_OVERHEAD
    mirror = bounded(wire._decode_mirror, answer, data, seconds=PARSE_S)
    assert mirror is not None and mirror.arrived == data and mirror.source == SOURCE
    assert bounded(wire.sip_diff, data, mirror.arrived, seconds=PARSE_S) == []
    if seen is not None:  # the answer copies the request's Call-ID and CSeq
        resp = sip.parse_response(answer)
        assert resp is not None and resp.call_id == seen.call_id
        assert (resp.cseq.sequence, resp.cseq.method) == seen.cseq


def test_reflector_udp_handler() -> None:
    """Each fixture as a datagram: an answer to its source for the mirrored ones only,
    each counted."""

    async def run() -> tuple[FakeTransport, server.Reflector]:
        reflector = server.Reflector("127.0.0.1", (), (), Limits())
        transport = FakeTransport()
        for i, name in enumerate(NAMES):
            reflector._datagram(transport, FIXTURES[name], (f"192.0.2.{i}", 5060))
        await reflector.close()
        return transport, reflector

    transport, reflector = bounded(lambda: asyncio.run(run()), seconds=2.0)
    mirrored = [i for i, n in enumerate(NAMES) if _mirrored(n, FIXTURES[n])]
    assert [addr for _, addr in transport.sent] == [(f"192.0.2.{i}", 5060) for i in mirrored]
    assert reflector.counters["mirrored"] == len(mirrored)
    too_big = sum(len(d) > wire.MAX_REQUEST for d in FIXTURES.values())
    assert reflector.counters["dropped_size"] == too_big
    assert reflector.counters["dropped_malformed"] == len(NAMES) - len(mirrored) - too_big


def _expected_requests(name: str, data: bytes) -> list[bytes]:
    """The requests the reflector's TCP reader frames from a stream holding ``data``: by
    the blank line and the (first) Content-Length; none past its size limit, none that
    is no request or has no readable length."""
    head = _head_len(data)
    if name == "dblreq":  # two requests, one after the other
        return [data[:head], data[head:]]
    if name == "mcl01":  # the first length (0): the body is no request
        return [data[:head]]
    if name in ("clerr", "ncl") or not _mirrored(name, data):  # 9999 > limit; -999
        return []
    return [data]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("chunk", [13, 4096])
def test_reflector_tcp_reader(name: str, chunk: int) -> None:
    data = FIXTURES[name]
    want = _expected_requests(name, data)
    reflector = server.Reflector("127.0.0.1", (), (), Limits())
    buf = bytearray()

    def read(reader: asyncio.StreamReader) -> Awaitable[bytes | None]:
        return reflector._read_request(reader, buf, "192.0.2.1")

    def closed() -> tuple[list[bytes | None], bool]:
        buf.clear()
        return asyncio.run(_stream(data, read, eof=True, chunk=chunk, reads=len(want) + 1))

    got, waiting = bounded(closed, seconds=STREAM_S)
    assert not waiting, f"{name}: the reader hangs on a closed stream"
    assert got == [*want, None]

    def still_open() -> tuple[list[bytes | None], bool]:
        buf.clear()
        reads = max(1, len(want))
        return asyncio.run(_stream(data, read, eof=False, chunk=chunk, reads=reads, wait=OPEN_S))

    got, waiting = bounded(still_open, seconds=STREAM_S, megabytes=None)
    # each whole request read without waiting for more; else refused at once or waiting
    assert got == want if want else (got == [None] or (waiting and got == []))
