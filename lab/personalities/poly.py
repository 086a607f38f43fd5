"""Poly VVX / SoundPoint IP / IP5000 face on UC Software >= 5.4: the REST API as Poly documents
it ("Poly UC Software REST API Reference Manual"), behind HTTP Basic with the admin login.

- ``GET /api/v1/mgmt/device/info``, ``/api/v1/mgmt/network/info``, ``/api/v1/mgmt/lineInfo``
  and ``/api/v2/mgmt/lineInfo`` (``Username`` instead of ``SIPAddress``, as from UCS 5.7).
- ``POST /api/v1/mgmt/config/get`` ``{"data": [names]}`` (at most 20, else 4009): known names
  as ``{"Value", "Source"}``, unknown ones listed in ``InvalidParams``.
- ``POST /api/v1/mgmt/config/set`` ``{"data": {name: value}}``: the write path, for the
  forwarding the user sets on the phone (``reg.1.fwdStatus``/``fwdContact``, ``reg.1.fwd.busy.*``,
  ``reg.1.fwd.noanswer.*``); anything else is 4000. Poly documents no parameter holding the DND
  state, so DND cannot be set here (``dnd_feature`` false in the state turns the feature off).
- Every answer is the envelope ``{"Status": "2000", "data": ...}``; while the admin password is
  the factory 456 the API answers 4010 "Default Password Not Allowed". ``Date`` is the phone's
  clock. Unknown paths and methods: 404. Sources: tests/unit/vendors/data/poly/SOURCES.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lab.personalities import Phone, Request, Response, dated
from lab.personalities.auth import basic_challenge, basic_ok

FACTORY_PASSWORD = "456"  # ovh-guides.md §4.2 (IP5000: Polycom / 456)
REALM = "Polycom"  # assumed: no source shows the realm
MAX_PARAMS = 20
TRANSPORT = {"udp": "UDPOnly", "tcp": "TCPOnly", "tls": "TLS"}
FORWARD = {  # forwarding kind -> (status parameter, contact parameter)
    "always": ("reg.1.fwdStatus", "reg.1.fwdContact"),
    "busy": ("reg.1.fwd.busy.status", "reg.1.fwd.busy.contact"),
    "noanswer": ("reg.1.fwd.noanswer.status", "reg.1.fwd.noanswer.contact"),
}


def _handle(req: Request, phone: Phone) -> Response:
    route = ROUTES.get((req.method, req.path))
    if route is None:
        return Response.not_found()
    admin = phone.state.get("admin") or {}
    user = str(admin.get("username", "Polycom"))
    password = str(admin.get("password", FACTORY_PASSWORD))
    if not basic_ok(req, user, password):
        return basic_challenge(REALM)
    if password == FACTORY_PASSWORD:
        return _envelope("4010")
    return route(req, phone)


handle = dated(_handle)


def _envelope(status: str, data: Any = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"Status": status}
    if data is not None:
        body["data"] = data
    return Response.json({**body, **extra})


def _device_info(req: Request, phone: Phone) -> Response:
    s = phone.state
    return _envelope(
        "2000",
        {
            "ModelNumber": s.get("model", "VVX 411"),
            "FirmwareRelease": s.get("firmware", ""),
            "DeviceType": "hardwareEndpoint",
            "DeviceVendor": "Polycom",
            "MACAddress": str(s.get("mac", "")).replace(":", "").lower(),
            "UpTimeSinceLastReboot": "0 Day 2:14:07",
            "IPV4Address": s.get("ip", ""),
            "IPV6Address": "::",
            "AttachedHardware": {"EM": []},
        },
    )


def _network_info(req: Request, phone: Phone) -> Response:
    s = phone.state
    ip = str(s.get("ip", ""))
    url = str(s.get("provisioning_url", ""))
    scheme = url.partition("://")[0].upper() if "://" in url else "FTP"
    return _envelope(
        "2000",
        {
            "DHCP": "enabled",
            "DHCPServer": s.get("gateway", ""),
            "IPV4Address": ip,
            "IPV6Address": "::",
            "SubnetMask": "255.255.255.0",
            "DefaultGateway": s.get("gateway", ""),
            "DNSServer": s.get("gateway", ""),
            "AlternateDNSServer": "",
            "DNSDomain": "",
            "SNTPAddress": "",
            "LANPortStatus": "active",
            "LANSpeed": "100Mbps",
            "VLANID": "",
            "ProvServerAddress": url,
            "ProvServerType": scheme,
            "ProvServerUser": "",
            "UpgradeServer": "",
            "ZTPStatus": "disabled",
        },
    )


def _lines(version: int) -> Callable[[Request, Phone], Response]:
    def answer(req: Request, phone: Phone) -> Response:
        s = phone.state
        registered = bool(phone.registration().get("registered"))
        address = f"{s.get('line', '')}@{s.get('registrar', '')}"
        line = {
            "LineNumber": "1",
            "RegistrationStatus": "registered" if registered else "unregistered",
            "LineType": "private",
            "Protocol": "SIP",
            "Label": str(s.get("line", "")),
            "UserID": str(s.get("line", "")),
            "ProxyAddress": str(s.get("registrar", "")),
            "Port": "5060",
        }
        line["SIPAddress" if version == 1 else "Username"] = address
        return _envelope("2000", [line])

    return answer


def parameters(phone: Phone) -> dict[str, tuple[str, str]]:
    """The phone's configuration as config/get tells it: {name: (value, source)}."""
    s = phone.state
    proxy = str(s.get("outbound_proxy") or "")
    host, sep, port = proxy.rpartition(":")
    if not sep or not port.isdigit():
        host, port = proxy, "0"
    cfg = "config"
    values = {
        "reg.1.address": (str(s.get("line", "")), cfg),
        "reg.1.server.1.address": (str(s.get("registrar", "")), cfg),
        "reg.1.server.1.port": ("5060", cfg),
        "reg.1.server.1.transport": (TRANSPORT.get(str(s.get("transport")), "DNSnaptr"), cfg),
        "reg.1.server.1.expires": (str(s.get("expires", 3600)), cfg),
        "voIpProt.server.1.address": ("", "default"),
        "voIpProt.server.1.transport": ("DNSnaptr", "default"),
        "voIpProt.server.1.expires": ("3600", "default"),
        "reg.1.outboundProxy.address": (host, cfg if host else "default"),
        "reg.1.outboundProxy.port": (port, cfg if host else "default"),
        "voIpProt.SIP.outboundProxy.address": ("", "default"),
        "voIpProt.SIP.outboundProxy.port": ("0", "default"),
        "feature.doNotDisturb.enable": ("1" if s.get("dnd_feature", True) else "0", cfg),
        "call.donotdisturb.perReg": ("0", "default"),
        "divert.1.contact": ("", "default"),
        "divert.fwd.1.enabled": ("1", "default"),
        "divert.busy.1.enabled": ("1", "default"),
        "divert.busy.1.contact": ("", "default"),
        "divert.noanswer.1.enabled": ("1", "default"),
        "divert.noanswer.1.contact": ("", "default"),
        "divert.dnd.1.enabled": ("0", "default"),
        "device.prov.serverName": (str(s.get("provisioning_url", "")), cfg),
    }
    forward = s.get("forward") or {}
    for kind, (status, contact) in FORWARD.items():
        target = str(forward.get(kind) or "")
        source = "local" if target else "default"
        values[status] = ("1" if target else "0", source)
        values[contact] = (target, source)
    return values


def _request_data(req: Request) -> Any:
    try:
        return json.loads(req.body).get("data")
    except (ValueError, AttributeError, RecursionError):
        return None


def _config_get(req: Request, phone: Phone) -> Response:
    names = _request_data(req)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        return _envelope("4000")
    if len(names) > MAX_PARAMS:
        return _envelope("4009")
    known = parameters(phone)
    data = {n: {"Value": known[n][0], "Source": known[n][1]} for n in names if n in known}
    invalid = [n for n in names if n not in known]
    return _envelope("2000", data, **({"InvalidParams": invalid} if invalid else {}))


def _config_set(req: Request, phone: Phone) -> Response:
    data = _request_data(req)
    writable = {name for pair in FORWARD.values() for name in pair}
    if not isinstance(data, dict) or not data or not set(data) <= writable:
        return _envelope("4000")
    if not all(isinstance(v, str) for v in data.values()):
        return _envelope("4000")
    forward = dict(phone.state.get("forward") or {})
    for kind, (status, contact) in FORWARD.items():
        if status not in data and contact not in data:
            continue
        current = str(forward.get(kind) or "")
        on = data.get(status, "1" if current else "0")
        if on not in ("0", "1"):
            return _envelope("4000")
        target = data.get(contact, current).strip()
        forward[kind] = target if on == "1" else ""
    phone.state["forward"] = forward
    phone.save()
    return _envelope("2000")


ROUTES = {
    ("GET", "/api/v1/mgmt/device/info"): _device_info,
    ("GET", "/api/v1/mgmt/network/info"): _network_info,
    ("GET", "/api/v1/mgmt/lineInfo"): _lines(1),
    ("GET", "/api/v2/mgmt/lineInfo"): _lines(2),
    ("POST", "/api/v1/mgmt/config/get"): _config_get,
    ("POST", "/api/v1/mgmt/config/set"): _config_set,
}
