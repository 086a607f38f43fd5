"""What identification found, as device facts the rules can use."""

from __future__ import annotations

from agent import identify
from agent.model import UNKNOWN, Fact
from agent.probes import Context


async def probe(ctx: Context) -> list[Fact]:
    facts = []
    for d in ctx.devices:
        evidence = ", ".join(d.identified_by)
        for key, value in (
            ("phone.vendor", d.vendor),
            ("phone.model", d.model),
            ("phone.firmware", d.firmware),
        ):
            facts.append(Fact(d.ip, key, value if value else UNKNOWN, "identify", evidence))
        facts.append(Fact(d.ip, "phone.family", identify.family(d), "identify", evidence))
    return facts
