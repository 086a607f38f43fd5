"""mDNS records (agent/discovery/mdns.py): what any responder on the LAN announces, as
zeroconf hands it over (a ServiceInfo), becomes bounded text attributes, an in-scope
sighting, a MAC that is a MAC; never an exception, however odd the record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.discovery import mdns
from tests.fuzz.strategies import bounded, hostile_text

SPELLINGS = [k for keys in mdns.TXT_KEYS.values() for k in keys]
MACS = ("805EC0A1B2C3", "80:5e:c0:a1:b2:c3", "00-04-13-AA-BB-CC", "0:e:8:A1:b2:C3", "zz")

text_or_bytes = st.one_of(
    hostile_text, hostile_text.map(lambda t: t.encode("utf-8")), st.binary(max_size=300)
)
keys = st.one_of(
    st.sampled_from(SPELLINGS).map(str.encode),
    st.sampled_from(SPELLINGS).map(str.upper),
    text_or_bytes,
    st.integers(),
)
txt_values = st.one_of(
    text_or_bytes,
    st.binary(max_size=300).map(bytearray),
    st.sampled_from(MACS).map(str.encode),
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.binary(max_size=4), max_size=2),
)
properties = st.one_of(
    st.dictionaries(keys, txt_values, max_size=40),
    st.none(),
    st.lists(st.binary(max_size=8), max_size=3),
    st.binary(max_size=20),
)
addresses = st.lists(
    st.one_of(st.ip_addresses().map(str), hostile_text, st.none(), st.integers()), max_size=12
)


@dataclass
class Info:
    """What zeroconf's AsyncServiceInfo offers the method (types as zeroconf declares
    them, contents anything a responder may send)."""

    type: Any
    name: Any
    server: Any
    properties: Any
    addresses: Any = field(default_factory=list)
    broken: bool = False

    def parsed_addresses(self) -> list[Any]:
        if self.broken:
            raise ValueError("a record zeroconf accepted but cannot render")
        return self.addresses


types = st.one_of(
    st.sampled_from([*mdns.KNOWN_TYPES, "_ipp._tcp.local.", "_yealink._tcp.local."]), hostile_text
)
infos = st.builds(
    Info,
    types,
    st.one_of(types, hostile_text.map(lambda t: t + "._sip._udp.local.")),
    st.one_of(st.none(), hostile_text),
    properties,
    addresses,
    st.booleans(),
)


def _in_scope(ip: str) -> bool:
    return ip.startswith("10.") or ip.startswith("192.168.")


@given(properties)
def test_txt_attrs(props: Any) -> None:
    attrs, mac = mdns.txt_attrs(props)
    assert sum(k.startswith("txt.") for k in attrs) <= mdns.MAX_TXT_KEYS
    for key, value in attrs.items():
        assert isinstance(key, str) and isinstance(value, str)
        assert len(key) <= len("txt.") + mdns.MAX_TXT_KEY and len(value) <= mdns.MAX_TXT_VALUE
        assert value.isprintable()
    assert mac is None or re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)


@given(infos)
def test_instance_attrs(info: Info) -> None:
    attrs, _mac = mdns.instance_attrs(info)
    assert all(isinstance(v, str) for v in attrs.values())
    assert len(attrs["type"]) <= mdns.MAX_NAME and len(attrs["name"]) <= mdns.MAX_NAME


@given(st.lists(infos, max_size=10))
def test_sightings(found: list[Info]) -> None:
    sightings = mdns.sightings(found, _in_scope)
    assert len({s.ip for s in sightings}) == len(sightings)
    for s in sightings:
        assert _in_scope(s.ip) and s.method == "mdns"
        assert len(s.attrs) <= mdns.MAX_ATTRS + 1  # "type" is rewritten, not added
        assert len(s.attrs.get("type", "").split(",")) <= mdns.MAX_TYPES
        assert all(isinstance(v, str) for v in s.attrs.values())


def test_worst_case_record_costs_little() -> None:
    """A responder's biggest record: hundreds of TXT keys of 64 KiB each."""
    props = {f"k{i}".encode(): b"\xff" * 65536 for i in range(200)}
    info = Info("_sip._udp.local.", "x" * 65536, "y" * 65536, props, ["10.0.0.1"] * 5000)
    bounded(mdns.sightings, [info] * 10, _in_scope, seconds=0.5)
