"""Discovery methods: each yields raw :class:`~agent.model.Sighting` objects with evidence.

A method is an async function ``discover(ctx) -> list[Sighting]``; all run at once.
Discovery never names a vendor: identification happens later, from data.

Manners, for every method: send only to addresses :meth:`Context.in_scope` accepts
(:meth:`Context.scoped` filters a list), and ``await ctx.pace()`` before each packet:
one rate limit (``[discovery] rate`` packets per second) is shared by all methods, so
running them at once never floods the LAN.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from agent.config import Config
from agent.model import Sighting
from agent.net.pacing import Pacer
from agent.scope import ScopedNetwork


@dataclass
class Context:
    config: Config
    networks: list[ScopedNetwork]
    pacer: Pacer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pacer = Pacer(self.config.rate)

    def targets(self) -> list[str]:
        return [h for n in self.networks for h in n.hosts()]

    def in_scope(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in n.network for n in self.networks)

    def scoped(self, ips: Iterable[str]) -> list[str]:
        """``ips`` less any address outside the scope (the last check before sending)."""
        return [ip for ip in ips if self.in_scope(ip)]

    async def pace(self, packets: int = 1) -> None:
        """Wait for this method's turn to send ``packets`` packets (shared rate limit)."""
        await self.pacer(packets)


Method = Callable[[Context], Awaitable[list[Sighting]]]


def methods() -> dict[str, Method]:
    """The active (first-phase) methods, by name."""
    from agent.discovery import mdns, pnp, sip, snmp

    return {
        "mdns": mdns.discover,
        "snmp": snmp.discover,  # also reads switches' LLDP neighbours (discovery/lldp.py)
        "sip": sip.discover,
        "pnp": pnp.discover,
    }
