"""SIP OPTIONS sweep over UDP and TCP on the configured ports."""

from __future__ import annotations

import asyncio

from agent.discovery import Context
from agent.model import Sighting
from agent.net import sip


async def discover(ctx: Context) -> list[Sighting]:
    cfg = ctx.config
    sightings: list[Sighting] = []
    for net in ctx.networks:
        targets = [(h, p) for h in net.hosts() for p in cfg.sip_ports]
        udp, tcp = await asyncio.gather(
            sip.sweep_udp(targets, net.local_ip, cfg.timeout, cfg.rate),
            sip.sweep_tcp(targets, cfg.timeout),
        )
        for reply in [*udp, *tcp]:
            ip = reply.target[0]
            attrs = {
                f"{reply.transport}.{reply.target[1]}": f"{reply.code} {reply.reason}",
                "source": f"{reply.source[0]}:{reply.source[1]}",
            }
            if reply.agent:
                attrs["agent"] = reply.agent
            for h in ("allow", "contact", "supported"):
                if h in reply.headers:
                    attrs[h] = reply.headers[h]
            sightings.append(Sighting("sip", ip, attrs=attrs))
    return sightings
