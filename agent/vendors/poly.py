"""Poly / Polycom VVX, SoundPoint IP and SoundStation IP5000 on UC Software >= 5.4, through the
REST API Poly documents ("Poly UC Software REST API Reference Manual"; off unless
``apps.restapi.enabled=1``; HTTP Basic, Digest on newer firmware: the session answers either):

- ``GET /api/v1/mgmt/lineInfo`` (``/api/v2/mgmt/lineInfo`` when v1 is gone): line 1's
  ``RegistrationStatus`` "registered" / "unregistered" -> sip.registered.
- ``GET /api/v1/mgmt/network/info``: ``IPV4Address`` -> phone.ip; ``ProvServerAddress`` and
  ``ProvServerType`` -> phone.provisioning_url.
- ``POST /api/v1/mgmt/config/get`` ``{"data": [names]}`` (at most 20 names a request) ->
  ``{"data": {name: {"Value": ..., "Source": ...}}}`` for the UC Software parameters:
  ``reg.1.server.1.*`` over ``voIpProt.server.1.*`` (transport, expires),
  ``reg.1.outboundProxy.*`` over ``voIpProt.SIP.outboundProxy.*``, ``feature.doNotDisturb.enable``,
  ``divert.*`` (provisioned diversion), and, asked apart, the forwarding the user sets on the
  phone (``reg.1.fwdStatus``..., names not found in a searchable guide: SOURCES.md).
- Every answer is the envelope ``{"Status": "2000", "data": ...}``; 4002 "Line not
  registered" and 4010 "Default Password Not Allowed" (REST refused while the admin password
  is the factory 456) are handled. The web server's ``Date`` header: the phone's clock.

Left unknown: sip.last_status / sip.last_reason (no REST answer carries the REGISTER's SIP
code); phone.dnd while the DND feature is enabled (the parameters say whether DND can be used,
not whether it is on); forwarding the parameters leave open.

Sources: tests/unit/vendors/data/poly/SOURCES.md (Poly REST API reference 6.4.0; UC Software
admin guides; rdbahm/Posh-UCS UCS/UcsRest.psm1 and UcsRestUtil.psm1; rknightion/polylens2otel
internal/phoneclient; TPx-CPE-Engineering/itest-automation d_polycom/poly.py).
"""

from __future__ import annotations

import re
from typing import Any

from agent.net.http import HttpError, LockedOut, Reply, Session
from agent.vendors.base import Context, clock_skew, whole_number

LINE_INFO = ("/api/v1/mgmt/lineInfo", "/api/v2/mgmt/lineInfo")
NETWORK_INFO = "/api/v1/mgmt/network/info"
CONFIG_GET = "/api/v1/mgmt/config/get"
OK = "2000"
MAX_PARAMS = 20  # config/get takes at most 20 names a request (Posh-UCS Get-UcsRestParameter)
API_CODES = {
    "4000": "invalid input parameters",
    "4001": "device busy",
    "4002": "line not registered",
    "4003": "operation not allowed",
    "4004": "operation not supported",
    "4009": "input size limit exceeded",
    "4010": "default password not allowed",
    "5000": "failed to process request",
}
DOCUMENTED = (
    "reg.1.server.1.address",
    "reg.1.server.1.transport",
    "reg.1.server.1.expires",
    "voIpProt.server.1.address",
    "voIpProt.server.1.transport",
    "voIpProt.server.1.expires",
    "reg.1.outboundProxy.address",
    "reg.1.outboundProxy.port",
    "voIpProt.SIP.outboundProxy.address",
    "voIpProt.SIP.outboundProxy.port",
    "feature.doNotDisturb.enable",
    "divert.1.contact",
    "divert.fwd.1.enabled",
    "divert.busy.1.enabled",
    "divert.busy.1.contact",
    "divert.noanswer.1.enabled",
    "divert.noanswer.1.contact",
)
# Asked in a request of their own: a firmware without them must not spoil the others.
USER_FORWARD = (
    "reg.1.fwdStatus",
    "reg.1.fwdContact",
    "reg.1.fwd.busy.status",
    "reg.1.fwd.busy.contact",
    "reg.1.fwd.noanswer.status",
    "reg.1.fwd.noanswer.contact",
)
TRANSPORTS = {"udponly": "udp", "tcponly": "tcp", "tls": "tls"}  # DNSnaptr, TCPpreferred: unknown
PROV_SCHEMES = ("ftp", "tftp", "http", "https", "ftps")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_USERINFO = re.compile(r"^([a-z]+://)?[^/@]*@", re.IGNORECASE)


class Poly:
    vendor = "poly"

    async def read(self, ctx: Context) -> dict[str, Any]:
        http = ctx.http
        reply = await http.get(LINE_INFO[0])
        if reply.status == 404:
            reply = await http.get(LINE_INFO[1])
        if reply.status == 404:
            raise HttpError(f"{reply.url}: HTTP 404 (REST API off: apps.restapi.enabled=0)")
        out: dict[str, Any] = {}
        why: list[str] = []  # what could not be read, said when nothing could
        phone_time = reply.date()
        if phone_time is not None:
            out["phone.clock_skew_s"] = clock_skew(phone_time, ctx.now)

        async def lines() -> dict[str, Any]:
            return parse_lines(*envelope(reply))

        async def network() -> dict[str, Any]:
            return parse_network(*envelope(await http.get(NETWORK_INFO)))

        async def config() -> dict[str, Any]:
            values = await config_get(http, DOCUMENTED)
            values.update(await config_get(http, USER_FORWARD, tolerant=True))
            return parse_config(values)

        for step in (lines, network, config):
            try:
                out.update(await step())
            except (LockedOut, Refused):
                raise
            except HttpError as e:
                why.append(str(e))
        if len(out) <= ("phone.clock_skew_s" in out):
            raise HttpError(f"{http.ip}: nothing readable ({'; '.join(why) or 'empty answers'})")
        return out


class Refused(HttpError):
    """The phone refuses the REST API to these logins (wrong ones, or the factory password)."""


def envelope(reply: Reply) -> tuple[str, Any]:
    """The answer's return code and data; HttpError for a refusal or a non-envelope answer."""
    if reply.status in (423, 429):
        raise LockedOut(f"{reply.url}: the phone refuses logins for now (HTTP {reply.status})")
    try:
        body = reply.json()
    except RecursionError:
        raise HttpError(f"{reply.url}: malformed JSON (nested too deep)") from None
    except HttpError:
        if reply.status in (401, 403):
            raise Refused(f"{reply.url}: HTTP {reply.status} (logins refused)") from None
        if reply.status != 200:
            raise HttpError(f"{reply.url}: HTTP {reply.status}") from None
        raise
    code = str(body.get("Status", "")).strip() if isinstance(body, dict) else ""
    if code == "4010":
        raise Refused(
            f"{reply.url}: 4010 default password not allowed (the phone refuses its REST API"
            " while the admin password is the factory one)"
        )
    if reply.status in (401, 403):
        raise Refused(f"{reply.url}: HTTP {reply.status} (logins refused)")
    if not isinstance(body, dict):
        raise HttpError(f"{reply.url}: expected the REST envelope, got {type(body).__name__}")
    if reply.status != 200 and code not in API_CODES:
        raise HttpError(f"{reply.url}: HTTP {reply.status}")
    return code, body.get("data")


def parse_lines(code: str, data: Any) -> dict[str, Any]:
    """Line 1's registration from lineInfo (v1 or v2: both carry RegistrationStatus)."""
    if code == "4002":
        return {"sip.registered": False}
    if code != OK or not isinstance(data, list):
        return {}
    lines = [d for d in data if isinstance(d, dict)]
    first = next((d for d in lines if str(d.get("LineNumber", "")).strip() == "1"), None)
    line = first or (lines[0] if lines else {})
    state = str(line.get("RegistrationStatus", "")).strip().lower()
    return (
        {"sip.registered": state == "registered"} if state in ("registered", "unregistered") else {}
    )


def provisioning_url(address: str, kind: str) -> str:
    """ProvServerAddress as a URL (scheme from ProvServerType when it has none), no login."""
    address, kind = address.strip(), kind.strip().lower()
    if address and "://" not in address and kind in PROV_SCHEMES:
        address = f"{kind}://{address}"
    return _USERINFO.sub(r"\1", address)


def parse_network(code: str, data: Any) -> dict[str, Any]:
    if code != OK or not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    ip = data.get("IPV4Address")
    if isinstance(ip, str) and _IPV4.match(ip.strip()):
        out["phone.ip"] = ip.strip()
    address = data.get("ProvServerAddress")
    if isinstance(address, str):
        out["phone.provisioning_url"] = provisioning_url(
            address, str(data.get("ProvServerType", ""))
        )
    return out


async def config_get(
    http: Session, names: tuple[str, ...], tolerant: bool = False
) -> dict[str, str]:
    """{name: value} for the names the phone knows (unknown ones come back in InvalidParams)."""
    reply = await http.request("POST", CONFIG_GET, json={"data": list(names)})
    try:
        code, data = envelope(reply)
    except (LockedOut, Refused):
        raise
    except HttpError:
        if tolerant:
            return {}
        raise
    if code != OK or not isinstance(data, dict):
        return {}
    values: dict[str, str] = {}
    for name in names:
        item = data.get(name)
        value = item.get("Value") if isinstance(item, dict) else None
        if isinstance(value, str | int) and not isinstance(value, bool):
            values[name] = str(value).strip()
    return values


def _on(v: dict[str, str], flag: str, contact: str) -> bool | None:
    """A diversion is on when its flag is 1 and it has a contact (its own or divert.1.contact)."""
    if v.get(flag) not in ("0", "1"):
        return None
    return v[flag] == "1" and bool(v.get(contact) or v.get("divert.1.contact"))


def parse_config(v: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # reg.1.server.1.* override voIpProt.server.1.* when the line has its own server.
    server = "reg.1.server.1." if v.get("reg.1.server.1.address") else "voIpProt.server.1."
    transport = TRANSPORTS.get(v.get(server + "transport", "").lower())
    if transport:
        out["sip.transport"] = transport
    expires = whole_number(v.get(server + "expires"))
    if expires:
        out["sip.register_expires_s"] = expires
    line, common = v.get("reg.1.outboundProxy.address"), v.get("voIpProt.SIP.outboundProxy.address")
    for prefix, host in (("reg.1", line), ("voIpProt.SIP", common if line == "" else None)):
        if host:
            port = v.get(f"{prefix}.outboundProxy.port", "")
            out["phone.outbound_proxy"] = f"{host}:{port}" if port not in ("", "0") else host
            break
    else:
        if line == "" and common == "":
            out["phone.outbound_proxy"] = ""
    if v.get("feature.doNotDisturb.enable") == "0":
        out["phone.dnd"] = False  # the feature is off: DND cannot be on
    if v.get("divert.fwd.1.enabled") == "0":
        out["phone.forward.always"] = False  # the user cannot turn forward-all on
    elif v.get("reg.1.fwdStatus") in ("0", "1"):
        target = v.get("reg.1.fwdContact") or v.get("divert.1.contact", "")
        out["phone.forward.always"] = v["reg.1.fwdStatus"] == "1" and bool(target)
        out["phone.forward.always_target"] = target
    for kind in ("busy", "noanswer"):
        provisioned = _on(v, f"divert.{kind}.1.enabled", f"divert.{kind}.1.contact")
        user = _on(v, f"reg.1.fwd.{kind}.status", f"reg.1.fwd.{kind}.contact")
        if provisioned or user:
            out[f"phone.forward.{kind}"] = True
        elif provisioned is False and user is False:
            out[f"phone.forward.{kind}"] = False
    return out


ADAPTER = Poly()
