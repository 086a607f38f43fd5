"""Discovery methods: each yields raw :class:`~agent.model.Sighting` objects with evidence.

A method is an async function ``discover(ctx) -> list[Sighting]``; all run at once.
Discovery never names a vendor: identification happens later, from data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.config import Config
from agent.model import Sighting
from agent.scope import ScopedNetwork


@dataclass
class Context:
    config: Config
    networks: list[ScopedNetwork]

    def targets(self) -> list[str]:
        return [h for n in self.networks for h in n.hosts()]

    def in_scope(self, ip: str) -> bool:
        import ipaddress

        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in n.network for n in self.networks)


Method = Callable[[Context], Awaitable[list[Sighting]]]


def methods() -> dict[str, Method]:
    """The active (first-phase) methods, by name."""
    from agent.discovery import mdns, sip, snmp

    return {"mdns": mdns.discover, "snmp": snmp.discover, "sip": sip.discover}
