"""SIP OPTIONS sweep over UDP and TCP on the configured ports.

Every in-scope host gets one OPTIONS per port and transport, paced by the shared rate
limit. An answer is the probed target's (the From tag says which target it was), even
when it comes from another address: that address is only noted in the target's
sighting, never made a device of its own.
"""

from __future__ import annotations

import asyncio

from agent.discovery import Context
from agent.model import Sighting
from agent.net import sip
from agent.scope import ScopedNetwork

HEADERS = ("allow", "contact", "supported")


async def discover(ctx: Context) -> list[Sighting]:
    found: dict[str, dict[str, str]] = {}
    sweeps = await asyncio.gather(*(_sweep(ctx, net) for net in ctx.networks))
    for reply in (r for replies in sweeps for r in replies):
        if ctx.in_scope(reply.target[0]):
            _note(ctx, found.setdefault(reply.target[0], {}), reply)
    return [Sighting("sip", ip, attrs=attrs) for ip, attrs in found.items()]


async def _sweep(ctx: Context, net: ScopedNetwork) -> list[sip.SipReply]:
    cfg = ctx.config
    targets = [(h, p) for h in ctx.scoped(net.hosts()) for p in cfg.sip_ports]
    udp, tcp = await asyncio.gather(
        sip.sweep_udp(targets, net.local_ip, cfg.sweep_timeout, pace=ctx.pace, quiet=ctx.quiet),
        sip.sweep_tcp(
            targets, cfg.sweep_timeout, pace=ctx.pace, local_ip=net.local_ip, quiet=ctx.quiet
        ),
    )
    return [*udp, *tcp]


def _note(ctx: Context, attrs: dict[str, str], reply: sip.SipReply) -> None:
    """Add one reply to a target's evidence: ``udp.5060 = "200 OK"``, and where it came
    from when not from the target itself (``udp.5060.from``, ``udp.5060.from_scope``)."""
    key = f"{reply.transport}.{reply.target[1]}"
    attrs[key] = f"{reply.code} {reply.reason}".strip()
    if reply.source != reply.target:
        attrs[f"{key}.from"] = f"{reply.source[0]}:{reply.source[1]}"
        attrs[f"{key}.from_scope"] = "in" if ctx.in_scope(reply.source[0]) else "out"
    if reply.also_from:
        attrs[f"{key}.also_from"] = ", ".join(f"{ip}:{port}" for ip, port in reply.also_from)
    if reply.agent and "agent" not in attrs:
        attrs["agent"] = reply.agent
    for h in HEADERS:
        if h in reply.headers and h not in attrs:
            attrs[h] = reply.headers[h]
