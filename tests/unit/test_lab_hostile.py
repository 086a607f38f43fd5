"""The hostile scenario's plan and the pure parts of its behaviours (no namespace needed)."""

from __future__ import annotations

import ipaddress
import itertools
import random
import socket

from zeroconf import DNSIncoming

from agent import identify
from agent.model import Device, Sighting
from agent.net import sip
from lab import hostile, phones, scenarios, topology
from lab.services import fleet_hostile


def plan() -> tuple[list[dict], list[dict]]:
    office = phones.make_phones(3)
    return office, hostile.plan(office)


def test_one_host_per_behaviour_away_from_the_office():
    office, hosts = plan()
    assert [h["behaviour"] for h in hosts] == list(hostile.BEHAVIOURS)
    taken = {p["ip"] for p in office} | {topology.AGENT_IP, topology.ROUTER_LAN_IP}
    ips = [h["ip"] for h in hosts]
    assert len(set(ips)) == len(ips) and not taken & set(ips)
    lan = ipaddress.ip_network(topology.LAN_NETWORK)
    dhcp = range(150, 200)  # dnsmasq's pool
    for ip in ips:
        assert ipaddress.ip_address(ip) in lan and int(ip.rsplit(".", 1)[1]) not in dhcp
    macs = [h["mac"] for h in hosts] + [p["mac"] for p in office]
    assert len(set(macs)) == len(macs)
    assert scenarios.get("hostile").hostile and scenarios.get("hostile").phones_register


def test_each_host_looks_like_a_phone_to_the_agent_by_its_mac_alone():
    """Seen by ARP only, each is a phone of its model's maker (so the agent probes it)."""
    _office, hosts = plan()
    for host in hosts:
        device = Device(ip=host["ip"])
        device.add(Sighting("arp", host["ip"], host["mac"]))
        identify.identify(device)
        assert device.vendor == host["vendor"], host
        assert identify.is_phone(device), host


def test_the_outside_addresses_are_outside_any_office_scope():
    for ip in hostile.outside_addresses():
        addr = ipaddress.ip_address(ip)
        assert addr not in ipaddress.ip_network(topology.LAN_NETWORK)
    _office, hosts = plan()
    (outscope,) = [h for h in hosts if h["behaviour"] == "outscope"]
    assert outscope["extra_addresses"] == [outscope["source"]]
    assert outscope["source"] in hostile.outside_addresses()


def test_the_flood_spoofs_the_phones_as_other_makers_and_names_outside_addresses():
    office, hosts = plan()
    (flood,) = [h for h in hosts if h["behaviour"] == "mdns-flood"]
    packets = list(itertools.islice(fleet_hostile.flood_packets(flood), 40))
    assert all(len(p) <= 1400 for p in packets)  # no IP fragments
    claims: dict[str, set[str]] = {}
    names: set[str] = set()
    for packet in packets:
        records = DNSIncoming(packet).answers()
        servers = {r.name: socket.inet_ntoa(r.address) for r in records if r.type == 1}
        texts = {r.name: txt(r.text) for r in records if r.type == 16}
        for r in records:
            if r.type == 33:  # SRV: the instance, and where its server points
                names.add(r.name)
                vendor = texts[r.name].get("vendor", "none")
                claims.setdefault(servers[r.server], set()).add(vendor)
    assert len(names) == 40 * flood["flood"]["per_packet"]  # every instance is new
    assert {"8.8.8.8", "192.0.2.77"} <= set(claims)
    for phone in office:
        said = {c.lower() for c in claims[phone["ip"]]} - {"none"}
        assert said and phone["vendor"] not in said, (phone["vendor"], said)


def txt(data: bytes) -> dict[str, str]:
    """A TXT record's strings (length-prefixed ``key=value``) as a dict."""
    out, at = {}, 0
    while at < len(data):
        size = data[at]
        key, _, value = data[at + 1 : at + 1 + size].decode().partition("=")
        out[key] = value
        at += 1 + size
    return out


def test_huge_and_garbage_answers():
    _office, hosts = plan()
    (huge,) = [h for h in hosts if h["behaviour"] == "huge"]
    request = sip.build_options((huge["ip"], 5060), ("10.66.0.100", 40000))
    udp = fleet_hostile.huge_sip(huge, request, ("10.66.0.100", 40000), tcp=False)
    tcp = fleet_hostile.huge_sip(huge, request, ("10.66.0.100", 40000), tcp=True)
    for answer in (udp, tcp):
        assert 55_000 <= len(answer) <= huge["size"] <= 65_507
        assert answer.startswith(b"SIP/2.0 200 OK\r\n")
    head, _, body = udp.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body):05d}".encode() in head
    assert sip.parse_response(udp) is not None  # a real answer, only big
    rng = random.Random(7)
    sizes = [len(fleet_hostile.garbage_bytes(100, rng)) for _ in range(200)]
    assert min(sizes) >= 1 and max(sizes) <= 100


def test_the_firewall_silences_silent_and_reset_udp():
    _office, hosts = plan()
    rules = topology.fleet_firewall(hosts)
    silent = next(h["ip"] for h in hosts if h["behaviour"] == "silent")
    reset = next(h["ip"] for h in hosts if h["behaviour"] == "reset")
    assert f"ip daddr {{ {silent} }} drop" in rules
    assert f"ip daddr {{ {reset} }} meta l4proto udp drop" in rules
