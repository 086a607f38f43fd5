"""Discovery methods: each yields raw :class:`~agent.model.Sighting` objects with evidence.

A method is an async function ``discover(ctx) -> list[Sighting]``; all run at once.
Discovery never names a vendor: identification happens later, from data.

Manners, for every method: send only to addresses :meth:`Context.in_scope` accepts
(:meth:`Context.scoped` filters a list), and ``await ctx.pace()`` before each packet:
one rate limit (``[discovery] rate`` packets per second) is shared by all methods, so
running them at once never floods the LAN.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from agent.config import Config
from agent.model import Sighting
from agent.net.pacing import Pacer
from agent.scope import ScopedNetwork

MAX_SCOPE_CACHE = 8192  # addresses whose scope is remembered (a /22 holds 1022)


@dataclass
class Context:
    config: Config
    networks: list[ScopedNetwork]
    pacer: Pacer = field(init=False, repr=False)
    _targets: list[str] | None = field(default=None, init=False, repr=False)
    _in_scope: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pacer = Pacer(self.config.rate)

    def targets(self) -> list[str]:
        if self._targets is None:
            self._targets = [h for n in self.networks for h in n.hosts()]
        return list(self._targets)

    def in_scope(self, ip: str) -> bool:
        known = self._in_scope.get(ip)  # every method asks, for every address
        if known is None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                return False
            known = any(addr in n.network for n in self.networks)
            if len(self._in_scope) < MAX_SCOPE_CACHE:
                self._in_scope[ip] = known
        return known

    def scoped(self, ips: Iterable[str]) -> list[str]:
        """``ips`` less any address outside the scope (the last check before sending)."""
        return [ip for ip in ips if self.in_scope(ip)]

    async def pace(self, packets: int = 1) -> None:
        """Wait for this method's turn to send ``packets`` packets (shared rate limit)."""
        await self.pacer(packets)

    async def quiet(self) -> None:
        """Wait until every method's probes are out: what can wait until then (a
        follow-up read, an import) does, so it never delays a probe."""
        await self.pacer.quiet()


Method = Callable[[Context], Awaitable[list[Sighting]]]


async def imported(name: str) -> None:
    """Import module ``name`` in a worker thread: the event loop goes on sending meanwhile
    (an import of zeroconf or sipmessage takes 25-50 ms of CPU)."""
    await asyncio.to_thread(importlib.import_module, name)


def methods() -> dict[str, Method]:
    """The active (first-phase) methods, by name, the ones that send first: they start in
    this order, and the listeners' set-up then happens while the probes are paced out."""
    from agent.discovery import mdns, pnp, sip, snmp

    return {
        "sip": sip.discover,
        "snmp": snmp.discover,  # also reads switches' LLDP neighbours (discovery/lldp.py)
        "pnp": pnp.discover,
        "mdns": mdns.discover,
    }
