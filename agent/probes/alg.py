"""SIP ALG: send SIP requests carrying our private address through the router to the
reflector (docs/reflector.md) and compare what arrived with what left.

Any rewrite of Via, Contact, From, the request line or the SDP is a router's SIP ALG;
the diff, as the far side saw it, is the evidence. No reflector, or no answer: the fact
stays unknown ("inconclusive"), never "no ALG".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from agent.model import UNKNOWN, Fact, ProbeError
from agent.net import reflector
from agent.net.sip import _source_ip_for
from agent.probes import Context
from agent.probes.registrar import resolve

SRC = "alg"
SIP_PORT = 5060  # the port SIP ALGs inspect
CONTROL_PORT = 5062  # a port they leave alone


def _free_port(local_ip: str, port: int) -> int:
    """``port`` when it is free locally (phones send from 5060), else 0 (any)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((local_ip, port))
        except OSError:
            return 0
    return port


async def _one(
    host: str, port: int, method: str, local_ip: str, timeout: float, from_5060: bool = True
):
    local_port = _free_port(local_ip, SIP_PORT) if from_5060 else 0
    if local_port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((local_ip, 0))
            local_port = s.getsockname()[1]
    request = reflector.alg_probe_request(method, local_ip, local_port, (host, port))
    got = await reflector.mirror(host, port, request, "udp", local_ip, local_port, timeout)
    return method, port, got


def _unknown(why: str, ctx: Context | None = None) -> list[Fact]:
    """The fact unknown; with ``ctx``, also an error entry: the reflector was configured
    but the test could not be made."""
    if ctx is not None:
        ctx.errors.append(ProbeError("probe.alg", f"{why}: SIP ALG not tested"))
    return [Fact("site", "nat.sip_alg", UNKNOWN, SRC, f"inconclusive: {why}")]


async def probe(ctx: Context) -> list[Fact]:
    name = ctx.config.reflector
    if not name:
        return _unknown("no reflector configured ([site] reflector)")
    try:
        addrs, _ms = await resolve(name, ctx.config.timeout * 2)
    except (OSError, TimeoutError):
        return _unknown(f"the reflector {name} does not resolve", ctx)
    host = addrs[0]
    local_ip = _source_ip_for(host)
    results = []
    # One at a time: the requests share local port 5060, as a phone's would.
    # From 5060 as phones send, then from another port (some ALGs only watch the source
    # port), then to a port no ALG inspects, as a control.
    plan = (
        ("REGISTER", SIP_PORT, True),
        ("INVITE", SIP_PORT, True),
        ("REGISTER", SIP_PORT, False),
        ("OPTIONS", CONTROL_PORT, True),
    )
    for method, port, from_5060 in plan:
        with contextlib.suppress(OSError, ValueError):
            results.append(await _one(host, port, method, local_ip, ctx.config.timeout, from_5060))
        await asyncio.sleep(0)
    seen = [(m, p, g) for m, p, g in results if g is not None and p == SIP_PORT]
    if not seen:
        control = any(g is not None for _m, p, g in results if p == CONTROL_PORT)
        why = "port 5060 gets no answer" if control else f"the reflector {name} does not answer"
        return _unknown(why, None if control else ctx)  # 5060 blocked: a fact, not a failure
    rewrites = [
        f"{m} {where}: {sent} → {arrived}"
        for m, _p, g in seen
        for where, sent, arrived in reflector.sip_diff(g.sent, g.arrived)
    ]
    if rewrites:
        evidence = "rewritten on the way to " + name + ": " + "; ".join(rewrites)
        return [
            Fact("site", "nat.sip_alg", True, SRC, evidence),
            Fact("site", "nat.sip_alg_rewrites", rewrites, SRC, evidence),
        ]
    methods = ", ".join(m for m, _p, _g in seen)
    return [Fact("site", "nat.sip_alg", False, SRC, f"{methods} arrived unchanged at {name}")]
