"""SIP PnP SUBSCRIBEs (agent/discovery/pnp.py): what a booting phone, or anything else,
multicasts to 224.0.1.75:5060. Each datagram gives (MAC, attributes) or None, the MAC a
unicast MAC, the attributes short printable text; the listener keeps a bounded number of
sightings, whatever arrives."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from agent.discovery import pnp
from agent.net import sip
from lab.services.fleet_sip import PnpSubscriber
from tests.fuzz.strategies import bounded, hostile_bytes, hostile_text, mutated_bytes

MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
# Vendor, model, version and User-Agent as the lab's phones send them (lab/phones.toml).
PHONES = (
    ("Yealink", "SIP-T46S", "66.86.0.15", "Yealink SIP-T46S 66.86.0.15"),
    ("Cisco", "SPA504G", "7.6.2c", "Cisco/SPA504G-7.6.2c"),
    ("Gigaset", "C530 IP", "42.245.00.000", "Gigaset C530 IP/42.245.00.000"),
    ("Grandstream", "HT802", "1.0.43.11", "Grandstream HT802 1.0.43.11"),
    ("snom", "D785", "10.1.54.13", "snomD785/10.1.54.13"),
)


@st.composite
def subscribes(draw: st.DrawFn) -> bytes:
    """A boot-time SUBSCRIBE as the lab's phones send it, with any MAC; or one of the MAC
    spellings the module's docstring lists, in the Request-URI's user part."""
    vendor, model, version, agent = draw(st.sampled_from(PHONES))
    mac = draw(st.binary(min_size=6, max_size=6)).hex(":")
    sub = PnpSubscriber(draw(st.ip_addresses(v=4).map(str)), mac, vendor, model, version, agent)
    data = sub.next()
    plain = mac.replace(":", "")
    spelling = draw(st.sampled_from((None, f"MAC={plain}", f"MAC{plain}", f"mac%3A{plain}")))
    if spelling:
        data = data.replace(f"MAC%3a{plain.upper()}".encode(), spelling.encode())
    return data


datagrams = st.one_of(subscribes(), mutated_bytes(subscribes()), hostile_bytes)


@given(datagrams)
def test_parse_subscribe(data: bytes) -> None:
    found = pnp.parse_subscribe(data)
    if found is None:
        return
    mac, attrs = found
    assert mac is None or MAC.fullmatch(mac)
    assert mac is None or not int(mac[1], 16) & 1  # never multicast
    assert set(attrs) <= {"vendor", "model", "version", "profile", "agent", "domain"}
    for value in attrs.values():
        assert isinstance(value, str) and 0 < len(value) <= pnp.MAX_TEXT and value.isprintable()


@given(subscribes())
def test_a_phone_subscribe_gives_its_identity(data: bytes) -> None:
    found = pnp.parse_subscribe(data)
    assert found is not None
    _mac, attrs = found
    assert (attrs["vendor"], attrs["model"]) in {(p[0], p[1]) for p in PHONES}


@given(st.one_of(hostile_text, st.builds("ua-profile;{}".format, hostile_text)))
def test_event_params(event: str) -> None:
    params = pnp.event_params(event)
    assert set(params) <= set(pnp.EVENT_PARAMS)
    assert all(len(v) <= pnp.MAX_TEXT for v in params.values())


@given(
    st.one_of(
        st.none(),
        hostile_text,
        st.builds("MAC{}{}".format, st.sampled_from(("", ":", "=", "%3a", "%3A")), hostile_text),
        st.from_regex(r"(?i)mac\s*[:=]?\s*([0-9a-f]{2}[:-]?){5}[0-9a-f]{2}", fullmatch=True),
    )
)
def test_mac_from_user(user: str | None) -> None:
    mac = pnp.mac_from_user(user)
    assert mac is None or (MAC.fullmatch(mac) and mac != "00:00:00:00:00:00")


@given(st.lists(st.tuples(datagrams, st.ip_addresses(v=4).map(str)), max_size=12))
def test_listener_keeps_in_scope_sightings_only(received) -> None:
    listener = pnp._Listener(lambda ip: ip.startswith("10."))
    for data, ip in received:
        listener.datagram_received(data, (ip, 5060))
    assert all(ip.startswith("10.") for ip in listener.sightings)
    assert listener.seen <= len(received)


def test_a_flood_costs_little_and_is_bounded() -> None:
    """The listener's whole budget of datagrams, each the costliest to parse."""
    worst = b"SUBSCRIBE sip:x SIP/2.0\r\nEvent: ua-profile" + b';a="' * 1000
    worst = worst[: pnp.MAX_MESSAGE - 4] + b"\r\n\r\n"
    headers = b"SUBSCRIBE sip:x SIP/2.0\r\nEvent: ua-profile\r\n"
    headers += b"".join(b"%x:\r\n" % i for i in range(1000))
    headers = headers[: pnp.MAX_MESSAGE - 4] + b"\r\n\r\n"
    listener = pnp._Listener(lambda ip: True)

    def flood() -> None:
        for i in range(pnp.MAX_MESSAGES + 100):
            listener.datagram_received(worst if i % 2 else headers, (f"10.0.{i // 250}.1", 5060))

    bounded(flood, seconds=2.0, megabytes=None)
    assert listener.seen == pnp.MAX_MESSAGES
    # the costliest SUBSCRIBE the caps let through: as many names and lines as allowed
    names = b"".join(b"X%d:\r\n" % (i % (sip.MAX_HEADER_NAMES - 1)) for i in range(1000))
    allowed = b"SUBSCRIBE sip:x SIP/2.0\r\nEvent: ua-profile\r\n" + names
    allowed = b"\n".join(allowed.split(b"\n")[: sip.MAX_HEADER_LINES]) + b"\r\n\r\n"
    assert pnp.parse_subscribe(allowed) is not None

    def allowed_flood() -> None:
        listener = pnp._Listener(lambda ip: True)
        for i in range(pnp.MAX_MESSAGES):
            listener.datagram_received(allowed, (f"10.0.{i // 250}.1", 5060))

    bounded(allowed_flood, seconds=5.0, megabytes=None)  # ~0.7 ms each; before the caps, 30 ms
    bounded(pnp.event_params, "ua-profile" + ';a="' * 16384, seconds=0.25)
