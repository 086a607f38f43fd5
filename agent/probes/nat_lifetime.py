"""How long the router keeps an idle UDP mapping: several mappings opened at once
towards the reflector, each answered after a different delay (docs/reflector.md §2).

The fact ``nat.udp_timeout_s`` is only set when a mapping was seen to expire (the
longest delay that still arrived); when every delay within the time budget arrived,
it stays unknown and ``nat.udp_timeout_min_s`` says what was verified.
"""

from __future__ import annotations

from agent.config import Config
from agent.model import UNKNOWN, Fact
from agent.net import reflector
from agent.net.sip import _source_ip_for
from agent.probes import Context
from agent.probes.registrar import resolve

SRC = "nat-lifetime"
PORT = 5062  # not a SIP port: the ALG's own timers do not apply
GUIDE_MINIMUM = 180.0
GRACE = 2.0
WARMUP = 2.5  # a two-way exchange first, as a phone's registration: see reflector.lifetime


def budget(config: Config) -> float:
    """The pipeline's time limit for this probe: the measuring budget plus resolution."""
    return config.nat_budget + 4 * config.timeout + 5


def delays(budget: float) -> list[float]:
    """Delays that fit in ``budget`` seconds, densest where routers usually stand."""
    ladder = [5, 15, 25, 32, 45, 60, 90, 120, 150, 185]
    return [float(d) for d in ladder if d + GRACE + WARMUP <= budget]


async def probe(ctx: Context) -> list[Fact]:
    budget = ctx.config.nat_budget
    name = ctx.config.reflector
    unknown = Fact("site", "nat.udp_timeout_s", UNKNOWN, SRC, "")
    if budget <= 0:
        unknown.evidence = "not measured (NAT lifetime budget is 0)"
        return [unknown]
    if not name:
        unknown.evidence = "no reflector configured ([site] reflector)"
        return [unknown]
    plan = delays(budget)
    if not plan:
        unknown.evidence = f"a budget of {budget:g} s is too short to measure"
        return [unknown]
    try:
        addrs, _ms = await resolve(name, ctx.config.timeout * 2)
    except (OSError, TimeoutError):
        unknown.evidence = f"the reflector {name} does not resolve"
        return [unknown]
    host = addrs[0]
    got = await reflector.lifetime(host, PORT, plan, _source_ip_for(host), GRACE, WARMUP)
    if not got:
        unknown.evidence = f"the reflector {name} does not answer on UDP {PORT}"
        return [unknown]
    kept = [d for d in sorted(got) if got[d]]
    lost = [d for d in sorted(got) if not got[d]]
    verified = max(kept, default=0.0)
    facts = [Fact("site", "nat.udp_timeout_min_s", verified, SRC, _summary(got))]
    if lost:
        first = lost[0]
        evidence = (
            f"an idle UDP mapping survived {verified:g} s but not {first:g} s "
            f"(guide: at least {GUIDE_MINIMUM:g} s); {_summary(got)}"
        )
        facts.append(Fact("site", "nat.udp_timeout_s", verified, SRC, evidence))
    else:
        unknown.evidence = f"every mapping survived up to {verified:g} s (the budget)"
        facts.append(unknown)
    return facts


def _summary(got: dict[float, bool]) -> str:
    return ", ".join(f"{d:g} s {'kept' if ok else 'lost'}" for d, ok in sorted(got.items()))
