"""The OS neighbour (ARP) table, read after the active sweeps have filled it."""

from __future__ import annotations

from agent import platform
from agent.discovery import Context
from agent.model import Sighting


async def discover(ctx: Context) -> list[Sighting]:
    table = platform.neighbours()
    return [Sighting("arp", ip, mac=mac) for ip, mac in table.items() if ctx.in_scope(ip)]
