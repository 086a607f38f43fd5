"""The pipeline: scope -> discover -> identify -> probe -> judge -> report.

Every step runs with a timeout inside one deadline for the whole run; a step that
fails or times out becomes an entry in ``Report.errors``, never an exception.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from agent import discovery, identify, judge, probes
from agent.config import Config
from agent.discovery import arp
from agent.model import LINE_PREFIX, Device, Fact, ProbeError, Report, Sighting
from agent.scope import ScopedNetwork

T = TypeVar("T")


class Runner:
    """Runs steps with per-step timeouts under one deadline, collecting errors."""

    def __init__(self, deadline: float) -> None:
        self.end = time.monotonic() + deadline
        self.errors: list[ProbeError] = []
        self.timings: dict[str, float] = {}

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    async def step(self, name: str, aw: Awaitable[T], timeout: float, default: T) -> T:
        start = time.monotonic()
        budget = min(timeout, self.remaining())
        try:
            async with asyncio.timeout(budget):
                return await aw
        except TimeoutError:
            why = (
                "deadline of the run reached"
                if budget < timeout
                else f"no result within {budget:.1f} s"
            )
            self.errors.append(ProbeError(name, why))
        except Exception as e:  # a step must never crash the run
            self.errors.append(ProbeError(name, f"{type(e).__name__}: {e}"))
        finally:
            self.timings[name] = time.monotonic() - start
        if asyncio.iscoroutine(aw):
            aw.close()
        return default


def _method_timeout(cfg: Config, targets: int) -> float:
    return cfg.mdns_window + 3 * cfg.timeout + targets / max(cfg.rate, 1) + 5


def _budget(module: Any, cfg: Config, default: float) -> float:
    budget = getattr(module, "budget", None)
    return max(default, budget(cfg)) if budget else default


def merge(sightings: list[Sighting]) -> list[Device]:
    """One device per IP; a MAC seen by any method is kept."""
    devices: dict[str, Device] = {}
    for s in sightings:
        devices.setdefault(s.ip, Device(ip=s.ip)).add(s)
    return sorted(devices.values(), key=lambda d: ipaddress.ip_address(d.ip))


async def discover(cfg: Config, networks: list[ScopedNetwork], run: Runner) -> list[Device]:
    ctx = discovery.Context(cfg, networks)
    timeout = _method_timeout(cfg, len(ctx.targets()))
    results = await asyncio.gather(
        *(
            run.step(f"discover.{name}", fn(ctx), timeout, [])
            for name, fn in discovery.methods().items()
        )
    )
    sightings = [s for r in results for s in r]
    # The neighbour table is read last: the sweeps above have just filled it.
    sightings += await run.step("discover.arp", arp.discover(ctx), cfg.timeout + 2, [])
    devices = merge(sightings)
    for d in devices:
        identify.identify(d)
    # A phone is something that speaks SIP or that a vendor fingerprint recognises.
    return [d for d in devices if "sip" in d.found_by or identify.is_phone_vendor(d)]


async def run_discover(cfg: Config, networks: list[ScopedNetwork]) -> Report:
    start = time.monotonic()
    run = Runner(cfg.deadline)
    devices = await discover(cfg, networks, run)
    return Report(
        duration_s=time.monotonic() - start,
        scope=[str(n.network) for n in networks],
        devices=devices,
        errors=run.errors,
        timings=run.timings,
    )


async def run_diagnose(
    cfg: Config,
    networks: list[ScopedNetwork],
    lang: str,
    answers: dict[str, Any] | None = None,
    symptom: str | None = None,
    explain: bool = False,
) -> Report:
    """Discover, probe and judge. ``answers`` are what the person told us (user facts);
    with ``symptom`` only the rules answering that symptom are kept."""
    start = time.monotonic()
    run = Runner(cfg.deadline)
    devices = await discover(cfg, networks, run)
    ctx = probes.Context(cfg, networks, devices)
    default = 4 * cfg.timeout + 5
    facts: list[Fact] = []
    for phase in (1, 2):
        results = await asyncio.gather(
            *(
                run.step(f"probe.{name}", mod.probe(ctx), _budget(mod, cfg, default), [])
                for name, mod in probes.site_probes().items()
                if getattr(mod, "PHASE", 1) == phase
            )
        )
        facts += [f for r in results for f in r]
        ctx.facts = facts
    run.errors += ctx.errors
    facts += [Fact("site", k, v, "user") for k, v in (answers or {}).items()]
    rules, rule_errors = judge.load_all()
    run.errors += [ProbeError("rules", str(e)) for e in rule_errors]
    if symptom:
        rules = [r for r in rules if symptom in r.symptoms]
    lines = sorted({f.subject for f in facts if f.subject.startswith(LINE_PREFIX)})
    subjects = [d.ip for d in devices] + lines
    report = Report(
        duration_s=0.0,
        scope=[str(n.network) for n in networks],
        devices=devices,
        facts=facts,
        findings=judge.judge(rules, facts, subjects, lang),
        errors=run.errors,
        timings=run.timings,
    )
    if explain:
        report.explain = [
            {"rule": e.rule.id, "device": e.subject, "result": e.result, "trace": e.trace}
            for e in judge.evaluate(rules, facts, subjects)
        ]
    report.duration_s = time.monotonic() - start
    return report
