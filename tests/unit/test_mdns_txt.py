"""mDNS discovery, hardened: TXT keys in their many spellings, bounded sizes and counts,
only in-scope addresses; end to end with zeroconf answering on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from agent import identify, pipeline
from agent.config import Config
from agent.discovery import Context, mdns
from agent.scope import ScopedNetwork

NET = ScopedNetwork(ipaddress.ip_network("127.0.0.0/28"), "lo", "127.0.0.1")


def in_scope(ip: str) -> bool:
    return ipaddress.ip_address(ip) in NET.network


@pytest.mark.parametrize(
    "txt, expected, mac",
    [
        (
            {b"model": b"SIP-T46S", b"fw": b"66.86.0.15", b"mac": b"805EC0A1B2C3"},
            {"model": "SIP-T46S", "firmware": "66.86.0.15"},
            "80:5e:c0:a1:b2:c3",
        ),
        (
            {b"md": b"VVX 410", b"swversion": b"6.4.0", b"manufacturer": b"Polycom"},
            {"model": "VVX 410", "firmware": "6.4.0", "vendor": "Polycom"},
            None,
        ),
        (  # printers: "ty" and "(product)"
            {b"ty": b"HP LaserJet M402", b"product": b"(HP LaserJet M402)", b"usb_MFG": b"HP"},
            {"model": "HP LaserJet M402", "vendor": "HP"},
            None,
        ),
        (  # the first spelling that parses as a MAC wins; a bad one is skipped
            {b"mac": b"not-a-mac", b"deviceid": b"00:04:13:aa:bb:cc", b"id": b"x"},
            {},
            "00:04:13:aa:bb:cc",
        ),
        ({b"MODEL": b"D785", b"Version": b"10.1"}, {"model": "D785", "firmware": "10.1"}, None),
        ({b"model": None, b"fw": b""}, {}, None),  # keys without values
    ],
)
def test_txt_spellings(txt, expected, mac):
    attrs, got_mac = mdns.txt_attrs(txt)
    assert {k: v for k, v in attrs.items() if not k.startswith("txt.")} == expected
    assert got_mac == mac


def test_txt_is_bounded_and_cleaned():
    txt = {f"k{i}".encode(): b"v" * 5000 for i in range(200)}
    txt = {b"model": b"\x00Yea\x1blink\xff T46S", **txt}
    attrs, _ = mdns.txt_attrs(txt)
    raw = {k: v for k, v in attrs.items() if k.startswith("txt.")}
    assert len(raw) <= mdns.MAX_TXT_KEYS
    assert all(len(v) <= mdns.MAX_TXT_VALUE for v in raw.values())
    assert attrs["model"] == "Yealink\ufffd T46S"  # control characters dropped
    odd = {b"\x00\x01": b"x", b"k" * 500: b"y", b"sp ace": b"z", 5: b"w", b"ok": 7}
    attrs, _ = mdns.txt_attrs(odd)
    assert set(attrs) <= {"txt.ok", "txt." + "k" * mdns.MAX_TXT_KEY}
    assert mdns.txt_attrs(None) == ({}, None)
    assert mdns.txt_attrs([b"not", b"a dict"]) == ({}, None)


def info(stype, name, addresses, txt=None, server="host.local."):
    return ServiceInfo(
        stype,
        f"{name}.{stype}",
        addresses=[socket.inet_aton(a) for a in addresses],
        port=80,
        properties=txt or {},
        server=server,
    )


class Broken:
    type = "_http._tcp.local."
    name = "x._http._tcp.local."
    server = None
    properties = None

    def parsed_addresses(self):
        raise ValueError("garbled record")


def test_one_sighting_per_address_in_scope():
    infos = [
        info("_sip._udp.local.", "Yealink SIP-T46S", ["127.0.0.2"], {b"model": b"SIP-T46S"}),
        info("_http._tcp.local.", "web", ["127.0.0.2", "10.9.9.9"], {b"fw": b"66.86.0.15"}),
        info("_ipp._tcp.local.", "Printer", ["127.0.0.3"], {b"ty": b"Brother HL-L2350DW"}),
        info("_http._tcp.local.", "spoofed", ["8.8.8.8", "192.168.1.1"]),
        info("_http._tcp.local.", "many", [f"127.0.0.{i}" for i in range(4, 15)]),
        Broken(),
    ]
    got = {s.ip: s for s in mdns.sightings(infos, in_scope)}
    assert "8.8.8.8" not in got and "10.9.9.9" not in got and "192.168.1.1" not in got
    phone = got["127.0.0.2"].attrs
    assert phone["type"] == "_sip._udp.local.,_http._tcp.local."
    assert phone["name"] == "Yealink SIP-T46S"
    assert (phone["model"], phone["firmware"]) == ("SIP-T46S", "66.86.0.15")
    many = [ip for ip, sighting in got.items() if sighting.attrs["name"] == "many"]
    assert len(many) == mdns.MAX_ADDRESSES  # the rest of that record's addresses: dropped
    devices = {d.ip: d for d in pipeline.merge(list(got.values()))}
    for d in devices.values():
        identify.identify(d)
    assert devices["127.0.0.3"].identified_by == ["not-phone:printer:mdns.type"]
    assert not identify.is_phone(devices["127.0.0.3"])


def test_many_instances_at_one_address_stay_bounded():
    infos = [
        info(
            "_http._tcp.local.",
            f"n{i}",
            ["127.0.0.2"],
            {f"k{i}-{j}".encode(): b"v" for j in range(30)},
        )
        for i in range(50)
    ]
    (s,) = mdns.sightings(infos, in_scope)
    assert len(s.attrs) <= mdns.MAX_ATTRS + 1  # + the type list


def records(*items: tuple[str, str, str]) -> list[tuple[str, str, str]]:
    return list(items)


PHONE = "Yealink SIP-T46S 805EC0A1B2C3._http._tcp.local."


def test_witness_believes_an_address_about_itself_only():
    """mDNS is unauthenticated: an instance counts at an address when that address sent
    its SRV and its address record; a TXT when no other address sent one too."""
    w = mdns.Witness()
    own = records(
        ("ptr", "_http._tcp.local.", PHONE),
        ("srv", PHONE, ""),
        ("txt", PHONE, ""),
        ("a", "yealink.local.", "10.0.0.2"),
    )
    w.note("10.0.0.2", own)
    assert w.vouched(PHONE, "yealink.local.", "10.0.0.2")
    assert w.vouched(PHONE.upper(), "YEALINK.local.", "10.0.0.2")  # DNS names: any case
    assert w.txt_trusted(PHONE, "10.0.0.2")
    spoof = "Gigaset C530 IP 1._sip._udp.local."
    w.note(
        "10.0.0.9",  # a neighbour speaking for 10.0.0.2, and overwriting its TXT record
        records(
            ("ptr", "_sip._udp.local.", spoof),
            ("srv", spoof, ""),
            ("a", "spoof.local.", "10.0.0.2"),
            ("txt", PHONE, ""),
        ),
    )
    assert not w.vouched(spoof, "spoof.local.", "10.0.0.2")
    assert not w.vouched(spoof, "yealink.local.", "10.0.0.2")  # its SRV came from .9
    assert w.vouched(PHONE, "yealink.local.", "10.0.0.2")
    assert not w.txt_trusted(PHONE, "10.0.0.2")
    assert not w.vouched("never.seen._http._tcp.local.", "yealink.local.", "10.0.0.2")


def test_witness_admits_a_bounded_number_of_instances_per_announcer():
    w = mdns.Witness()
    w.note("10.0.0.2", records(("ptr", "_http._tcp.local.", PHONE)))
    flood = [f"n{i}._http._tcp.local." for i in range(mdns.MAX_PER_SOURCE + 50)]
    w.note("10.0.0.9", records(*(("ptr", "_http._tcp.local.", n) for n in flood)))
    admitted = [n for n in flood if w.admit(n)]
    assert len(admitted) == mdns.MAX_PER_SOURCE
    assert w.admit(PHONE)  # the flood took none of the phone's turn


def test_sightings_keep_only_what_an_address_said_itself():
    w = mdns.Witness()
    w.note(
        "127.0.0.2",
        records(("srv", PHONE, ""), ("txt", PHONE, ""), ("a", "yealink.local.", "127.0.0.2")),
    )
    w.note(
        "127.0.0.9",
        records(
            ("srv", "Gigaset C530 IP._sip._udp.local.", ""),
            ("txt", "Gigaset C530 IP._sip._udp.local.", ""),
            ("a", "spoof.local.", "127.0.0.2"),
        ),
    )
    phone = info(
        "_http._tcp.local.",
        "Yealink SIP-T46S 805EC0A1B2C3",
        ["127.0.0.2"],
        {b"vendor": b"Yealink", b"mac": b"80:5e:c0:a1:b2:c3"},
        server="yealink.local.",
    )
    spoof = info(
        "_sip._udp.local.",
        "Gigaset C530 IP",
        ["127.0.0.2"],
        {b"vendor": b"Gigaset", b"model": b"C530 IP", b"mac": b"7c:2f:80:00:00:01"},
        server="spoof.local.",
    )
    # Unchecked (no witness), the spoof comes first (_sip._udp sorts first) and wins.
    (unchecked,) = mdns.sightings([spoof, phone], in_scope)
    assert unchecked.attrs["vendor"] == "Gigaset"
    (s,) = mdns.sightings([spoof, phone], in_scope, w)
    assert s.attrs["type"] == "_http._tcp.local." and s.attrs["vendor"] == "Yealink"
    assert s.mac == "80:5e:c0:a1:b2:c3"
    w.note("127.0.0.9", records(("txt", PHONE, "")))  # now a second TXT for the phone
    (s,) = mdns.sightings([spoof, phone], in_scope, w)
    assert "vendor" not in s.attrs and s.mac is None
    assert s.attrs["name"] == "Yealink SIP-T46S 805EC0A1B2C3"


async def test_discovery_on_loopback_with_zeroconf():
    """Real mDNS exchanges on lo: a phone (with a huge TXT and an out-of-scope address) and a
    printer, each answering for itself from its own address, and a spoofer at 127.0.0.4
    publishing, for the printer's address, a _sip._udp "Yealink" with a TXT of its own. The
    responders start once the agent listens: their announcements are multicast from their
    own addresses (on lo, answers to the agent's unicast questions all leave from 127.0.0.1)."""
    txt = {
        "model": "SIP-T46S",
        "fw": "66.86.0.15",
        "mac": "80:5e:c0:a1:b2:c3",
        "vendor": "Yealink",
        "junk": "j" * 240,
    }
    published = {
        "127.0.0.2": AsyncServiceInfo(
            "_http._tcp.local.",
            PHONE,
            addresses=[socket.inet_aton("127.0.0.2"), socket.inet_aton("10.9.9.9")],
            port=80,
            properties=txt,
            server="yealink.local.",
        ),
        "127.0.0.3": AsyncServiceInfo(
            "_ipp._tcp.local.",
            "Office printer._ipp._tcp.local.",
            addresses=[socket.inet_aton("127.0.0.3")],
            port=631,
            properties={"ty": "Brother HL-L2350DW"},
            server="printer.local.",
        ),
        "127.0.0.4": AsyncServiceInfo(
            "_sip._udp.local.",
            "Yealink SIP-T46S 805EC0FFFFFF._sip._udp.local.",
            addresses=[socket.inet_aton("127.0.0.3")],
            port=5060,
            properties={"vendor": "Yealink", "model": "SIP-T46S", "fw": "66.86.0.15"},
            server="spoof.local.",
        ),
    }
    ctx = Context(Config(mdns_window=1.5, sweep_timeout=1.0), [NET])
    listening = asyncio.create_task(mdns.discover(ctx))
    await asyncio.sleep(0.3)
    registrants = [AsyncZeroconf(interfaces=[ip], ip_version=IPVersion.V4Only) for ip in published]
    try:
        await asyncio.gather(
            *(
                r.async_register_service(s, cooperating_responders=True)
                for r, s in zip(registrants, published.values(), strict=True)
            )
        )
        got = {s.ip: s for s in await listening}
    finally:
        for r in registrants:
            await r.async_unregister_all_services()
            await r.async_close()
    assert set(got) == {"127.0.0.2", "127.0.0.3"}
    phone = got["127.0.0.2"]
    assert phone.mac == "80:5e:c0:a1:b2:c3"
    assert phone.attrs["vendor"] == "Yealink" and phone.attrs["model"] == "SIP-T46S"
    printer = got["127.0.0.3"].attrs
    assert printer["type"] == "_ipp._tcp.local." and "vendor" not in printer, printer
    devices = {d.ip: d for d in pipeline.merge(list(got.values()))}
    for d in devices.values():
        identify.identify(d)
    y = devices["127.0.0.2"]
    assert (y.vendor, y.model, y.firmware) == ("yealink", "SIP-T46S", "66.86.0.15")
    assert not identify.is_phone(devices["127.0.0.3"])
