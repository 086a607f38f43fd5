"""Change the phone's own settings through its vendor's interface (the adapter's ``write``,
only where the vendor documents a write path: agent/vendors/base.py ``WRITE_KEYS``). The
values are read first with the adapter's ``read``, as the diagnosis reads them, so the
audit log keeps them and an undo writes them back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agent import identify
from agent.config import Config
from agent.model import Device
from agent.net.http import HttpError, LockedOut, Session
from agent.remedies.base import Env, RemedyError, Step, Target, Why, show_values
from agent.remedies.spec import Remedy
from agent.vendors import base, registry

ACTION = "phone-settings"


def check(remedy: Remedy) -> list[str]:
    keys = [*remedy.set, *remedy.keep]
    bad = [k for k in keys if k not in base.WRITE_KEYS]
    bad += [k for k, v in remedy.set.items() if not isinstance(v, base.WRITE_KEYS.get(k, object))]
    return [f"{remedy.id}: cannot write or keep {k}" for k in bad]


def available(remedy: Remedy, target: Target, cfg: Config) -> Why | None:
    device = target.device
    if device is None:
        return Why("remedy.why.no_phone")
    adapter = registry.adapter_for(device.vendor)
    keys = {*remedy.set, *remedy.keep}
    if not keys <= base.writable(adapter):
        vendor = device.vendor or "?"
        return Why("remedy.why.no_write_path", {"vendor": vendor})
    return None


def context(where: dict[str, str], env: Env) -> base.Context:
    cfg = env.cfg
    device = Device(ip=where["ip"], vendor=where.get("vendor") or None, model=where.get("model"))
    v = identify.vendor(device.vendor)
    defaults = list(v.default_logins) if v else []
    logins = base.logins(cfg, device.vendor, device.ip, defaults)
    session = Session(device.ip, logins, timeout=cfg.timeout * 2, transport=env.transport)
    return base.Context(device, cfg, session)


def _budget(cfg: Config) -> float:
    return cfg.timeout * 6 + 2  # as the device probe: a few pages, a login


async def read(step: Step, env: Env) -> dict[str, Any]:
    ctx = context(step.where, env)
    adapter = registry.adapter_for(ctx.device.vendor)
    async with asyncio.timeout(_budget(env.cfg)):
        values = await adapter.read(ctx)
    return {k: values.get(k) for k in sorted(set(step.before) | set(step.set))}


async def plan(remedy: Remedy, target: Target, env: Env) -> list[Step]:
    device = target.device
    if device is None:
        raise RemedyError(Why("remedy.why.no_phone"))
    where = {"ip": device.ip, "vendor": device.vendor or "", "model": device.model or ""}
    step = Step(ACTION, where, {}, {k: None for k in [*remedy.set, *remedy.keep]}, True)
    try:
        step.before = await read(step, env)
    except (HttpError, TimeoutError) as e:
        why = str(e) or "no answer in time"
        raise RemedyError(Why("remedy.why.cannot_read", {"why": why})) from None
    unknown = [k for k in remedy.set if step.before.get(k) is None]
    if unknown:
        raise RemedyError(Why("remedy.why.not_shown", {"keys": ", ".join(unknown)}))
    step.set = {k: v for k, v in remedy.set.items() if step.before.get(k) != v}
    if not step.set:
        raise RemedyError(Why("remedy.why.already", {"values": show_values(remedy.set)}))
    return [step]


async def run(step: Step, env: Env) -> dict[str, Any]:
    ctx = context(step.where, env)
    adapter = registry.adapter_for(ctx.device.vendor)
    async with asyncio.timeout(_budget(env.cfg)):
        await adapter.write(ctx, step.set)  # type: ignore[attr-defined]
    return {}


def undo_values(step: Step) -> dict[str, Any]:
    """What an undo writes: the values read before (a forward's target only with it on)."""
    values = {k: v for k, v in step.before.items() if v is not None}
    if values.get("phone.forward.always") is not True:
        values.pop("phone.forward.always_target", None)
    return values


def surely_not_applied(exc: BaseException) -> bool:
    return isinstance(exc, base.Refused | LockedOut)
