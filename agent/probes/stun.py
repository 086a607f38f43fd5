"""Public address and NAT behaviour, measured against the site's own STUN server.

Only the server named by ``site.stun_server`` is ever contacted (never a public one by
default): RFC 5780 needs a server with two addresses (OTHER-ADDRESS), e.g. coturn
started with two ``-L`` addresses. Without one, the facts stay unknown.
"""

from __future__ import annotations

from agent.model import UNKNOWN, Fact, ProbeError
from agent.net import stun
from agent.probes import Context

SRC = "stun"
DEFAULT_PORT = 3478
KEYS = ("lan.public_ip", "nat.mapping", "nat.filtering")


def parse_server(text: str) -> tuple[str, int]:
    """``host:port``, ``host`` (port 3478) or ``[v6]:port``; ValueError when malformed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port = rest.removeprefix(":") if sep else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host or (port and not port.isdigit()):
        raise ValueError(f"stun_server {text!r} is not host:port")
    number = int(port) if port else DEFAULT_PORT
    if not 0 < number < 65536:
        raise ValueError(f"stun_server {text!r}: bad port")
    return host, number


def _unknown(why: str) -> list[Fact]:
    return [Fact("site", k, UNKNOWN, SRC, why) for k in KEYS]


async def probe(ctx: Context) -> list[Fact]:
    configured = getattr(ctx.config, "stun_server", None)
    if not configured:
        return _unknown("no STUN server configured")
    try:
        host, port = parse_server(configured)
    except ValueError as e:
        return _unknown(str(e))
    nb = await stun.nat_behaviour((host, port), timeout=ctx.config.timeout)
    name = f"STUN server {host}:{port}"
    if (host, port) != nb.server:
        name += f" ({nb.server[0]}:{nb.server[1]})"
    facts = []
    if nb.mapped is None:
        facts.append(Fact("site", "lan.public_ip", UNKNOWN, SRC, f"{name}: {nb.mapping_evidence}"))
        # a server that was configured and said nothing is a check not made: said as such
        why = f"{name}: {nb.mapping_evidence}; public address and NAT type not measured"
        ctx.errors.append(ProbeError("probe.stun", why))
    else:
        seen = f"{name} sees us as {nb.mapped[0]}:{nb.mapped[1]}"
        if nb.local is not None:
            seen += f" (local {nb.local[0]}:{nb.local[1]}{'' if nb.nat else ', no NAT'})"
        facts.append(Fact("site", "lan.public_ip", nb.mapped[0], SRC, seen))
    for key, value, why in (
        ("nat.mapping", nb.mapping, nb.mapping_evidence),
        ("nat.filtering", nb.filtering, nb.filtering_evidence),
    ):
        known = value in stun.BEHAVIOURS
        facts.append(Fact("site", key, value if known else UNKNOWN, SRC, f"{name}: {why}"))
    return facts
