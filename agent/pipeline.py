"""The pipeline: scope -> discover -> identify -> probe -> judge -> report.

Every step runs with a timeout inside one deadline for the whole run; a step that
fails or times out becomes an entry in ``Report.errors``, never an exception. A run
told to stop (SIGTERM, Ctrl-C: :func:`stop_on_signals`) ends its steps at once and
still judges and reports what was observed until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

from agent import discovery, identify
from agent.config import Config
from agent.discovery import arp
from agent.model import LINE_PREFIX, Device, Fact, ProbeError, Report, Sighting
from agent.platform import normalise_mac
from agent.scope import ScopedNetwork

T = TypeVar("T")


# Told of every step: ("start" | "done" | "failed", the step's name, e.g. "probe.stun").
Progress = Callable[[str, str], None]


# Kept back from the deadline for judging, reporting and storing the run (0.3-0.4 s
# measured, the rules and probe modules being loaded during discovery: benchmarks/deadline.py),
# a tenth of a short deadline.
TAIL_SHARE, TAIL_MAX = 0.1, 0.5
INTERRUPTED = "interrupted"  # the "run" error's reason starts with it (cli: exit code)


class Runner:
    """Runs steps with per-step timeouts under one deadline, collecting errors.

    The deadline counts from ``started`` (a ``time.monotonic()`` value: the process's
    start, for the command line) and keeps a short tail back for what follows the steps.
    :meth:`stop` ends every running step at once and skips the ones not started."""

    def __init__(
        self, deadline: float, progress: Progress | None = None, started: float | None = None
    ) -> None:
        tail = min(TAIL_MAX, deadline * TAIL_SHARE)
        self.end = (time.monotonic() if started is None else started) + deadline - tail
        self.errors: list[ProbeError] = []
        self.timings: dict[str, float] = {}
        self.progress = progress
        self.stopped: str | None = None  # why the run was told to stop
        self._running: set[asyncio.Timeout] = set()

    def _tell(self, event: str, name: str) -> None:
        if self.progress is not None:
            try:
                self.progress(event, name)
            except Exception:  # a display must never break the run
                self.progress = None

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def stop(self, why: str) -> None:
        """End the run now (a signal): running steps end as if their time were up,
        the others are skipped; one "run" error says why. Call it from the loop."""
        if self.stopped is not None:
            return
        self.stopped = why
        self.end = time.monotonic()
        self.errors.append(ProbeError("run", f"{INTERRUPTED} ({why}): partial report"))
        now = asyncio.get_running_loop().time()
        for timeout in list(self._running):
            if not timeout.expired():
                timeout.reschedule(now)

    async def step(self, name: str, aw: Awaitable[T], timeout: float, default: T) -> T:
        budget = min(timeout, self.remaining())
        if self.stopped is not None or budget <= 0:  # not started: no time left
            if asyncio.iscoroutine(aw):
                aw.close()
            if self.stopped is None:  # a signal is said once, in the "run" error
                self.errors.append(ProbeError(name, "deadline of the run reached"))
            return default
        start = time.monotonic()
        self._tell("start", name)
        ok = False  # not len(self.errors): steps run side by side and fail on their own
        try:
            async with asyncio.timeout(budget) as cm:
                self._running.add(cm)
                try:
                    result = await aw
                finally:
                    self._running.discard(cm)
                ok = True
                self._tell("done", name)
                return result
        except TimeoutError:
            if self.stopped is not None:
                why = f"{INTERRUPTED} ({self.stopped})"
            elif budget < timeout:
                why = "deadline of the run reached"
            else:
                why = f"no result within {budget:.1f} s"
            self.errors.append(ProbeError(name, why))
        except Exception as e:  # a step must never crash the run
            self.errors.append(ProbeError(name, f"{type(e).__name__}: {e}"))
        finally:
            self.timings[name] = time.monotonic() - start
            if not ok:
                self._tell("failed", name)
        if asyncio.iscoroutine(aw):
            aw.close()
        return default


@contextlib.contextmanager
def stop_on_signals(run: Runner) -> Iterator[None]:
    """While the run lasts, SIGTERM and SIGINT (Ctrl-C) stop it (:meth:`Runner.stop`)
    instead of killing it: the report of what was seen so far is still printed and
    stored. A second signal acts as usual (the previous handler is back). Use it inside
    the running loop, in the main thread."""
    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, Any]] = []

    def on_signal(sig: signal.Signals) -> None:
        for s, previous in installed:  # the second one acts as usual
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                signal.signal(s, previous)
        run.stop(sig.name)

    def handler(number: int, _frame: Any) -> None:  # runs between two bytecodes
        loop.call_soon_threadsafe(on_signal, signal.Signals(number))

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous = signal.getsignal(sig)
            signal.signal(sig, handler)
        except (ValueError, OSError, RuntimeError):  # not the main thread; no such signal
            continue
        installed.append((sig, previous))
    try:
        yield
    finally:
        for sig, previous in installed:
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                signal.signal(sig, previous)


def _method_timeout(cfg: Config, targets: int) -> float:
    """A safety net only: each method ends about one sweep timeout after its last packet
    by itself. Every method shares one rate limit: count the packets all of them may send."""
    credentials = len(cfg.snmp_communities) + (1 if cfg.snmp_v3_user else 0)
    packets = targets * (2 * len(cfg.sip_ports) + credentials + 1)
    listen = max(cfg.mdns_window, cfg.pnp_window or 0)
    return listen + (credentials + 2) * cfg.sweep_timeout + packets / max(cfg.rate, 1) + 5


async def _load_data(ctx: discovery.Context, later: Sequence[Callable[[], object]]) -> None:
    """Read the data files the later steps need while the answers are awaited, once
    every probe is out: the vendor data for identify(), then ``later`` (the rules)."""
    await ctx.quiet()
    identify.vendors()
    identify.exclusions()
    identify.non_phone_ouis()
    for load in later:
        await asyncio.sleep(0)  # an answer that came meanwhile is read first
        load()


def _budget(module: Any, cfg: Config, default: float) -> float:
    budget = getattr(module, "budget", None)
    return max(default, budget(cfg)) if budget else default


# Layer-2 observations come first when methods disagree on an address's MAC.
MAC_AUTHORITY = ("arp",)


def merge(sightings: list[Sighting]) -> list[Device]:
    """One device per IP, with every method's evidence (``found_by``, ``evidence[method]``).

    An IP gets the MAC any method saw for it (ARP's first when methods disagree; the
    others are noted in ``evidence["merge"]["other_macs"]``). Several IPs sharing one MAC
    stay separate devices (a phone with two addresses, a proxy-ARP router, a NAT): each
    notes the others in ``evidence["merge"]["same_mac_as"]``. Sightings with an invalid
    address are dropped; an invalid MAC is ignored."""
    devices: dict[str, Device] = {}
    macs: dict[str, list[tuple[int, str]]] = {}
    for s in sightings:
        try:
            ip = str(ipaddress.ip_address(s.ip))
        except ValueError:
            continue
        d = devices.setdefault(ip, Device(ip=ip))
        d.add(Sighting(s.method, ip, None, s.attrs))
        mac = _mac(s.mac)
        if mac:
            rank = MAC_AUTHORITY.index(s.method) if s.method in MAC_AUTHORITY else 99
            macs.setdefault(ip, []).append((rank, mac))
    by_mac: dict[str, list[str]] = {}
    for ip, seen in macs.items():
        d = devices[ip]
        d.mac = min(seen, key=lambda r: r[0])[1]
        others = sorted({m for _, m in seen} - {d.mac})
        if others:
            d.evidence.setdefault("merge", {})["other_macs"] = ", ".join(others)
        by_mac.setdefault(d.mac, []).append(ip)
    for ips in by_mac.values():
        for ip in ips if len(ips) > 1 else ():
            shared = ", ".join(sorted((i for i in ips if i != ip), key=ipaddress.ip_address))
            devices[ip].evidence.setdefault("merge", {})["same_mac_as"] = shared
    return sorted(devices.values(), key=lambda d: ipaddress.ip_address(d.ip))


def _mac(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return normalise_mac(text)
    except ValueError:
        return None


async def discover(
    cfg: Config,
    networks: list[ScopedNetwork],
    run: Runner,
    later: Sequence[Callable[[], object]] = (),
) -> list[Device]:
    """Discover and identify the phones. ``later``: loaders of data a later step needs,
    run while discovery waits for answers (their results cached by them)."""
    ctx = discovery.Context(cfg, networks)
    timeout = _method_timeout(cfg, len(ctx.targets()))
    # the data identify() needs (~20 ms of CPU), read while the answers are awaited
    loaded = asyncio.create_task(_load_data(ctx, later))
    swept, *results = await asyncio.gather(
        run.step("discover.arp.sweep", arp.sweep(ctx), timeout, arp.Swept(skipped="timeout")),
        *(
            run.step(f"discover.{name}", fn(ctx), timeout, [])
            for name, fn in discovery.methods().items()
        ),
    )
    await asyncio.gather(loaded, return_exceptions=True)
    sightings = [s for r in results for s in r]
    # The neighbour table is read last: the sweeps above have just filled it.
    sightings += await run.step("discover.arp", arp.discover(ctx, swept), cfg.sweep_timeout + 2, [])
    # Nothing outside the scope becomes a device (a spoofed record, an LLDP neighbour
    # on another subnet): later steps send packets to every device.
    devices = merge([s for s in sightings if ctx.in_scope(s.ip)])
    for d in devices:
        identify.identify(d)
    return [d for d in devices if identify.is_phone(d)]


def _interruptible(run: Runner, signals: bool) -> contextlib.AbstractContextManager[None]:
    return stop_on_signals(run) if signals else contextlib.nullcontext()


async def run_discover(
    cfg: Config,
    networks: list[ScopedNetwork],
    progress: Progress | None = None,
    *,
    started: float | None = None,
    signals: bool = False,
) -> Report:
    """Discover and identify. ``started``: when the deadline starts (default: now);
    ``signals``: SIGTERM/Ctrl-C stop the run with a partial report (the command line)."""
    start = time.monotonic()
    run = Runner(cfg.deadline, progress, started)
    with _interruptible(run, signals):
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
    progress: Progress | None = None,
    *,
    started: float | None = None,
    signals: bool = False,
) -> Report:
    """Discover, probe and judge. ``answers`` are what the person told us (user facts);
    with ``symptom`` only the rules answering that symptom are kept. ``started`` and
    ``signals``: as :func:`run_discover`."""
    from agent import judge, probes  # not on `discover`'s path: its start-up stays short

    start = time.monotonic()
    run = Runner(cfg.deadline, progress, started)
    facts: list[Fact] = []
    with _interruptible(run, signals):
        # the rules (~0.1 s of CPU to parse) and the probe modules (~0.2 s to import) are
        # loaded while discovery waits for answers, not after it, on the deadline's time
        devices = await discover(cfg, networks, run, later=(judge.load_all, probes.site_probes))
        ctx = probes.Context(cfg, networks, devices)
        default = 4 * cfg.timeout + 5
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


def interrupted(report: Report) -> str | None:
    """What stopped the run before its end (``"SIGTERM"``…), None if it ran to its end."""
    for e in report.errors:
        if e.step == "run" and e.reason.startswith(f"{INTERRUPTED} ("):
            return e.reason[len(INTERRUPTED) + 2 :].split(")", 1)[0]
    return None
