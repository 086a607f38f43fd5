"""Probes observe and emit facts; they never judge (rules do).

A probe is ``async def probe(ctx) -> list[Fact]``; the runner gives each one a
timeout and records any failure as an error entry in the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent.config import Config
from agent.model import Device, Fact, ProbeError
from agent.scope import ScopedNetwork


@dataclass
class Context:
    config: Config
    networks: list[ScopedNetwork]
    devices: list[Device]
    errors: list[ProbeError] = field(default_factory=list)  # per-device failures


Probe = Callable[[Context], Awaitable[list[Fact]]]


def site_probes() -> dict[str, Probe]:
    from agent.probes import device, firmware, identity, lan, registrar

    return {
        "identity": identity.probe,
        "device": device.probe,
        "firmware": firmware.probe,
        "lan": lan.probe,
        "registrar": registrar.probe,
    }
