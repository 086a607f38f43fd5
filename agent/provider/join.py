"""Join the provider's lines to the phones found on the LAN.

A line belongs to a LAN phone when the MAC the control panel holds is the phone's
(the strongest link), else when one of the line's registrations came from the phone's
LAN address with the phone's own User-Agent, else when the phone's SIP account is the
line. The office's public IPs are those the provider saw the LAN's phones register from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent.model import Device
from agent.provider.lines import LineView

_HEX = re.compile(r"[^0-9a-f]")


def norm_mac(mac: object) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from any common spelling; None if it is not a MAC."""
    if not isinstance(mac, str):
        return None
    digits = _HEX.sub("", mac.lower())
    if len(digits) != 12:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _agent(device: Device) -> str | None:
    return device.evidence.get("sip", {}).get("agent") or None


def _sent_by(registration: dict[str, object], device: Device) -> bool:
    """This registration came from this phone: its LAN IP and its own User-Agent."""
    agent = _agent(device)
    return (
        agent is not None
        and registration.get("localIp") == device.ip
        and registration.get("userAgent") == agent
    )


def _from_device(view: LineView, device: Device) -> bool:
    return any(_sent_by(r, device) for r in view.registrations or [])


def match(
    lines: Iterable[LineView], devices: Iterable[Device], accounts: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """service name -> (device IP, how: "mac" | "user-agent+local-ip" | "sip-account").

    ``accounts`` maps a device IP to its SIP account (``user@domain``) where known."""
    lines, devices = list(lines), list(devices)
    by_mac = {norm_mac(d.mac): d.ip for d in devices if norm_mac(d.mac)}
    found: dict[str, tuple[str, str]] = {}
    for view in lines:
        mac = norm_mac((view.phone or {}).get("macAddress"))
        if mac in by_mac:
            found[view.service_name] = (by_mac[mac], "mac")
            continue
        device = next((d for d in devices if _from_device(view, d)), None)
        if device is not None:
            found[view.service_name] = (device.ip, "user-agent+local-ip")
            continue
        ip = next(
            (ip for ip, acc in accounts.items() if acc.split("@")[0] == view.service_name),
            None,
        )
        if ip is not None:
            found[view.service_name] = (ip, "sip-account")
    return found


def office_ips(lines: Iterable[LineView], devices: Iterable[Device]) -> set[str]:
    """Public IPs the provider saw this LAN's phones register from."""
    devices = list(devices)
    out = set()
    for view in lines:
        for r in view.registrations or []:
            if isinstance(r.get("ip"), str) and any(_sent_by(r, d) for d in devices):
                out.add(r["ip"])
    return out
