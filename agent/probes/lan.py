"""Facts about the agent host's LAN: gateway and how many phones were found."""

from __future__ import annotations

from agent import platform
from agent.model import UNKNOWN, Fact
from agent.probes import Context


async def probe(ctx: Context) -> list[Fact]:
    gw = platform.default_gateway()
    return [
        Fact("site", "lan.gateway", gw if gw else UNKNOWN, "lan"),
        Fact("site", "lan.phones_found", len(ctx.devices), "lan"),
    ]
