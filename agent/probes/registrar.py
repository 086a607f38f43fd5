"""Registrar reachability: resolve the registrar, then SIP OPTIONS over UDP on each port.

OVHcloud answers on 5060 and on its alternate port 5962; 5060 silent while 5962
answers is what an ISP or router blocking SIP looks like.
"""

from __future__ import annotations

import asyncio
import socket
import time

from agent.model import UNKNOWN, Fact
from agent.net import sip
from agent.probes import Context

SRC = "registrar"


async def resolve(host: str, timeout: float) -> tuple[list[str], float]:
    """IPv4 addresses of ``host`` and the time it took; raises OSError/TimeoutError."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    addrs = sorted({i[4][0] for i in infos})
    return addrs, (time.monotonic() - start) * 1000


async def probe(ctx: Context) -> list[Fact]:
    cfg = ctx.config
    host = cfg.registrar
    facts = [Fact("site", "registrar.host", host, SRC)]
    try:
        addrs, ms = await resolve(host, cfg.timeout * 2)
    except (OSError, TimeoutError) as e:
        reason = "timeout" if isinstance(e, TimeoutError) else str(e)
        facts.append(Fact("site", "dns.registrar.resolves", False, SRC, f"{host}: {reason}"))
        facts += [
            Fact("site", f"registrar.udp.{p}.reachable", UNKNOWN, SRC, "name did not resolve")
            for p in cfg.registrar_ports
        ]
        return facts
    facts.append(Fact("site", "dns.registrar.resolves", True, SRC, f"{host} in {ms:.0f} ms"))
    facts.append(Fact("site", "dns.registrar.addresses", addrs, SRC))
    ip = addrs[0]
    targets = [(ip, p) for p in cfg.registrar_ports]
    replies = {r.target: r for r in await sip.sweep_udp(targets, timeout=cfg.timeout, rate=0)}
    for t in targets:
        key = f"registrar.udp.{t[1]}"
        r = replies.get(t)
        if r is None:
            facts.append(
                Fact(
                    "site",
                    f"{key}.reachable",
                    False,
                    SRC,
                    f"no answer from {ip}:{t[1]} within {cfg.timeout:g} s",
                )
            )
            continue
        evidence = f"{r.code} {r.reason} from {r.source[0]}:{r.source[1]}"
        if r.agent:
            evidence += f" ({r.agent})"
        facts += [
            Fact("site", f"{key}.reachable", True, SRC, evidence),
            Fact("site", f"{key}.rtt_ms", round(r.rtt_ms, 1), SRC),
            Fact("site", f"{key}.status", r.code, SRC),
        ]
    return facts
