"""Probes observe and emit facts; they never judge (rules do).

A probe is ``async def probe(ctx) -> list[Fact]``; the runner gives each one a
timeout and records any failure as an error entry in the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType

from agent.config import Config
from agent.model import Device, Fact, ProbeError
from agent.scope import ScopedNetwork


@dataclass
class Context:
    config: Config
    networks: list[ScopedNetwork]
    devices: list[Device]
    errors: list[ProbeError] = field(default_factory=list)  # per-device failures
    facts: list[Fact] = field(default_factory=list)  # phase 1's facts, for PHASE = 2 probes


Probe = Callable[[Context], Awaitable[list[Fact]]]


def site_probes() -> dict[str, ModuleType]:
    """The probe modules, by name: each has ``probe(ctx)`` and may have ``budget(config)``
    (how long it may take, when longer than the default) and ``PHASE = 2`` (runs after
    the others, with their facts in ``ctx.facts``)."""
    from agent.probes import (
        alg,
        device,
        dns,
        firmware,
        identity,
        inbound,
        lan,
        nat_lifetime,
        provider,
        registrar,
        router,
        rtp,
        stun,
    )

    return {
        "identity": identity,
        "device": device,
        "firmware": firmware,
        "lan": lan,
        "registrar": registrar,
        "dns": dns,
        "stun": stun,
        "alg": alg,
        "nat-lifetime": nat_lifetime,
        "rtp": rtp,
        "inbound": inbound,
        "provider": provider,
        "router": router,
    }
