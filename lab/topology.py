"""The office LAN: provider ⇄ router (NAT) ⇄ switch (bridge) ⇄ agent and phones.

Every veth is created directly inside lab namespaces (``ip -n A link add ... peer ... netns B``),
so the machine's own namespace never holds a lab interface.

Each veth end gets an explicit, lab-unique ifindex: when both ends of a veth have the same
ifindex (likely in fresh namespaces), the kernel's linkwatch treats the carrier change as
non-urgent and the port stays down for about a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lab import netns
from lab.scenarios import NAT_RULES

PROVIDER_IPS = ("100.64.66.1", "100.64.66.3")
REFLECTOR_IP = "100.64.66.4"  # the reflector (docs/reflector.md), apart from Kamailio's 5060
API_IP = "100.64.66.5"  # the OVHcloud API stand-in (HTTPS, api.ovh.test)
PSTN_IP = "100.64.66.6"  # the PSTN gateway: where calls to non-line numbers (forwards) go
ROUTER_WAN_IP = "100.64.66.2"
ROUTER_LAN_IP = "10.66.0.1"
AGENT_IP = "10.66.0.100"
LAN_MASK = 24
DNS_SERVER = ROUTER_LAN_IP


def roles(phones: Sequence[dict[str, Any]], extras: Sequence[dict[str, Any]] = ()) -> list[str]:
    """Namespace roles of a lab, in creation order (``extras``: LAN hosts that are not phones)."""
    return ["prov", "rtr", "sw", "agent", *(p["role"] for p in [*phones, *extras])]


def build(
    ns: dict[str, str],
    phones: Sequence[dict[str, Any]],
    router_rules: str,
    extras: Sequence[dict[str, Any]] = (),
    router_sysctls: Mapping[str, str] | None = None,
) -> None:
    """Create the namespaces ``ns`` (role -> name, recorded by the caller); wire the office."""
    for role in roles(phones, extras):
        netns.add(ns[role])

    prov, rtr, sw = ns["prov"], ns["rtr"], ns["sw"]
    netns.ip_batch(
        prov,
        [
            f"link add eth0 index 10 type veth peer name wan0 index 11 netns {rtr}",
            *(f"addr add {a}/24 dev eth0" for a in (*PROVIDER_IPS, REFLECTOR_IP, API_IP, PSTN_IP)),
            "link set eth0 up",
        ],
    )
    netns.ip_batch(sw, ["link add br0 type bridge mcast_snooping 0"])
    netns.ip_batch(
        rtr,
        [
            f"addr add {ROUTER_WAN_IP}/24 dev wan0",
            "link set wan0 up",
            f"route add default via {PROVIDER_IPS[0]}",
            f"link add lan0 index 12 type veth peer name rtr index 13 netns {sw}",
            f"addr add {ROUTER_LAN_IP}/{LAN_MASK} dev lan0",
            "link set lan0 up",
        ],
    )
    hosts = [("agent", AGENT_IP, None)] + [
        (p["role"], p["ip"], p["mac"]) for p in [*phones, *extras]
    ]
    for n, (role, addr, mac) in enumerate(hosts):
        mac_opt = f" address {mac}" if mac else ""
        index = 20 + 2 * n
        netns.ip_batch(
            ns[role],
            [
                f"link add eth0 index {index}{mac_opt} type veth"
                f" peer name {role} index {index + 1} netns {sw}",
                f"addr add {addr}/{LAN_MASK} dev eth0",
                "link set eth0 up",
                f"route add default via {ROUTER_LAN_IP}",
            ],
        )
        netns.write_resolv_conf(ns[role], DNS_SERVER)
    ports = ["rtr", *(h[0] for h in hosts)]
    netns.ip_batch(
        sw,
        [
            *(f"link set {name} master br0" for name in ports),
            "link set br0 up",
            *(f"link set {name} up" for name in ports),
        ],
    )
    netns.sysctl(rtr, "net.ipv4.ip_forward", "1")
    # A router as the guide asks: replied UDP mappings kept 180 s (Linux's default is 120).
    netns.sysctl(rtr, "net.netfilter.nf_conntrack_udp_timeout_stream", "180")
    for key, value in (router_sysctls or {}).items():
        netns.sysctl(rtr, key, value)
    netns.nft(rtr, NAT_RULES + router_rules)


def destroy(names: Sequence[str]) -> list[str]:
    """Delete namespaces (and their /etc/netns dirs); return those that still exist."""
    for name in names:
        netns.delete(name)
    return [n for n in names if netns.exists(n)]
