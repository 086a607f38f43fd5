"""The provider's side of each line, through the OVHcloud API: forwarding, Do-Not-Disturb,
filtering, the registrations OVHcloud saw and the Plug & Phone record, joined to the
phones found on the LAN (``agent/provider/``).

Runs after the others (``PHASE = 2``): the joins need the phones' SIP accounts and the
office's public IP. Without usable API keys it says so (``provider.access``) and what
could not be checked; it never fails the run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from agent.config import Config
from agent.model import Fact, ProbeError
from agent.probes import Context
from agent.provider import join, lines, observe
from agent.provider.api import Api, ProviderError
from agent.provider.credentials import MissingKeys, resolve

PHASE = 2
SRC = "provider"


def budget(config: Config) -> float:
    return 6 * config.timeout + 10


def _access(value: str, why: str) -> list[Fact]:
    return [
        Fact("site", "provider.access", value, SRC, why),
        Fact("site", "provider.access_reason", why, SRC, why),
    ]


async def probe(ctx: Context) -> list[Fact]:
    cfg = ctx.config
    # Looking the keys up (files, the OS keyring) and building the client (importing ovh and
    # requests) take 0.2 s of CPU and more on a busy machine: in a worker thread, so that the
    # run's deadline can still end this step on time.
    try:
        keys = await asyncio.to_thread(resolve, cfg)
    except MissingKeys as e:
        why = f"no OVHcloud API keys ({e} found nowhere)"
        return _access("not-configured", why)
    try:
        api = await asyncio.to_thread(Api, keys, timeout=max(cfg.timeout * 2, 3.0))
        views, notes = await lines.read_all(api, cfg)
    except ProviderError as e:
        ctx.errors.append(ProbeError("probe.provider", str(e)))
        return _access(e.kind, str(e))
    ctx.errors += [ProbeError("probe.provider", n) for n in notes]
    ctx.errors += [
        ProbeError("probe.provider", err, f"line:{v.service_name}")
        for v in views
        for err in v.errors
    ]

    accounts = {
        f.subject: f.value for f in ctx.facts if f.key == "sip.account" and isinstance(f.value, str)
    }
    matches = join.match(views, ctx.devices, accounts)
    office = join.office_ips(views, ctx.devices)
    office |= {
        f.value
        for f in ctx.facts
        if f.subject == "site" and f.key == "lan.public_ip" and isinstance(f.value, str)
    }
    devices = {d.ip: d for d in ctx.devices}
    now = datetime.now(UTC)
    facts = _access("ok", f"{len(views)} line(s) read from {keys.endpoint}")
    taken: set[str] = set()
    for view in views:
        ip, how = matches.get(view.service_name, (None, ""))
        if ip is not None and ip in taken:  # a second line of the same phone
            ip, how = None, ""
        subject = ip or f"line:{view.service_name}"
        if ip is not None:
            taken.add(ip)
        facts += observe.line_facts(view, subject, devices.get(ip or ""), office, now, how)
    return facts
