"""Voice (RTP) ports: OVHcloud's media uses UDP 30000-40000 (ovh-guides.md §2.2). A
datagram sent to the reflector on a port of that range must come back."""

from __future__ import annotations

from agent.model import UNKNOWN, Fact, ProbeError
from agent.net import reflector
from agent.net.sip import _source_ip_for
from agent.probes import Context
from agent.probes.registrar import resolve

SRC = "rtp"
PORT = 30000  # the reflector listens on one port of the range


async def probe(ctx: Context) -> list[Fact]:
    name = ctx.config.reflector
    if not name:
        return [Fact("site", "net.rtp.reachable", UNKNOWN, SRC, "no reflector configured")]
    try:
        addrs, _ms = await resolve(name, ctx.config.timeout * 2)
    except (OSError, TimeoutError):
        why = f"the reflector {name} does not resolve"
        ctx.errors.append(ProbeError("probe.rtp", f"{why}: the RTP ports not tested"))
        return [Fact("site", "net.rtp.reachable", UNKNOWN, SRC, why)]
    host = addrs[0]
    local_ip = _source_ip_for(host)
    control = await reflector.mirror(
        host,
        5062,
        reflector.alg_probe_request("OPTIONS", local_ip, 0, (host, 5062)),
        local_ip=local_ip,
        timeout=ctx.config.timeout,
    )
    request = reflector.alg_probe_request("OPTIONS", local_ip, 0, (host, PORT))
    got = await reflector.mirror(host, PORT, request, local_ip=local_ip, timeout=ctx.config.timeout)
    if got is not None:
        return [Fact("site", "net.rtp.reachable", True, SRC, f"UDP {PORT} to {name} answered")]
    if control is None:
        why = f"the reflector {name} does not answer at all"
        ctx.errors.append(ProbeError("probe.rtp", f"{why}: the RTP ports not tested"))
        return [Fact("site", "net.rtp.reachable", UNKNOWN, SRC, why)]
    why = f"UDP {PORT} to {name} gets no answer while UDP 5062 does"
    return [Fact("site", "net.rtp.reachable", False, SRC, why)]
