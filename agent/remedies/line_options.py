"""Change a line's options at OVHcloud: ``PUT /telephony/{billingAccount}/line/{serviceName}/
options`` with only the fields that change (``telephony.LineOptions``; the control panel's
"Gestion des appels" does the same). The values are read first (``GET .../options``), so
the audit log keeps them and an undo writes them back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from agent.config import Config
from agent.provider.api import ProviderError
from agent.remedies.base import Env, RemedyError, Step, Target, Why, show_values
from agent.remedies.spec import Remedy

ACTION = "line-options"
# The LineOptions fields a remedy may write (booleans) or keep and restore (numbers,
# natures, a delay); never lockOutCallPassword or anything secret.
WRITABLE = {
    "forwardUnconditional": bool, "forwardBusy": bool, "forwardNoReply": bool,
    "doNotDisturb": bool, "absentSubscriber": bool,
}  # fmt: skip
KEEPABLE = {
    "forwardUnconditionalNumber", "forwardUnconditionalNature", "forwardBusyNumber",
    "forwardBusyNature", "forwardNoReplyNumber", "forwardNoReplyNature", "forwardNoReplyDelay",
}  # fmt: skip


def check(remedy: Remedy) -> list[str]:
    """What is wrong with a catalogue entry of this action (nothing: [])."""
    bad = [k for k, v in remedy.set.items() if not isinstance(v, WRITABLE.get(k, type(None)))]
    bad += [k for k in remedy.keep if k not in KEEPABLE]
    return [f"{remedy.id}: cannot write or keep {k}" for k in bad]


def path(where: dict[str, str]) -> str:
    ba, sn = quote(where["billing_account"], safe=""), quote(where["line"], safe="")
    return f"/telephony/{ba}/line/{sn}/options"


def where_of(target: Target) -> dict[str, str] | None:
    ba = target.fact("line.billing_account")
    if not (target.line and isinstance(ba, str)):
        return None
    return {"billing_account": ba, "line": target.line}


def available(remedy: Remedy, target: Target, cfg: Config) -> Why | None:
    return provider_access(target)


def provider_access(target: Target) -> Why | None:
    """Why the line cannot be changed through the API (no line, no access), or None."""
    if where_of(target) is None:
        return Why("remedy.why.no_line")
    access = target.fact("provider.access")
    if access != "ok":
        reason = target.fact("provider.access_reason") or access or "?"
        return Why("remedy.why.no_api", {"why": reason})
    return None


async def read(step: Step, env: Env) -> dict[str, Any]:
    keys = set(step.before) | set(step.set)
    options = await env.api().get(path(step.where))
    if not isinstance(options, dict):
        raise ProviderError("error", f"GET {path(step.where)}: not a LineOptions object")
    return {k: options.get(k) for k in sorted(keys)}


async def plan(remedy: Remedy, target: Target, env: Env) -> list[Step]:
    where = where_of(target)
    if where is None:
        raise RemedyError(Why("remedy.why.no_line"))
    step = Step(ACTION, where, {}, {k: None for k in [*remedy.set, *remedy.keep]}, True)
    try:
        step.before = await read(step, env)
    except ProviderError as e:
        raise RemedyError(Why("remedy.why.cannot_read", {"why": str(e)})) from None
    step.set = {k: v for k, v in remedy.set.items() if step.before.get(k) != v}
    if not step.set:
        raise RemedyError(Why("remedy.why.already", {"values": show_values(remedy.set)}))
    return [step]


async def run(step: Step, env: Env) -> dict[str, Any]:
    await env.api().put(path(step.where), step.set)
    return {}


def undo_values(step: Step) -> dict[str, Any]:
    """What an undo writes: every value read before (an unset number stays as it is)."""
    return {k: v for k, v in step.before.items() if v is not None}


def surely_not_applied(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.surely_not_applied
