"""Restart a phone on the LAN through its vendor's interface (the adapter's ``reboot``, only
where the vendor documents one: Yealink Action URI ``key=Reboot``, Cisco ``/admin/reboot``,
Snom's web restart). It reaches a phone OVHcloud cannot: one that is not registered.
Nothing to undo; whether it came back registered is for the new diagnosis to tell.
"""

from __future__ import annotations

from typing import Any

from agent.config import Config
from agent.model import Device
from agent.net.http import HttpError, LockedOut
from agent.remedies import phone_settings
from agent.remedies.base import Env, RemedyError, Step, Target, Why
from agent.remedies.spec import Remedy
from agent.vendors import base, registry

ACTION = "phone-reboot"


def check(remedy: Remedy) -> list[str]:
    return []


def can_reboot(device: Device | None) -> bool:
    return device is not None and base.rebootable(registry.adapter_for(device.vendor))


def available(remedy: Remedy, target: Target, cfg: Config) -> Why | None:
    if target.device is None:
        return Why("remedy.why.no_phone")
    if not can_reboot(target.device):
        return Why("remedy.why.no_reboot_path", {"vendor": target.device.vendor or "?"})
    return None


def step(device: Device, fallback: str = "", alternative: dict[str, Any] | None = None) -> Step:
    where = {"ip": device.ip, "vendor": device.vendor or "", "model": device.model or ""}
    return Step(ACTION, where, {}, {}, False, fallback, alternative)


async def plan(remedy: Remedy, target: Target, env: Env) -> list[Step]:
    if target.device is None:
        raise RemedyError(Why("remedy.why.no_phone"))
    return [step(target.device)]


async def run(step: Step, env: Env) -> dict[str, Any]:
    ctx = phone_settings.context(step.where, env)
    adapter = registry.adapter_for(ctx.device.vendor)
    await adapter.reboot(ctx)  # type: ignore[attr-defined]
    return {}


async def read(step: Step, env: Env) -> dict[str, Any]:
    return {}


def undo_values(step: Step) -> dict[str, Any]:
    return {}


def surely_not_applied(exc: BaseException) -> bool:
    return isinstance(exc, base.Refused | LockedOut)


def falls_back(exc: BaseException) -> bool:
    """A restart that did not happen, for any reason: the person does it instead."""
    return isinstance(exc, HttpError | TimeoutError | OSError)
