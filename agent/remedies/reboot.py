"""Restart the line's Plug & Phone from OVHcloud: ``POST /telephony/{billingAccount}/line/
{serviceName}/phone/reboot`` (body ``{}``; a ``telephony.Task``), as the control panel's
"Redémarrer" does. HTTP 501 means "Impossible de redémarrer à distance ce type de
téléphone" (Gigaset, Cisco SPA112). Nothing to undo.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from agent.config import Config
from agent.provider.api import ProviderError
from agent.remedies.base import Env, RemedyError, Step, Target, Why
from agent.remedies.line_options import provider_access, where_of
from agent.remedies.spec import Remedy

ACTION = "provider-reboot"


def check(remedy: Remedy) -> list[str]:
    return []


def phone_path(where: dict[str, str], verb: str) -> str:
    ba, sn = quote(where["billing_account"], safe=""), quote(where["line"], safe="")
    return f"/telephony/{ba}/line/{sn}/phone/{verb}"


def available(remedy: Remedy, target: Target, cfg: Config) -> Why | None:
    return provider_access(target)


def step(where: dict[str, str], fallback: str = "") -> Step:
    return Step(ACTION, where, {}, {}, False, fallback)


async def plan(remedy: Remedy, target: Target, env: Env) -> list[Step]:
    where = where_of(target)
    if where is None:
        raise RemedyError(Why("remedy.why.no_line"))
    return [step(where)]


async def run(step: Step, env: Env) -> dict[str, Any]:
    task = await env.api().post(phone_path(step.where, "reboot"))
    task = task if isinstance(task, dict) else {}
    return {k: task[k] for k in ("taskId", "status") if k in task}


async def read(step: Step, env: Env) -> dict[str, Any]:
    return {}


def undo_values(step: Step) -> dict[str, Any]:
    return {}


def surely_not_applied(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.surely_not_applied


def falls_back(exc: BaseException) -> bool:
    """HTTP 501: OVHcloud cannot restart this model (the person does it instead)."""
    return isinstance(exc, ProviderError) and exc.kind == "not-supported"
