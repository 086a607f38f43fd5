"""ARP replies (agent/discovery/arp.py): any Ethernet frame the packet socket hears gives
(sender IP, sender MAC, target IP) or None, never an exception."""

from __future__ import annotations

import ipaddress
import re

from hypothesis import given
from hypothesis import strategies as st

from agent.discovery import arp
from tests.fuzz.strategies import hostile_bytes, mutated_bytes

ips = st.ip_addresses(v=4).map(str)
macs = st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))


def _as_reply(frame: bytes) -> bytes:
    """A who-has turned into the is-at a host answers (opcode 2)."""
    return frame[:20] + b"\x00\x02" + frame[22:]


replies = st.builds(arp.request, macs, ips, ips).map(_as_reply)
frames = st.one_of(replies, mutated_bytes(replies, max_ops=3), hostile_bytes)


@given(frames)
def test_parse_reply(frame: bytes) -> None:
    got = arp.parse_reply(frame)
    if got is not None:
        sender, mac, target = got
        assert ipaddress.IPv4Address(sender) and ipaddress.IPv4Address(target)
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac)


@given(macs, ips, ips)
def test_a_reply_names_its_sender(mac: str, ip: str, target: str) -> None:
    assert arp.parse_reply(_as_reply(arp.request(mac, ip, target))) == (ip, mac, target)
