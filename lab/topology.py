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
BROKER_IP = "100.64.66.7"  # the portal's MQTT broker (mosquitto, TLS, mqtt.ovh.test)
ROUTER_WAN_IP = "100.64.66.2"
ROUTER_LAN_IP = "10.66.0.1"
AGENT_IP = "10.66.0.100"
LAN_MASK = 24
LAN_NETWORK = f"10.66.0.0/{LAN_MASK}"
DNS_SERVER = ROUTER_LAN_IP


FLEET_ROLE = "fleet"  # the fleet scenario's one namespace for every fleet host
FLEET_TABLE_BASE = 1000  # fleet host 10.66.0.X routes through its own table 1000+X


def roles(
    phones: Sequence[dict[str, Any]],
    extras: Sequence[dict[str, Any]] = (),
    fleet: bool = False,
) -> list[str]:
    """Namespace roles of a lab, in creation order (``extras``: LAN hosts that are not phones;
    ``fleet``: the fleet scenario's namespace)."""
    hosts = [p["role"] for p in [*phones, *extras]]
    return ["prov", "rtr", "sw", "agent", *hosts, *([FLEET_ROLE] if fleet else [])]


def build(
    ns: dict[str, str],
    phones: Sequence[dict[str, Any]],
    router_rules: str,
    extras: Sequence[dict[str, Any]] = (),
    router_sysctls: Mapping[str, str] | None = None,
    fleet: Sequence[dict[str, Any]] = (),
) -> None:
    """Create the namespaces ``ns`` (role -> name, recorded by the caller); wire the office.

    ``fleet``: the fleet scenario's hosts (lab/fleet.py), all in one namespace.
    """
    for role in roles(phones, extras, bool(fleet)):
        netns.add(ns[role])

    prov, rtr, sw = ns["prov"], ns["rtr"], ns["sw"]
    netns.ip_batch(
        prov,
        [
            f"link add eth0 index 10 type veth peer name wan0 index 11 netns {rtr}",
            *(
                f"addr add {a}/24 dev eth0"
                for a in (*PROVIDER_IPS, REFLECTOR_IP, API_IP, PSTN_IP, BROKER_IP)
            ),
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
    if fleet:
        _fleet_link(ns[FLEET_ROLE], sw)
        ports.append(FLEET_ROLE)
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
    if fleet:
        _fleet_hosts(ns[FLEET_ROLE], fleet)


def _fleet_link(ns: str, sw: str) -> None:
    """The fleet namespace's one port on the switch: eth0 (no address), the macvlans' parent.

    Set before any macvlan exists (``default`` applies to new interfaces): no IPv6 (no
    link-local, DAD or MLD chatter from hundreds of interfaces), ARP answered only on the
    interface that holds the asked address and sent from that interface's own address (else
    every macvlan would answer for every address: "ARP flux"), no reverse-path filter.
    """
    settings = [
        f"net.{key}={value}"
        for scope in ("all", "default")
        for key, value in (
            (f"ipv6.conf.{scope}.disable_ipv6", 1),
            (f"ipv4.conf.{scope}.arp_ignore", 1),
            (f"ipv4.conf.{scope}.arp_announce", 2),
            (f"ipv4.conf.{scope}.rp_filter", 0),
        )
    ]
    netns.run(netns.exec_argv(ns, ["sysctl", "-qw", *settings]))
    netns.ip_batch(
        ns,
        [
            f"link add eth0 index 14 type veth peer name {FLEET_ROLE} index 15 netns {sw}",
            "link set eth0 up",
        ],
    )
    netns.write_resolv_conf(ns, DNS_SERVER)


def _fleet_hosts(ns: str, hosts: Sequence[dict[str, Any]]) -> None:
    """One macvlan (bridge mode, the host's own MAC) per fleet host on eth0.

    Each host's address routes through its own table (``ip rule from ADDR``), so whatever
    leaves from 10.66.0.X, the kernel's own replies (ICMP, TCP resets) included, goes out of
    X's interface with X's MAC. A host's ``extra_addresses`` (the hostile scenario's
    ``outscope``: an address outside the LAN, /32) are added to its interface and use its
    table too.
    """
    commands = []
    for host in hosts:
        dev, ip = fleet_dev(host["ip"]), host["ip"]
        table = FLEET_TABLE_BASE + int(ip.rsplit(".", 1)[1])
        commands += [
            f"link add {dev} link eth0 address {host['mac']} type macvlan mode bridge",
            f"addr add {ip}/{LAN_MASK} dev {dev}",
            f"link set {dev} up",
            f"rule add from {ip} table {table} pref 1000",
            f"route add {LAN_NETWORK} dev {dev} src {ip} table {table}",
            f"route add default via {ROUTER_LAN_IP} dev {dev} table {table}",
        ]
        for extra in host.get("extra_addresses") or ():
            commands += [
                f"addr add {extra}/32 dev {dev}",
                f"rule add from {extra} table {table} pref 1000",
            ]
    netns.ip_batch(ns, commands)
    netns.nft(ns, fleet_firewall(hosts))


def fleet_firewall(hosts: Sequence[dict[str, Any]]) -> str:
    """The fleet's host firewalls: PCs drop every TCP and UDP packet silently (ARP and ping
    still answered); a phone that speaks SIP over TCP only drops UDP 5060 silently. Hostile
    hosts (lab/hostile.py): ``silent`` drops every IP packet (only ARP is answered), ``reset``
    every UDP one (its TCP connections are reset by fleet_hostile)."""
    pcs = [h["ip"] for h in hosts if h["kind"] == "pc"]
    tcp_only = [
        h["ip"] for h in hosts if "sip-tcp" in h["methods"] and "sip-udp" not in h["methods"]
    ]
    silent = [h["ip"] for h in hosts if h.get("behaviour") == "silent"]
    no_udp = [h["ip"] for h in hosts if h.get("behaviour") == "reset"]
    rules = []
    if pcs:
        rules.append(f"ip daddr {{ {', '.join(pcs)} }} meta l4proto {{ tcp, udp }} drop")
    if tcp_only:
        rules.append(f"ip daddr {{ {', '.join(tcp_only)} }} udp dport 5060 drop")
    if silent:
        rules.append(f"ip daddr {{ {', '.join(silent)} }} drop")
    if no_udp:
        rules.append(f"ip daddr {{ {', '.join(no_udp)} }} meta l4proto udp drop")
    body = "".join(f"    {rule}\n" for rule in rules)
    return (
        "table ip fleet {\n"
        "  chain input {\n"
        "    type filter hook input priority filter; policy accept;\n"
        f"{body}"
        "  }\n"
        "}\n"
    )


def fleet_dev(ip: str) -> str:
    """The fleet namespace's interface of address ``ip`` (``h`` + last octet)."""
    return "h" + ip.rsplit(".", 1)[1]


def destroy(names: Sequence[str]) -> list[str]:
    """Delete namespaces (and their /etc/netns dirs); return those that still exist."""
    for name in names:
        netns.delete(name)
    return [n for n in names if netns.exists(n)]
