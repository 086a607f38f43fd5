"""The phone's own state, read by its vendor adapter: registration, forwarding, DND,
clock, provisioning. One timeout per phone; a phone that cannot be read gives an
error entry and unknown facts, never a crash."""

from __future__ import annotations

import asyncio

from agent import identify
from agent.config import Config
from agent.model import Device, Fact, ProbeError
from agent.net.http import HttpError, Session
from agent.probes import Context
from agent.vendors import base, registry


def phone_timeout(config: Config) -> float:
    """How long one phone's adapter may take (its web pages get twice ``timeout`` each)."""
    return config.timeout * 6 + 2


def budget(config: Config) -> float:
    """The step's timeout: beyond any one phone's, so that a phone too slow to read costs
    its own facts (an error entry names it), not every phone's."""
    return phone_timeout(config) + 1.0


async def _one(ctx: Context, device: Device) -> list[Fact]:
    adapter = registry.adapter_for(device.vendor)
    v = identify.vendor(device.vendor)
    defaults = list(v.default_logins) if v else []
    session = Session(
        device.ip,
        base.logins(ctx.config, device.vendor, device.ip, defaults),
        timeout=ctx.config.timeout * 2,
    )
    actx = base.Context(device, ctx.config, session)
    source = f"vendor.{adapter.vendor}"
    try:
        async with asyncio.timeout(phone_timeout(ctx.config)):
            values = await adapter.read(actx)
    except TimeoutError:
        ctx.errors.append(
            ProbeError("probe.device", "the phone's interface is too slow", device.ip)
        )
        values = {}
    except HttpError as e:
        ctx.errors.append(ProbeError("probe.device", str(e), device.ip))
        values = {}
    evidence = "; ".join(session.trail()[-3:])
    return base.Reading(device, source, values, evidence).facts()


def lan_shared(facts: list[Fact]) -> list[Fact]:
    """For each phone whose account is known: how many other LAN devices report it too."""
    accounts = {
        f.subject: f.value.lower()
        for f in facts
        if f.key == "sip.account" and isinstance(f.value, str) and f.value
    }
    out = []
    for ip, acc in accounts.items():
        others = sorted(o for o, a in accounts.items() if a == acc and o != ip)
        why = f"{acc} also on {', '.join(others)}" if others else f"{acc} on this device only"
        out.append(Fact(ip, "sip.account.lan_shared", len(others), "device", why))
    return out


def _load_adapters(vendors: set[str | None]) -> None:
    for vendor in vendors:
        registry.adapter_for(vendor)


async def probe(ctx: Context) -> list[Fact]:
    # the adapters' modules are imported in a worker thread: the event loop (and the run's
    # deadline) does not wait for them
    await asyncio.to_thread(_load_adapters, {d.vendor for d in ctx.devices})
    results = await asyncio.gather(*(_one(ctx, d) for d in ctx.devices))
    facts = [f for r in results for f in r]
    return facts + lan_shared(facts)
