"""The SIP PnP listener: real multicast SUBSCRIBEs to 224.0.1.75:5060 over loopback (the
test namespace's lo carries multicast once a group is joined on 127.0.0.1), samples of
real phones' SUBSCRIBEs (phone-landscape.md §2.2 and the public PnP servers it cites),
and garbage of every kind. The listener must never answer."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket

import pytest

from agent import identify, pipeline
from agent.config import Config
from agent.discovery import Context, pnp
from agent.model import Device
from agent.scope import ScopedNetwork

NET = ScopedNetwork(ipaddress.ip_network("127.0.0.0/25"), "lo", "127.0.0.1")


def subscribe(uri_user: str, event: str, agent: str | None = None, host: str = "224.0.1.75"):
    lines = [
        f"SUBSCRIBE sip:{uri_user}@{host} SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK1611133778;rport",
        f"From: <sip:{uri_user}@{host}>;tag=395400190",
        f"To: <sip:{uri_user}@{host}>",
        "Call-ID: 490431573-5080-1@BJC.BGI.IG.DA",
        "CSeq: 20000 SUBSCRIBE",
        "Contact: <sip:192.168.1.2:5060>",
        "Max-Forwards: 70",
        *([f"User-Agent: {agent}"] if agent else []),
        "Expires: 0",
        f"Event: {event}",
        "Accept: application/url",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def ua(vendor: str, model: str, version: str) -> str:
    return f'ua-profile;profile-type="device";vendor="{vendor}";model="{model}";version="{version}"'


# Shapes of real SUBSCRIBEs (phone-landscape.md §2.2)
GRANDSTREAM = subscribe(
    "MAC%3AC074AD112233",
    ua("Grandstream", "GRP2612W", "1.0.5.67"),
    "Grandstream GRP2612W 1.0.5.67",
)
YEALINK = subscribe(
    "MAC001565f4f9e1", ua("yealink", "W52P", "25.81.0.10"), "Yealink W52P 25.81.0.10"
)
SNOM = subscribe("MAC%3a0004132E08B4", ua("snom", "snom370", "8.7.5.48"))
GIGASET = subscribe("MAC%3a00135E874B49", ua("OEM", "OEM", "7.1.19"), host="gigaset.com")
PLANET = (
    b"SUBSCRIBE sip:224.0.1.75 SIP/2.0\n"  # LF only, MAC only in From
    b"Via: SIP/2.0/UDP 192.168.0.9:5060\n"
    b"From: <sip:MAC=00304fa99948@224.0.1.75>;tag=1\n"
    b"To: <sip:224.0.1.75>\n"
    b"Call-ID: 7@192.168.0.9\n"
    b"CSeq: 1 SUBSCRIBE\n"
    b'o:ua-profile;profile-type="device";vendor="PLANET";model="VIP-2140PT";version="2.0.3.2991"\n'
    b"\n"
)
AUDIOCODES = (  # no MAC in any URI: the vendor shows in the User-Agent only
    b"SUBSCRIBE sip:224.0.1.75:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.0.8:5060\r\n"
    b"From: <sip:224.0.1.75:5060>;tag=9\r\n"
    b"To: <sip:224.0.1.75:5060>\r\n"
    b"Call-ID: 8@192.168.0.8\r\n"
    b"CSeq: 1 SUBSCRIBE\r\n"
    b"User-Agent: AUDC-IPPhone/2.2.2.0 (440HD-Rev0)\r\n"
    b'Event: ua-profile;profile-type="application";model="440HD";version="2.2.2"\r\n'
    b"\r\n"
)


@pytest.mark.parametrize(
    "data, mac, attrs",
    [
        (
            GRANDSTREAM,
            "c0:74:ad:11:22:33",
            {"vendor": "Grandstream", "model": "GRP2612W", "version": "1.0.5.67"},
        ),
        (YEALINK, "00:15:65:f4:f9:e1", {"vendor": "yealink", "agent": "Yealink W52P 25.81.0.10"}),
        (SNOM, "00:04:13:2e:08:b4", {"model": "snom370", "profile": "device"}),
        (GIGASET, "00:13:5e:87:4b:49", {"vendor": "OEM", "domain": "gigaset.com"}),
        (PLANET, "00:30:4f:a9:99:48", {"vendor": "PLANET", "model": "VIP-2140PT"}),
        (AUDIOCODES, None, {"model": "440HD", "profile": "application"}),
    ],
)
def test_parse_real_subscribes(data, mac, attrs):
    got_mac, got = pnp.parse_subscribe(data)
    assert got_mac == mac
    assert attrs.items() <= got.items()
    assert "domain" not in got or not got["domain"][0].isdigit()


GARBAGE = [
    b"",
    b"\x00" * 50,
    os.urandom(300),
    b"SUBSCRIBE",
    b"SUBSCRIBE ua-profile",
    b"SUBSCRIBE sip:x SIP/2.0\r\n\r\n",  # no Event
    subscribe("MAC001565f4f9e1", "presence"),  # another event package
    subscribe("MAC001565f4f9e1", "ua-profilex;vendor=x"),
    YEALINK.replace(b"SUBSCRIBE", b"NOTIFY", 1),
    YEALINK.replace(b"SIP/2.0\r\n", b"\r\n", 1),  # broken request line
    YEALINK[:80],  # truncated
    YEALINK.replace(b"CSeq: 20000 SUBSCRIBE", b"CSeq: \xff\xfe"),
    b"SIP/2.0 200 OK\r\nEvent: ua-profile\r\n\r\n",
]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_is_no_subscribe(data):
    try:
        assert pnp.parse_subscribe(data) is None
    except Exception as e:  # pragma: no cover - the listener would survive, but say so
        pytest.fail(f"parse_subscribe raised {e!r}")


@pytest.mark.parametrize(
    "event, expected",
    [
        ('ua-profile;vendor="a\\"b";model=x;version=""', {"vendor": 'a"b', "model": "x"}),
        ("ua-profile;vendor=" + "v" * 5000, {"vendor": "v" * pnp.MAX_TEXT}),
        ('ua-profile;VENDOR="\x01Yea\x7flink"', {"vendor": "Yealink"}),
        ('ua-profile;vendor="a";vendor="b"', {"vendor": "a"}),
        ("ua-profile;;;=;vendor", {}),
    ],
)
def test_event_params_are_cleaned_and_bounded(event, expected):
    got = {k: v for k, v in pnp.event_params(event).items() if v}
    assert got == expected


@pytest.mark.parametrize(
    "user, mac",
    [
        ("MAC:00135E874B49", "00:13:5e:87:4b:49"),
        ("MAC%3a00135E874B49", "00:13:5e:87:4b:49"),
        ("mac=00-30-4f-a9-99-48", "00:30:4f:a9:99:48"),
        ("MAC000000000000", None),
        ("MAC010000000000", None),  # multicast
        ("MAC00135E874B4", None),
        ("MAC00135E874B49ff", None),
        ("alice", None),
        (None, None),
        ("MAC:" + "a" * 10000, None),
    ],
)
def test_mac_from_user(user, mac):
    assert pnp.mac_from_user(user) == mac


def test_the_listener_bounds_what_it_keeps():
    listener = pnp._Listener(lambda ip: True)
    big = YEALINK + b"x" * pnp.MAX_MESSAGE
    for i in range(pnp.MAX_MESSAGES * 3):
        data = big if i % 3 == 0 else YEALINK if i % 3 == 1 else os.urandom(64)
        listener.datagram_received(
            data, (f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", 5060)
        )
    assert listener.seen == pnp.MAX_MESSAGES
    assert 0 < len(listener.sightings) <= pnp.MAX_SOURCES


def test_window_defaults_to_mdns_and_fits_the_step_budget():
    assert pnp.window(Config(mdns_window=3.0)) == 3.0
    assert pnp.window(Config(mdns_window=3.0, pnp_window=1.0)) == 1.0
    cfg = Config(mdns_window=1.0, pnp_window=30.0)
    assert pnp.window(cfg) == 30.0
    assert pipeline._method_timeout(cfg, 254) > pnp.window(cfg)  # the step outlasts it


def sender(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.setblocking(False)
    return s


async def test_listens_on_the_group_in_scope_and_never_answers():
    ctx = Context(Config(mdns_window=1.0), [NET])
    # Another SIP socket on this host's 5060 (a softphone): both must work side by side
    softphone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    softphone.bind(("127.0.0.1", pnp.PORT))
    task = asyncio.create_task(pnp.discover(ctx))
    await asyncio.sleep(0.3)
    senders = {ip: sender(ip) for ip in ("127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.200")}
    try:
        group = (pnp.GROUP, pnp.PORT)
        for _ in range(2):  # phones resend
            senders["127.0.0.20"].sendto(YEALINK, group)
        senders["127.0.0.21"].sendto(GIGASET, group)
        for data in GARBAGE:
            senders["127.0.0.22"].sendto(data, group)
        senders["127.0.0.22"].sendto(YEALINK + b"x" * 20000, group)  # too big: dropped
        senders["127.0.0.200"].sendto(SNOM, group)  # out of scope
        senders["127.0.0.22"].sendto(b"OPTIONS sip:x SIP/2.0\r\n\r\n", ("127.0.0.1", pnp.PORT))
        sightings = {s.ip: s for s in await task}
        assert set(sightings) == {"127.0.0.20", "127.0.0.21"}
        yealink = sightings["127.0.0.20"]
        assert yealink.method == "pnp" and yealink.mac == "00:15:65:f4:f9:e1"
        assert yealink.attrs["model"] == "W52P"
        softphone.settimeout(1)
        assert softphone.recvfrom(2048)[0].startswith(b"OPTIONS")  # unicast stayed its own
        for s in senders.values():  # nothing was ever sent back
            with pytest.raises(BlockingIOError):
                s.recvfrom(2048)
    finally:
        for s in senders.values():
            s.close()
        softphone.close()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_two_listeners_share_the_port():
    first = pnp.open_socket(["127.0.0.1"])
    try:
        second = pnp.open_socket(["127.0.0.1"])
        second.close()
    finally:
        first.close()


async def test_no_interface_to_join_is_no_sighting_not_an_error():
    ctx = Context(Config(mdns_window=0.2), [])
    assert await pnp.discover(ctx) == []


@pytest.mark.parametrize(
    "data, mac, expected",
    [
        (YEALINK, "00:15:65:f4:f9:e1", ("yealink", "W52P", "25.81.0.10")),
        (SNOM, "00:04:13:2e:08:b4", ("snom", "370", "8.7.5.48")),
        (GRANDSTREAM, "c0:74:ad:11:22:33", ("grandstream", "GRP2612W", "1.0.5.67")),
        (GIGASET, "00:13:5e:87:4b:49", ("gigaset", None, "7.1.19")),  # OEM: no model
        (PLANET, "00:30:4f:a9:99:48", ("planet", "VIP-2140PT", "2.0.3.2991")),  # generic SIP
    ],
)
def test_pnp_evidence_identifies_the_phone(data, mac, expected):
    got_mac, attrs = pnp.parse_subscribe(data)
    d = Device("192.168.1.20", mac=got_mac, evidence={"pnp": attrs}, found_by=["pnp"])
    identify.identify(d)
    assert (d.vendor, d.model, d.firmware) == expected
    assert identify.is_phone(d)


async def test_a_port_that_cannot_be_had_is_an_error_the_run_reports(monkeypatch):
    def taken(address, share):
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(pnp, "_bound", taken)
    with pytest.raises(OSError, match=r"cannot listen on 224\.0\.1\.75:5060"):
        await pnp.discover(Context(Config(mdns_window=0.2), [NET]))
