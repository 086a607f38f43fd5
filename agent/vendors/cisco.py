"""Cisco SPA5xx desk phones, SPA112/SPA122 ATAs, CP-78xx/88xx (3PCC/MPP): the phone's own
status and configuration, read from the two XML documents its web server gives the admin.

Interfaces (HTTP GET):
- ``/admin/status.xml&xuser=<u>&xpassword=<p>``: the ``<flat-status>`` document (the form
  davejcameron/pyciscospa ``pyciscospa/client.py`` and the Home Assistant ``ciscospa`` sensor
  use; sample in its ``tests/fixtures/status_registered.xml``): ``Registration_State`` once per
  line in line order (``Registration_State_1_`` accepted too), ``Current_Time``
  (``M/D/YYYY HH:MM:SS``, local time), the phone's IP (``Current_IP`` or
  ``router-status/WAN_Interface/IP``).
- ``/admin/spacfg.xml`` (SPA5xx and MPP phones: sysnux/astportal ``astportal2/lib/cisco.py``,
  Paulemann/mpp-fb-toolbox ``README.md``), else ``/admin/config.xml`` (ATAs: Cisco ATA 191/192
  MPP admin guide, "Troubleshoot Your Fax"): the ``<flat-profile>`` configuration, whose
  element names are the provisioning parameters (SPA/MPP provisioning guides):
  ``Profile_Rule``, ``Use_Outbound_Proxy_1_``/``Outbound_Proxy_1_``, ``SIP_Transport_1_``,
  ``Register_Expires_1_``, ``DND_Setting``, ``Cfwd_All[_Dest]``, ``Cfwd_Busy[_Dest]``,
  ``Cfwd_No_Ans_Dest``/``Cfwd_No_Answer[_Dest]`` (ATAs add the line suffix ``_1_``),
  ``Time_Zone`` and ``Daylight_Saving_Time_*`` (to turn the local clock into a skew).

Writes and restart (the remedies, after consent), as Cisco's SPA provisioning guide documents
them: ``/admin/resync?<profile URL>`` makes the phone fetch a ``<flat-profile>`` and apply the
parameters it holds, and only those (here ``DND_Setting``, ``Cfwd_All_Dest``; ATAs with the
``_1_`` line suffix); phonediag serves that profile itself for a few seconds, to this phone
only (agent/net/serve.py). ``/admin/reboot`` restarts the phone.

The login goes where Cisco documents it, appended to the path with ``&`` (never ``?``); phones
that prompt for HTTP authentication instead get it from the session on 401, within its budget.
The credentials are cut out of the session log and of every error message.

The status gives no SIP answer code for a failed registration ("Failed" only), so
``sip.last_status``/``sip.last_reason`` stay unknown for this family.
"""

from __future__ import annotations

import asyncio
import calendar
import re
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from agent.config import Credential
from agent.net.http import HttpError, LockedOut, Reply
from agent.net.serve import OneFile
from agent.vendors.base import (
    WRITE_KEYS,
    Context,
    Refused,
    account,
    check_write,
    clock_skew,
    whole_number,
)

_CREDS = re.compile(r"&xuser=[^\s:]*")  # the login as appended to a path (values quoted)
_RULE_OPTIONS = re.compile(r"^\s*\[[^\]]*\]\s*")  # [--uid u --pwd p --key k] before a URL
_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_ZONE = re.compile(r"^(?:GMT|UTC)\s*(?:([+-])(\d{1,2})(?::?(\d{2}))?)?$", re.I)
_ATA = re.compile(r"^(SPA1\d\d|SPA2\d\d|ATA)", re.I)
_SAVE = re.compile(r"save=([+-]?)(\d{1,2})(?::(\d{2}))?")

Doc = dict[str, list[str]]


def _scrub(text: str) -> str:
    return _CREDS.sub("", text)


def _flatten(root: Any) -> Doc:
    """Element name (namespace dropped) -> its texts in document order; nested leaves are
    also filed under ``parent/name``. Depth first with a stack of its own, not recursion:
    a phone may nest elements deeper than Python recurses (tests/fuzz)."""
    out: Doc = {}
    stack: list[tuple[Any, str]] = [(iter(root), "")]  # (children left, their parent's tag)
    while stack:
        children, parent = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        if not isinstance(child.tag, str):
            continue
        tag = child.tag.rpartition("}")[2]
        if len(child):
            stack.append((iter(child), tag))
            continue
        text = (child.text or "").strip()
        out.setdefault(tag, []).append(text)
        if parent:
            out.setdefault(f"{parent}/{tag}", []).append(text)
    return out


def _first(doc: Doc, *names: str) -> str | None:
    for name in names:
        for n in (name, f"{name}_1_", f"{name}_1"):
            if doc.get(n):
                return doc[n][0]
    return None


_BOOL = {"yes": True, "true": True, "on": True, "1": True}
_BOOL |= {"no": False, "false": False, "off": False, "0": False}


def _yes(value: str | None) -> bool | None:
    return _BOOL.get((value or "").strip().lower())


class Cisco:
    vendor = "cisco"

    async def read(self, ctx: Context) -> dict[str, Any]:
        try:
            status = await self._document(ctx, "status.xml")
            try:
                config = await self._document(ctx, "spacfg.xml")
                if config is None:
                    config = await self._document(ctx, "config.xml")
            except LockedOut:
                raise
            except HttpError:
                if status is None:
                    raise
                config = None  # the status alone still tells; its keys stay
        except LockedOut:
            raise
        except HttpError as e:
            raise HttpError(_scrub(str(e))) from None
        finally:
            ctx.http.log[:] = [_scrub(line) for line in ctx.http.log]
        if status is None and config is None:
            raise HttpError(f"{ctx.http.ip}: no Cisco status.xml nor spacfg.xml/config.xml")
        values: dict[str, Any] = {}
        if status is not None:
            values.update(self._status(status, config or {}, ctx.now))
        if config is not None:
            values.update(self._config(config))
            if "phone.ip" not in values and _first(config, "Current_IP"):
                values["phone.ip"] = _first(config, "Current_IP")
        return values

    writable = frozenset(WRITE_KEYS)

    async def write(self, ctx: Context, values: dict[str, Any]) -> None:
        check_write(self, values)
        body = flat_profile(values, ata=bool(_ATA.match(ctx.device.model or "")))
        wait = max(ctx.http.timeout * 3, 5.0)
        async with OneFile(ctx.http.ip, body, "spa.xml") as served:
            await self._command(ctx, f"/admin/resync?{served.url}")
            got = await served.fetched(wait)
        if not got:
            raise Refused(
                f"{ctx.http.ip}: the phone did not fetch its profile from this computer"
                f" ({served.url}) within {wait:.0f} s: a firewall here may block it"
            )
        for _ in range(10):  # it applies the profile just after fetching it
            now = await self.read(ctx)
            if all(now.get(k) == v for k, v in values.items()):
                return
            await asyncio.sleep(0.3)

    async def reboot(self, ctx: Context) -> None:
        await self._command(ctx, "/admin/reboot")

    async def _command(self, ctx: Context, path: str) -> None:
        try:
            reply = await ctx.http.get(_with_login(ctx, path))
        except HttpError as e:
            raise HttpError(_scrub(str(e))) from None
        finally:
            ctx.http.log[:] = [_scrub(line) for line in ctx.http.log]
        if reply.status != 200:
            what = path.partition("?")[0]
            error = Refused if 400 <= reply.status < 500 else HttpError
            raise error(f"{ctx.http.ip}: {what}: HTTP {reply.status}")

    async def _document(self, ctx: Context, name: str) -> Doc | None:
        """One XML document, or None when the phone has no such page (404)."""
        reply = await ctx.http.get(_with_login(ctx, f"/admin/{name}"))
        if reply.status == 404:
            return None
        if reply.status in (423, 429) or (reply.status in (401, 403) and _locked(reply)):
            raise LockedOut(f"{ctx.http.ip}: the phone refuses logins for now (locked)")
        if reply.status in (401, 403):
            raise HttpError(f"{ctx.http.ip}: the phone refused the web login ({reply.status})")
        if reply.status != 200:
            raise HttpError(f"{ctx.http.ip}: /admin/{name} answered HTTP {reply.status}")
        head = reply.body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise HttpError(f"{ctx.http.ip}: /admin/{name} is a web page, not the phone's XML")
        return _flatten(reply.xml())

    def _status(self, status: Doc, config: Doc, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        state = _first(status, "Registration_State")
        if state:
            out["sip.registered"] = state.strip().lower() == "registered"
        ip = _first(status, "Current_IP", "WAN_Interface/IP")
        if ip:
            out["phone.ip"] = ip
        phone_time = _phone_epoch(_first(status, "Current_Time") or "", config, now)
        if phone_time is not None:
            out["phone.clock_skew_s"] = clock_skew(phone_time, now)
        return out

    def _config(self, cfg: Doc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        rule = _first(cfg, "Profile_Rule")
        if rule is not None:
            out["phone.provisioning_url"] = _RULE_OPTIONS.sub("", rule)  # options hold secrets
        use_proxy, proxy = _yes(_first(cfg, "Use_Outbound_Proxy")), _first(cfg, "Outbound_Proxy")
        if use_proxy is False:
            out["phone.outbound_proxy"] = ""
        elif proxy is not None:
            out["phone.outbound_proxy"] = proxy
        transport = (_first(cfg, "SIP_Transport") or "").lower()
        if transport in ("udp", "tcp", "tls"):
            out["sip.transport"] = transport
        expires = whole_number(_first(cfg, "Register_Expires"))
        if expires is not None:
            out["sip.register_expires_s"] = expires
        user = account(_first(cfg, "User_ID"), _first(cfg, "Proxy"))
        if user:
            out["sip.account"] = user
        dnd = _yes(_first(cfg, "DND_Setting"))
        if dnd is not None:
            out["phone.dnd"] = dnd
        for key, flag, dests in (
            ("always", "Cfwd_All", ("Cfwd_All_Dest",)),
            ("busy", "Cfwd_Busy", ("Cfwd_Busy_Dest",)),
            ("noanswer", "Cfwd_No_Answer", ("Cfwd_No_Ans_Dest", "Cfwd_No_Answer_Dest")),
        ):
            on, dest = _yes(_first(cfg, flag)), _first(cfg, *dests)
            if on is None and dest is None:
                continue
            on = bool(dest) if on is None else on  # SPA5xx: a destination set = forwarding
            out[f"phone.forward.{key}"] = on
            if key == "always" and on:
                out["phone.forward.always_target"] = dest or ""
        return out


def _with_login(ctx: Context, path: str) -> str:
    """``path`` with the login appended as Cisco documents it (``&xuser=…&xpassword=…``)."""
    cred: Credential | None = ctx.http.working or (ctx.http.logins or [None])[0]
    if cred is None:
        return path
    user, pwd = quote(cred.username, safe=""), quote(cred.password, safe="")
    return f"{path}&xuser={user}&xpassword={pwd}"


def flat_profile(values: dict[str, Any], ata: bool = False) -> bytes:
    """A ``<flat-profile>`` setting ``values`` (WRITE_KEYS) and nothing else."""
    line = "_1_" if ata else ""
    rows: list[tuple[str, str]] = []
    if "phone.dnd" in values:
        rows.append((f"DND_Setting{line}", "Yes" if values["phone.dnd"] else "No"))
    if "phone.forward.always" in values:
        on = values["phone.forward.always"]
        target = str(values["phone.forward.always_target"]) if on else ""
        rows.append((f"Cfwd_All_Dest{line}", target))
    body = "".join(f"<{k}>{escape(v)}</{k}>\n" if v else f"<{k} />\n" for k, v in rows)
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{head}<flat-profile>\n{body}</flat-profile>\n".encode()


def _locked(reply: Reply) -> bool:
    text = reply.body[:4096].decode("utf-8", errors="replace").lower()
    return any(w in text for w in ("locked", "verrouill", "too many"))


def _phone_epoch(text: str, config: Doc, now: float) -> float | None:
    """The phone's local clock as epoch seconds, using its own Time_Zone setting; with
    daylight saving on, the offset (zone or zone + save) nearest to ``now`` is taken."""
    m = _TIME.search(text)
    if m:
        mo, d, y, hh, mm, ss = (int(g) for g in m.groups())
    elif m := _ISO.search(text):
        y, mo, d, hh, mm, ss = (int(g) for g in m.groups())
    else:
        return None
    zone = _ZONE.match((_first(config, "Time_Zone") or "").strip())
    if zone is None or not (1 <= mo <= 12 and 1 <= d <= 31 and y >= 1):  # year 0: no date
        return None
    sign = -1 if zone.group(1) == "-" else 1
    offset = sign * (int(zone.group(2) or 0) * 3600 + int(zone.group(3) or 0) * 60)
    local = calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0))
    offsets = [offset]
    if _yes(_first(config, "Daylight_Saving_Time_Enable")):
        save = _SAVE.search(_first(config, "Daylight_Saving_Time_Rule") or "")
        shift = 3600  # the rule's default saving: one hour
        if save:
            shift = int(save.group(2)) * 3600 + int(save.group(3) or 0) * 60
            shift = -shift if save.group(1) == "-" else shift
        offsets.append(offset + shift)
    return min((local - o for o in offsets), key=lambda t: abs(t - now))


ADAPTER = Cisco()
