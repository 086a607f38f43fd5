"""Turn one line as the provider sees it into facts (catalogue keys ``line.*``).

Observations only: the values the API gave, typed, plus the joins with the LAN (the
phone's real MAC, the office's public IPs). A field the API did not give stays unknown.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from agent.model import Device, Fact
from agent.provider.join import norm_mac
from agent.provider.lines import LineView

SRC = "provider"
RECENT_S = 3600.0  # "Un enregistrement sur le réseau est valable durant une heure."

# LineOptions boolean field -> fact key
BOOLEANS = {
    "forwardUnconditional": "line.forward.unconditional",
    "forwardBusy": "line.forward.busy",
    "forwardNoReply": "line.forward.noreply",
    "forwardBackup": "line.forward.backup",
    "doNotDisturb": "line.dnd",
    "absentSubscriber": "line.absent_subscriber",
    "callRestrictionIncoming": "line.call_restriction_incoming",
    "callRestrictionOutgoing": "line.call_restriction_outgoing",
    "anonymousCallRejection": "line.anonymous_call_rejection",
    "lockOutCall": "line.lock_out_call",
}
FORWARDS = ("forwardUnconditional", "forwardBusy", "forwardNoReply")


def when(value: object) -> datetime | None:
    """An API datetime (ISO 8601 with offset) as an aware datetime; None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _options(opts: dict[str, Any], office: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: opts[f] for f, k in BOOLEANS.items() if isinstance(opts.get(f), bool)}
    number = opts.get("forwardUnconditionalNumber")
    if isinstance(number, str) and number and opts.get("forwardUnconditional") is True:
        out["line.forward.unconditional_number"] = number
    natures = [opts.get(f"{f}Nature") for f in FORWARDS if opts.get(f) is True]
    if all(isinstance(opts.get(f), bool) for f in FORWARDS):
        out["line.forward.to_voicemail"] = "voicemail" in natures
    blocks = opts.get("ipRestrictions")
    if isinstance(blocks, list):
        nets = []
        for b in blocks:
            try:
                nets.append(ipaddress.ip_network(str(b), strict=False))
            except ValueError:
                continue
        if not nets:
            out["line.ip_restricted"] = False
        elif office:
            out["line.ip_restricted"] = not any(
                ipaddress.ip_address(ip) in n for ip in office for n in nets
            )
    return out


def _registrations(
    regs: list[dict[str, Any]], office: set[str], now: datetime, on_lan: bool
) -> dict[str, Any]:
    dated = sorted(
        ((t, r) for r in regs if (t := when(r.get("datetime"))) is not None),
        key=lambda x: x[0],
        reverse=True,
    )
    if not dated:
        return {}
    newest_at, newest = dated[0]
    age = max(0.0, (now - newest_at).total_seconds())
    recent = {
        r["userAgent"]
        for t, r in dated
        if (now - t).total_seconds() <= RECENT_S and isinstance(r.get("userAgent"), str)
    }
    out: dict[str, Any] = {
        "line.registration_age_s": round(age, 1),
        "line.last_registration": newest.get("datetime"),
        "line.registration_user_agents": len(recent),
    }
    if isinstance(newest.get("ip"), str):
        out["line.registration_ip"] = newest["ip"]
        if office and on_lan:  # a line no LAN phone uses may well register elsewhere
            out["line.registered_from_other_ip"] = newest["ip"] not in office
    return out


def line_facts(
    view: LineView,
    subject: str,
    device: Device | None,
    office: set[str],
    now: datetime,
    how: str = "",
) -> list[Fact]:
    """The facts of one line, about ``subject`` (the LAN phone's IP, or ``line:<number>``)."""
    values: dict[str, Any] = {
        "line.number": view.service_name,
        "line.billing_account": view.billing_account,
    }
    if view.options is not None:
        values |= _options(view.options, office)
    if view.registrations is not None:
        values |= _registrations(view.registrations, office, now, device is not None)
        if device is None:  # a LAN phone's registration is tested live (inbound probe)
            age = values.get("line.registration_age_s")
            values["line.registered"] = age is not None and age <= RECENT_S
    mac = norm_mac((view.phone or {}).get("macAddress"))
    if mac:
        values["line.phone_mac"] = mac
        if device is not None and norm_mac(device.mac):
            values["line.mac_matches"] = mac == norm_mac(device.mac)
    where = f"{view.path}" + (f" (phone {subject} matched by {how})" if how else "")
    return [Fact(subject, k, v, SRC, where) for k, v in values.items()]
