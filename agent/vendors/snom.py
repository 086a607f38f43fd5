"""Snom desk phones (D3xx, D7xx; firmware 8.7 and 10.x), through the phone's own web server.

Interfaces (HTTP GET, HTTP Basic or Digest with the web login, as the phone asks on 401):
- ``/settings.xml``: the phone's settings as the ``<phone-settings>`` document Snom
  documents for provisioning ("Desk Phone Configuration Files", "<phone-settings> tag",
  service.snom.com): per-identity settings carry ``idx="1"`` (a ``1`` name suffix is
  accepted too). Line 1: ``user_name``/``user_host`` (account), ``user_outbound`` (outbound
  proxy; ``;transport=udp|tcp|tls`` on it or on the registrar gives the transport, as
  Snom-provisioning templates write it), ``user_expiry`` (registration interval);
  ``dnd_mode`` (per identity since 8.7.3, global before); forwarding ``fwd_all_enabled``/
  ``fwd_all_target``, ``fwd_busy_enabled``, ``fwd_time_enabled`` (8.7.4+), else the older
  global ``redirect_event`` (none/all/busy/time) with ``redirect_number``; ``setting_server``
  (the provisioning URL).
- ``/info.htm`` (the web status page): the "Identity 1" row's registration state
  ("Registered", or "Not registered" with the SIP answer when shown) and "IP Address".
- The web server's ``Date`` header: the phone's clock.

Writes (the remedies, after consent): ``/dummy.htm?settings=save&<name>=<value>&store_settings=
save``, Snom's documented way to change a setting over HTTP (SOURCES.md), with the names
``/settings.xml`` shows for line 1: ``dnd_mode1`` (``dnd_mode`` before 8.7.3) and
``fwd_all_enabled1``/``fwd_all_target1``. The older global ``redirect_event`` forwarding
(before 8.7.4) is not written. A 200 answer is not proof: the remedy reads the state back.
Restart: ``/advanced_network.htm?reboot=Reboot`` (the web UI's button; IssabelFoundation/
endpointconfig2 ``…/vendor/Snom.py``).

Left unknown: any key whose setting or row is missing, the transport when no ``transport=``
parameter is set (the phone then picks it through DNS), the SIP code when the status page
shows none.

Sources: tests/unit/vendors/data/snom/SOURCES.md (Snom wiki setting pages; wazo-platform/
wazo-provd-plugins plugins/wazo-snom/common/templates/base.tpl; smarthomeNG/plugins snom;
IssabelFoundation/endpointconfig2 .../vendor/Snom.py).
"""

from __future__ import annotations

import contextlib
import html
import ipaddress
import re
from typing import Any
from urllib.parse import urlencode

from agent.net.http import HttpError, LockedOut, Reply, Session
from agent.vendors.base import Context, Refused, account, check_write, clock_skew, whole_number

SETTINGS = "/settings.xml"
INFO = "/info.htm"
SAVE = "/dummy.htm"
REBOOT = "/advanced_network.htm?reboot=Reboot"

_ON, _OFF = {"on", "true", "1", "yes"}, {"off", "false", "0", "no"}
_TRANSPORT = re.compile(r";\s*transport\s*=\s*(udp|tcp|tls)\b", re.IGNORECASE)
_CODE = re.compile(r"\b([3-6]\d\d)\b[\s:,-]*(.*)")
_TAG = re.compile(r"<[^<>]*>")  # linear on hostile pages
_LINE1 = re.compile(r"^(?:identity|identit[äé]t?|line|ligne)\s*1\s*:?$", re.IGNORECASE)
_IP_LABEL = re.compile(r"^ip(?:v4)?[ -]?ad+res+e?\s*:?$", re.IGNORECASE)
_NOT_REGISTERED = ("not registered", "unregistered", "failed", "error", "timeout", "nicht")
_LEGACY_EVENTS = {"none", "all", "busy", "time"}

Settings = dict[str, str]


class Snom:
    vendor = "snom"

    async def read(self, ctx: Context) -> dict[str, Any]:
        http = ctx.http
        out: dict[str, Any] = {}
        why: list[str] = []
        reply = await _get(http, SETTINGS)
        if reply.status in (401, 403):
            raise HttpError(f"{http.ip}: {SETTINGS}: HTTP {reply.status} (logins refused)")
        _clock(reply, ctx.now, out)
        if reply.status == 200:
            try:
                out.update(parse_settings(settings(reply)))
            except HttpError as e:
                why.append(str(e))
        else:
            why.append(f"{SETTINGS}: HTTP {reply.status}")
        page = await _get(http, INFO)
        _clock(page, ctx.now, out)
        if page.status == 200:
            out.update(parse_info(page.text))
        else:
            why.append(f"{INFO}: HTTP {page.status}")
        if len(out) <= ("phone.clock_skew_s" in out):
            raise HttpError(f"{http.ip}: nothing readable ({'; '.join(why) or 'no known field'})")
        return out

    writable = frozenset({"phone.dnd", "phone.forward.always", "phone.forward.always_target"})

    async def write(self, ctx: Context, values: dict[str, Any]) -> None:
        check_write(self, values)
        http = ctx.http
        reply = await _get(http, SETTINGS)  # which names this firmware uses for line 1
        if reply.status != 200:
            error = Refused if 400 <= reply.status < 500 else HttpError
            raise error(f"{http.ip}: {SETTINGS}: HTTP {reply.status}")
        query = save_query(settings(reply), values)
        answer = await _get(http, f"{SAVE}?{urlencode(query)}")
        if answer.status != 200:
            error = Refused if 400 <= answer.status < 500 else HttpError
            raise error(f"{http.ip}: {SAVE} settings=save: HTTP {answer.status}")

    async def reboot(self, ctx: Context) -> None:
        """``/advanced_network.htm?reboot=Reboot``, the web page's restart button."""
        reply = await _get(ctx.http, REBOOT)
        if reply.status != 200:
            error = Refused if 400 <= reply.status < 500 else HttpError
            raise error(f"{ctx.http.ip}: {REBOOT}: HTTP {reply.status}")


def save_query(s: Settings, values: dict[str, Any]) -> dict[str, str]:
    """The ``/dummy.htm`` query that sets ``values`` on line 1, in this firmware's names."""
    query = {"settings": "save"}
    if "phone.dnd" in values:
        name = "dnd_mode" if "dnd_mode" in s and "dnd_mode1" not in s else "dnd_mode1"
        query[name] = "on" if values["phone.dnd"] else "off"
    if "phone.forward.always" in values:
        if "fwd_all_enabled1" not in s and "fwd_all_enabled" not in s:
            raise Refused("this firmware forwards with redirect_event (before 8.7.4): not written")
        on = values["phone.forward.always"]
        query["fwd_all_enabled1"] = "on" if on else "off"
        if on:
            query["fwd_all_target1"] = str(values["phone.forward.always_target"])
    query["store_settings"] = "save"  # kept across a restart
    return query


async def _get(http: Session, path: str) -> Reply:
    """GET ``path``; a phone that asks for Digest again (the session answers a known login
    with Basic) gets the login once more through its challenge."""
    reply = await http.get(path)
    if reply.status in (423, 429):
        raise LockedOut(f"{http.ip}: the phone refuses logins for now (locked)")
    challenge = reply.headers.get("www-authenticate", "").lower()
    if reply.status == 401 and http.working is not None and challenge.startswith("digest"):
        http.working = None
        reply = await http.get(path)
    return reply


def _clock(reply: Reply, now: float, out: dict[str, Any]) -> None:
    when = reply.date()
    if "phone.clock_skew_s" not in out and when is not None:
        out["phone.clock_skew_s"] = clock_skew(when, now)


# ------------------------------------------------------------------ /settings.xml


def settings(reply: Reply) -> Settings:
    """The ``<phone-settings>`` elements as ``name`` (global) or ``name<idx>`` -> text."""
    root = reply.xml()
    if _tag(root) != "phone-settings":
        root = next((el for el in root if _tag(el) == "phone-settings"), None)
        if root is None:
            raise HttpError(f"{reply.url}: not a Snom <phone-settings> document")
    out: Settings = {}
    for el in root:
        if isinstance(el.tag, str) and not len(el):
            out.setdefault(_tag(el) + (el.get("idx") or "").strip(), (el.text or "").strip())
    return out


def _tag(el: Any) -> str:
    return str(el.tag).rpartition("}")[2]


def _line(s: Settings, name: str) -> str | None:
    """Line 1's value of ``name`` (``name1``), else the global one."""
    return s.get(f"{name}1", s.get(name))


def _flag(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    return True if v in _ON else False if v in _OFF else None


def _host(value: str) -> str:
    """``sip:host:port;params`` -> ``host:port`` (no scheme, no parameters, no brackets)."""
    v = value.strip().strip("<>").split(";", 1)[0].strip()
    return re.sub(r"^sips?:", "", v, flags=re.IGNORECASE)


def _transport(*values: str | None) -> str | None:
    for value in values:
        m = _TRANSPORT.search(value or "")
        if m:
            return m.group(1).lower()
        if (value or "").strip().lower().startswith("sips:"):
            return "tls"
    return None


def parse_settings(s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    host, proxy = _line(s, "user_host"), _line(s, "user_outbound")
    user = account(_line(s, "user_name"), _host(host or ""))
    if user:
        out["sip.account"] = user
    if proxy is not None:
        out["phone.outbound_proxy"] = _host(proxy)
    transport = _transport(proxy, host)
    if transport:
        out["sip.transport"] = transport
    expiry = whole_number(_line(s, "user_expiry"))
    if expiry is not None:
        out["sip.register_expires_s"] = expiry
    if "setting_server" in s:
        out["phone.provisioning_url"] = s["setting_server"]
    dnd = _flag(_line(s, "dnd_mode"))
    if dnd is not None:
        out["phone.dnd"] = dnd
    out.update(_forwards(s))
    return out


def _forwards(s: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    modern = {
        "phone.forward.always": _flag(_line(s, "fwd_all_enabled")),
        "phone.forward.busy": _flag(_line(s, "fwd_busy_enabled")),
        "phone.forward.noanswer": _flag(_line(s, "fwd_time_enabled")),
    }
    if any(v is not None for v in modern.values()):  # 8.7.4+: per identity, authoritative
        out.update({k: v for k, v in modern.items() if v is not None})
        target = _line(s, "fwd_all_target")
        if target is not None:
            out["phone.forward.always_target"] = target
        return out
    event = (_line(s, "redirect_event") or "").strip().lower()
    if event in _LEGACY_EVENTS:  # older firmware: one event for the phone
        out["phone.forward.always"] = event == "all"
        out["phone.forward.busy"] = event == "busy"
        out["phone.forward.noanswer"] = event == "time"
        target = _line(s, "redirect_number")
        if target is not None:
            out["phone.forward.always_target"] = target
    return out


# ------------------------------------------------------------------ /info.htm


def rows(page: str) -> list[list[str]]:
    """The page's table rows as lists of cell texts (linear: split, no backtracking)."""
    out = []
    for chunk in re.split(r"<tr\b", page, flags=re.IGNORECASE)[1:]:
        chunk = re.split(r"</tr\s*>|</table", chunk, maxsplit=1, flags=re.IGNORECASE)[0]
        texts = _TAG.sub("\0", "<tr" + chunk).split("\0")
        out.append([c for c in (" ".join(html.unescape(t).split()) for t in texts) if c])
    return out


def parse_info(page: str) -> dict[str, Any]:
    """Line 1's registration state and the phone's own address from the status page."""
    out: dict[str, Any] = {}
    for cells in rows(page):
        if not cells:
            continue
        if _IP_LABEL.match(cells[0]) and len(cells) > 1:
            with contextlib.suppress(ValueError):
                out.setdefault("phone.ip", str(ipaddress.IPv4Address(cells[1])))
        elif _LINE1.match(cells[0]) and "sip.registered" not in out:
            out.update(_registration(cells[1:]))
    return out


def _registration(cells: list[str]) -> dict[str, Any]:
    for cell in reversed(cells):  # the state is the row's last words
        text = cell.lower()
        if text.startswith(("sip:", "sips:")):
            continue
        if text in ("registered", "ok") or text.startswith("registered"):
            return {"sip.registered": True}
        if any(w in text for w in _NOT_REGISTERED):
            out: dict[str, Any] = {"sip.registered": False}
            m = _CODE.search(cell)
            if m:
                out["sip.last_status"] = int(m.group(1))
                reason = m.group(2).strip(" )]")
                if reason:
                    out["sip.last_reason"] = reason
            return out
    return {}


ADAPTER = Snom()
