"""Grandstream HT80x ATAs (the HT802 of OVHcloud's Plug & Phone) and GXP desk phones:
the web UI's CGI API and, for what it cannot tell, the HT8xx SNMP MIB.

- ``POST /cgi-bin/dologin`` (``username``, ``password``; newer firmware first gives a token at
  ``POST /cgi-bin/access`` and wants ``sha256(password + token)``): JSON ``{"response":
  "success", "body": {"sid": ...}}``, ``{"response": "error", "body": "wrong4"}`` or ``"locked"``.
- ``GET /cgi-bin/api.values.get?request=K1:K2&sid=``: ``{"response": "success", "body": {K1:
  ...}}``, each asked key echoed ("" when unknown). Account 1: P48 outbound proxy, P130
  transport (0 UDP, 1 TCP, 2 TLS), P32 register expiration (minutes), P237 config server
  (host/path) with P212 its protocol (0 TFTP, 1 HTTP, 2 HTTPS, 3 FTP, 4 FTPS, or the names);
  runtime ``PAccountRegistered1`` (1/0) and ``Pipv4``. The ``Date`` header: the phone's clock.
- SNMP v2c GS-HT8XX-MIB, port 1 (``.1.3.6.1.4.1.42397.1.2.2.{2 reg, 3 dnd, 4 forward, 5 busy,
  6 delayed}.1.0``): DND and forwarding (star-code states on an HT80x, held by no P-value), and
  registration when the web API did not tell it; asked only of a phone seen on SNMP.

Left unknown: the last REGISTER answer's code and reason (neither face shows them), DND and
forwarding without the HT8xx MIB (GXP desk phones), any value a face leaves out or empty.

Sources: tests/unit/vendors/data/grandstream/SOURCES.md (Grandstream's HT80x and GXP16xx
configuration templates in wazo-platform/wazo-provd-plugins; IssabelFoundation/endpointconfig2
vendor/Grandstream.py; eklundjon/ha-grandstream-phone captures; LibreNMS GS-HT8XX-MIB and
tests/snmpsim/grandstream-ht_ht802.snmprec).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from agent.net.http import HttpError, LockedOut, Reply, Session
from agent.vendors.base import Context, clock_skew, whole_number

ACCESS, LOGIN, VALUES = "/cgi-bin/access", "/cgi-bin/dologin", "/cgi-bin/api.values.get"
KEYS = ("P47", "P48", "P130", "P32", "P237", "P212", "PAccountRegistered1", "Pipv4")
TRANSPORTS = {"0": "udp", "1": "tcp", "2": "tls"}
SCHEMES = {"0": "tftp", "1": "http", "2": "https", "3": "ftp", "4": "ftps"}
YES, NO = {"1", "true", "yes", "registered"}, {"0", "false", "no", "not registered"}

_MIB = "1.3.6.1.4.1.42397.1.2.2"  # GS-HT8XX-MIB Ports; instance <port>.0, port 1 = account 1
OIDS = {
    "reg": f"{_MIB}.2.1.0",
    "dnd": f"{_MIB}.3.1.0",
    "forward": f"{_MIB}.4.1.0",
    "busy": f"{_MIB}.5.1.0",
    "delayed": f"{_MIB}.6.1.0",
}
SNMP_KEYS = (
    "sip.registered",
    "phone.dnd",
    "phone.forward.always",
    "phone.forward.busy",
    "phone.forward.noanswer",
)


class SnmpGetter(Protocol):
    async def get(self, ip: str, community: str, oids: list[str]) -> dict[str, str] | None: ...

    def close(self) -> None: ...


def _snmp_client(timeout: float) -> SnmpGetter:
    from agent.net.snmp import SnmpClient

    return SnmpClient(timeout=timeout)


class Grandstream:
    vendor = "grandstream"

    def __init__(self, snmp: Callable[[float], SnmpGetter] = _snmp_client) -> None:
        self.snmp = snmp  # tests give a stand-in: no SNMP agent, no network

    async def read(self, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {}
        why: list[str] = []  # what could not be read, said when nothing could
        try:
            out.update(await read_http(ctx.http, ctx.now, why))
        except LockedOut:
            raise
        except HttpError as e:
            why.append(str(e))
        if any(k not in out for k in SNMP_KEYS):
            if "snmp" in ctx.device.found_by:
                got = await self._read_snmp(ctx)
                for key, value in got.items():
                    out.setdefault(key, value)
                if not got:
                    why.append("SNMP: no GS-HT8XX-MIB answer")
            else:
                why.append("SNMP: the phone did not answer SNMP during discovery")
        if len(out) <= ("phone.clock_skew_s" in out):
            raise HttpError(f"{ctx.http.ip}: nothing readable ({'; '.join(why)})")
        return out

    async def _read_snmp(self, ctx: Context) -> dict[str, Any]:
        try:
            client = self.snmp(ctx.config.timeout)
        except Exception:  # pysnmp missing or broken: SNMP is only a fallback
            return {}
        try:
            for community in ctx.snmp_communities()[:3]:  # secrets: never logged
                try:
                    got = await client.get(ctx.device.ip, community, list(OIDS.values()))
                except Exception:  # a transport error is no answer
                    got = None
                values = parse_snmp(got or {})
                if values:
                    return values
            return {}
        finally:
            with contextlib.suppress(Exception):
                client.close()


# ------------------------------------------------------------------ web API


def _json(reply: Reply) -> dict[str, Any]:
    """The answer as a JSON object; :class:`HttpError` when it is not one."""
    try:
        data = reply.json()
    except RecursionError:
        raise HttpError(f"{reply.url}: malformed JSON (too deeply nested)") from None
    if not isinstance(data, dict):
        raise HttpError(f"{reply.url}: expected a JSON object")
    return data


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _token(reply: Reply) -> str | None:
    """The challenge token of ``/cgi-bin/access`` (newer firmware), else None (plain login)."""
    try:
        token = _json(reply).get("body") if reply.status == 200 else None
    except HttpError:
        return None
    return token if isinstance(token, str) and token else None


async def login(http: Session, headers: dict[str, str]) -> tuple[str | None, Reply | None]:
    """A web login's session id (within the session's login budget), and the last answer."""
    last: Reply | None = None
    for cred in [http.working] if http.working else list(http.logins):
        if cred is None or http.failed_logins >= http.max_logins:
            break
        access = await http.request(
            "POST", ACCESS, data={"access": _sha256(cred.username)}, headers=headers
        )
        if access.status in (401, 403):
            return None, access  # the session spent its budget on this answer
        token = _token(access)
        password = _sha256(cred.password + token) if token else cred.password
        form = {"username": cred.username, "password": password}
        last = await http.request("POST", LOGIN, data=form, headers=headers)
        if last.status in (423, 429):
            raise LockedOut(f"{http.ip}: the phone refuses logins for now (locked)")
        if last.status != 200:
            return None, last  # 404: not this web API; 401/403: budget spent by the session
        answer = _json(last)
        body = answer.get("body")
        sid = body.get("sid") if isinstance(body, dict) else None
        if answer.get("response") == "success" and isinstance(sid, str) and sid:
            http.working = cred
            return sid, last
        if "lock" in str(body).lower():
            raise LockedOut(f"{http.ip}: the phone refuses logins for now (locked)")
        http.failed_logins += 1
    return None, last


async def read_http(http: Session, now: float, why: list[str]) -> dict[str, Any]:
    """Clock, registration and account 1's settings from the web API."""
    out: dict[str, Any] = {}
    headers = {"Referer": f"{http.base()}/", "Origin": http.base()}  # newer firmware wants them
    sid, reply = await login(http, headers)
    when = reply.date() if reply is not None else None
    if when is not None:
        out["phone.clock_skew_s"] = clock_skew(when, now)
    if sid is None:
        status = f"HTTP {reply.status}" if reply is not None else "no login to try"
        why.append(f"web API: no login ({status}; refused, or not this web API)")
        return out
    params = {"request": ":".join(KEYS), "sid": sid}
    reply = await http.request("GET", VALUES, params=params, headers=headers)
    if reply.status != 200:
        why.append(f"{VALUES}: HTTP {reply.status}")
        return out
    answer = _json(reply)
    body = answer.get("body")
    if answer.get("response") != "success" or not isinstance(body, dict):
        why.append(f"{VALUES}: {str(body)[:60]!r}")
        return out
    out.update(parse_values(body))
    return out


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip()


def _flag(value: str | None) -> bool | None:
    value = (value or "").lower()
    return True if value in YES else False if value in NO else None


def parse_values(body: dict[str, Any]) -> dict[str, Any]:
    """Catalogue keys from an ``api.values.get`` body (unknown keys come back "": unknown)."""
    out: dict[str, Any] = {}
    registered = _flag(_text(body, "PAccountRegistered1"))
    if registered is not None:
        out["sip.registered"] = registered
    ip = _text(body, "Pipv4")
    if ip:
        out["phone.ip"] = ip
    transport, expires = _text(body, "P130"), _text(body, "P32")
    if not transport and not expires:
        return out  # mandatory numbers left empty: the settings were not really read
    if transport in TRANSPORTS:
        out["sip.transport"] = TRANSPORTS[transport]
    minutes = whole_number(expires)
    if minutes is not None:
        out["sip.register_expires_s"] = minutes * 60  # P32 is in minutes
    proxy = _text(body, "P48")
    if proxy is not None:
        out["phone.outbound_proxy"] = proxy
    path, method = _text(body, "P237"), (_text(body, "P212") or "").lower()
    if path is not None:
        scheme = SCHEMES.get(method) or (method if method in SCHEMES.values() else "")
        has_scheme = "://" in path or not path or not scheme
        out["phone.provisioning_url"] = path if has_scheme else f"{scheme}://{path}"
    return out


# ------------------------------------------------------------------ SNMP (GS-HT8XX-MIB)


def parse_snmp(got: dict[str, str]) -> dict[str, Any]:
    """Catalogue keys from the MIB's port-1 values ({oid: text}, as SnmpClient answers)."""
    values = {k.lstrip("."): v for k, v in got.items() if isinstance(v, str)}
    mib = {name: values.get(oid) for name, oid in OIDS.items()}
    out: dict[str, Any] = {}
    registered = _flag((mib["reg"] or "").strip())
    if registered is not None:
        out["sip.registered"] = registered
    if (mib["dnd"] or "").strip() in ("0", "1"):
        out["phone.dnd"] = mib["dnd"].strip() == "1"
    for name, key in (("forward", "phone.forward.always"), ("busy", "phone.forward.busy")):
        target = mib[name]
        if target is not None:  # "Forward calls to": empty = no forwarding
            out[key] = bool(target.strip())
            if name == "forward":
                out["phone.forward.always_target"] = target.strip()
    if mib["delayed"] is not None:
        out["phone.forward.noanswer"] = bool(mib["delayed"].strip())
    return out


ADAPTER = Grandstream()
