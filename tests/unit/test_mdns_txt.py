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


async def test_discovery_on_loopback_with_zeroconf():
    """A registered phone service (with a huge TXT and a spoofed out-of-scope address)
    and a printer, found through a real mDNS exchange on lo."""
    registrant = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    txt = {
        "model": "SIP-T46S",
        "fw": "66.86.0.15",
        "mac": "80:5e:c0:a1:b2:c3",
        "vendor": "Yealink",
        "junk": "j" * 240,
    }
    services = [
        AsyncServiceInfo(
            "_http._tcp.local.",
            "Yealink SIP-T46S 805EC0A1B2C3._http._tcp.local.",
            addresses=[socket.inet_aton("127.0.0.2"), socket.inet_aton("10.9.9.9")],
            port=80,
            properties=txt,
            server="yealink.local.",
        ),
        AsyncServiceInfo(
            "_ipp._tcp.local.",
            "Office printer._ipp._tcp.local.",
            addresses=[socket.inet_aton("127.0.0.3")],
            port=631,
            properties={"ty": "Brother HL-L2350DW"},
            server="printer.local.",
        ),
    ]
    try:
        await asyncio.gather(*(registrant.async_register_service(s) for s in services))
        ctx = Context(Config(mdns_window=1.5, sweep_timeout=1.0), [NET])
        got = {s.ip: s for s in await mdns.discover(ctx)}
    finally:
        await registrant.async_unregister_all_services()
        await registrant.async_close()
    assert set(got) == {"127.0.0.2", "127.0.0.3"}
    phone = got["127.0.0.2"]
    assert phone.mac == "80:5e:c0:a1:b2:c3"
    assert phone.attrs["vendor"] == "Yealink" and phone.attrs["model"] == "SIP-T46S"
    devices = {d.ip: d for d in pipeline.merge(list(got.values()))}
    for d in devices.values():
        identify.identify(d)
    y = devices["127.0.0.2"]
    assert (y.vendor, y.model, y.firmware) == ("yealink", "SIP-T46S", "66.86.0.15")
    assert "_ipp._tcp.local." in got["127.0.0.3"].attrs["type"]
    assert not identify.is_phone(devices["127.0.0.3"])
