"""Outages on the provider's side or the office's box, switched on and off in a running lab.

Each is an nftables table (named ``outage``) loaded in one namespace: packets to the
service are dropped, so it falls silent (no answer, no ICMP: the hard case for timeouts),
while the rest of the office works on. ``with outage(lab, "stun-silent"): ...`` switches
one on for the block; :data:`OUTAGES` lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.services import coturn, kamailio, ovhapi
from lab.topology import API_IP, REFLECTOR_IP

if TYPE_CHECKING:
    from lab.office import Lab

TABLE = "outage"


@dataclass(frozen=True)
class Outage:
    name: str
    description: str
    role: str  # the namespace the table goes in
    rules: str  # the body of an input chain


def _ports(ports: tuple[int, ...]) -> str:
    return "{ " + ", ".join(str(p) for p in ports) + " }"


_SIP = _ports(kamailio.PORTS)
OUTAGES: dict[str, Outage] = {
    o.name: o
    for o in (
        Outage(
            "registrar-silent",
            "OVHcloud's registrar answers nothing (UDP and TCP, every SIP port)",
            "prov",
            f"ip daddr != {REFLECTOR_IP} udp dport {_SIP} drop\n"
            f"ip daddr != {REFLECTOR_IP} tcp dport {_SIP} drop",
        ),
        Outage(
            "stun-silent",
            "the STUN server answers nothing",
            "prov",
            f"udp dport {_ports((coturn.PORT, coturn.ALT_PORT))} drop",
        ),
        Outage(
            "reflector-gone",
            "the reflector answers nothing",
            "prov",
            f"ip daddr {REFLECTOR_IP} drop",
        ),
        Outage(
            "api-silent",
            "the OVHcloud API answers nothing (connections time out)",
            "prov",
            f"ip daddr {API_IP} tcp dport {ovhapi.PORT} drop",
        ),
        Outage(
            "dns-timeout",
            "the box's DNS resolver answers nothing (queries time out)",
            "rtr",
            'iifname "lan0" udp dport 53 drop\niifname "lan0" tcp dport 53 drop',
        ),
    )
}


def ruleset(o: Outage) -> str:
    body = "\n    ".join(o.rules.splitlines())
    return (
        f"table ip {TABLE} {{\n  chain input {{\n"
        f"    type filter hook input priority filter;\n    {body}\n  }}\n}}\n"
    )


@contextmanager
def outage(lab: Lab, name: str) -> Iterator[Outage]:
    """Outage ``name`` on while the block runs; off again whatever happens."""
    o = OUTAGES[name]
    r = lab.exec(o.role, ["nft", "-f", "-"], input=ruleset(o), timeout=10)
    if r.returncode != 0:
        raise RuntimeError(f"outage {name}: nft refused the rules: {r.stderr.strip()}")
    try:
        yield o
    finally:
        lab.exec(o.role, ["nft", "delete", "table", "ip", TABLE], timeout=10)
