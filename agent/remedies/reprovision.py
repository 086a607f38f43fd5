"""Re-provision the line's Plug & Phone, as the control panel's "Reconfiguration automatique
de votre équipement" (ovh-control-panel-and-api.md §1.5): ``POST /telephony/{billingAccount}/
line/{serviceName}/phone/resetConfig`` with ``{ip}``, the office's public IPv4 address (the
one the phone reaches OVHcloud from), then restart the phone so it fetches that
configuration: through its own interface on the LAN where its vendor documents a restart
(it works even when the phone is not registered, which is when it needs re-provisioning),
else, or when that fails (no web login...), OVHcloud's ``phone/reboot``; where neither can
(HTTP 501...), the person restarts it: the control panel itself asks that.

The public address is the one measured by STUN (``lan.public_ip``), else the one OVHcloud
saw the line register from (``line.registration_ip``). A Siemens/Gigaset base may answer
with an activation code to type into the handset ("Assist VoIP"): it is shown, never
stored. Nothing to undo.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from agent.config import Config
from agent.remedies import phone_reboot, reboot
from agent.remedies.base import Env, RemedyError, Step, Target, Why
from agent.remedies.line_options import provider_access, where_of
from agent.remedies.spec import Remedy

ACTION = "provider-reset-config"
BY_HAND = "remedy.note.restart_by_hand"


def check(remedy: Remedy) -> list[str]:
    return []


def public_ip(target: Target) -> str | None:
    for key in ("lan.public_ip", "line.registration_ip"):
        value = target.fact(key)
        try:
            if isinstance(value, str) and ipaddress.ip_address(value).version == 4:
                return value
        except ValueError:
            continue
    return None


def available(remedy: Remedy, target: Target, cfg: Config) -> Why | None:
    why = provider_access(target)
    if why is None and public_ip(target) is None:
        return Why("remedy.why.no_public_ip")
    return why


async def plan(remedy: Remedy, target: Target, env: Env) -> list[Step]:
    where, ip = where_of(target), public_ip(target)
    if where is None:
        raise RemedyError(Why("remedy.why.no_line"))
    if ip is None:
        raise RemedyError(Why("remedy.why.no_public_ip"))
    restart = reboot.step(where, fallback=BY_HAND)
    if target.device is not None and phone_reboot.can_reboot(target.device):
        restart = phone_reboot.step(target.device, BY_HAND, alternative=restart.to_dict())
    return [Step(ACTION, where, {"ip": ip}, {}, False), restart]


async def run(step: Step, env: Env) -> dict[str, Any]:
    """Returns the reset method, and (``activation_code``, never audited) a Gigaset code."""
    info = await env.api().post(reboot.phone_path(step.where, "resetConfig"), dict(step.set))
    info = info if isinstance(info, dict) else {}
    out: dict[str, Any] = {"resetPhoneMethod": info.get("resetPhoneMethod")}
    code = (info.get("resetCodeInfo") or {}).get("activationCode")
    if code:
        out["activation_code"] = code
    return out


# Nothing to read back and no undo, like a reboot; a refused call changed nothing.
read, undo_values, surely_not_applied = reboot.read, reboot.undo_values, reboot.surely_not_applied
