"""Fanvil desk phones (X-series, V6x, W6xx DECT), through the phone's own web server.

Interfaces (tests/unit/vendors/data/fanvil/SOURCES.md):
- Web login: ``GET /`` (some firmware first asks HTTP Basic, realm "VoIP Phone", which the
  session answers) gives the login form with a hidden ``nonce``; ``POST /`` with ``nonce``,
  ``URL``, ``LOG_Language``, ``goto=Logon`` and ``encoded = user:md5(user:password:nonce)``,
  the nonce also sent as the ``auth`` cookie. A logged-in answer is the frameset (links to
  ``currentstat.htm``); a refused one is the login form again. Three wrong passwords lock
  the login for five minutes (Fanvil manuals): the session's budget stays below that.
  ``POST / DefaultLogout=Logout`` ends the session (the phone has very few; 503 when full).
- ``GET /information.htm`` (System > Information): SIP account status (Registered /
  Unapplied / Trying / Timeout) -> sip.registered; IP -> phone.ip; System Time -> clock.
- ``GET /config.txt`` (System > Configurations, export): the ``<<VOIP CONFIG FILE>>`` text.
  ``SIP1 Register User``/``Register Addr`` -> sip.account, ``Register TTL``, ``Transport``
  (0 UDP, 1 TCP, 3 TLS), ``Proxy Addr``/``Proxy Port`` (outbound proxy), ``Always FWD``
  [``Num``], ``Busy FWD``, ``No Answer FWD``, ``Enable DND`` (line 1's own flag only);
  ``Flash Server IP`` (auto provisioning); ``Time Zone Name`` and DST.

Writes (the remedies, after consent): Fanvil's HTTP API, ``POST /xmlService`` with
``<FanvilConfiguration cmd="set">`` and ``<Item>sip.line.1.Name = value</Item>`` items (HTTP
Basic or Digest with the web login; answer ``<RetCode>0</RetCode>``): ``EnableDND`` and
``AlwaysFWD``/``AlwaysFWDNum``, the configuration file's names without their spaces (the
documented ``sip.line.1.RegisterAddr`` pattern; assumed). A 0 answer is not proof: the
remedy reads the state back.

Left unknown: the last REGISTER answer's code and reason (the status page shows a word, no
SIP code), and any field a page does not carry.

Sources: IssabelFoundation/endpointconfig2 vendor/Fanvil.py and vendor/Atcom.py (login,
/title.htm, /currentstat.htm, /config.txt); dannielperez/pyfanvil src/pyfanvil/webconfig.py
(X-series nonce form, /information.htm, logout); wazo-platform/wazo-provd-plugins
plugins/wazo_fanvil (transport values, FlashServerIP); Fanvil user manuals.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import re
from html.parser import HTMLParser
from typing import Any
from xml.sax.saxutils import escape

from agent.config import Credential
from agent.net.http import HttpError, LockedOut, Reply, Session
from agent.vendors.base import (
    Context,
    Refused,
    account,
    check_write,
    clock_skew,
    for_html_parser,
    whole_number,
)

INFO, CONFIG, XML_SERVICE = "/information.htm", "/config.txt", "/xmlService"
TRANSPORTS = {"0": "udp", "1": "tcp", "3": "tls"}  # 2 and others: left unknown
_NOT_REGISTERED = ("unregistered", "not registered", "unapplied", "trying", "timeout", "fail",
                   "registering", "disabled", "error")  # fmt: skip
_LOGGED_IN = re.compile(r"<frameset\b|currentstat\.htm|realws\.htm", re.I)
_LOCKED = re.compile(r"\blocked\b|too many|try again later|verrouill", re.I)
_NONCE = re.compile(r"[0-9A-Za-z]{1,64}")
_TIME = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?")
_ZONE = re.compile(r"^(?:UTC|GMT)(?:\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?)?\b", re.I)
_USERINFO = re.compile(r"^(\w+://)[^/@]*@")  # credentials in a URL are never reported
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


class _Page(HTMLParser):
    """Form fields (``name`` -> ``value``) and table rows (cell texts) of a page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        try:
            self.feed(for_html_parser(text))
            self.close()
        except Exception:  # odd markup (Python's parser raises AssertionError): keep the rest
            pass
        self.handle_endtag("tr")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            self.fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "tr":
            self.handle_endtag("tr")
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self.handle_endtag("td")
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "tr") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            if any(self._row):
                self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _label(cell: str) -> str:
    return cell.strip().rstrip(":").strip().lower()


class Fanvil:
    vendor = "fanvil"

    async def read(self, ctx: Context) -> dict[str, Any]:
        http = ctx.http
        await login(http)
        why: list[str] = []
        try:
            info, config = await http.get(INFO), await http.get(CONFIG)
        finally:
            await logout(http)
        cfg: dict[str, str] | None = None
        if config.status == 200:
            try:
                cfg = parse_config(config)
            except HttpError as e:
                why.append(str(e))
        else:
            why.append(f"{CONFIG}: HTTP {config.status}")
        out = config_values(cfg) if cfg else {}
        if info.status == 200:
            out.update(parse_information(info.text, cfg or {}, ctx.now))
        else:
            why.append(f"{INFO}: HTTP {info.status}")
        if not out:
            raise HttpError(f"{http.ip}: nothing readable ({'; '.join(why) or 'unknown pages'})")
        return out

    writable = frozenset({"phone.dnd", "phone.forward.always", "phone.forward.always_target"})

    async def write(self, ctx: Context, values: dict[str, Any]) -> None:
        check_write(self, values)
        items: dict[str, str] = {}
        if "phone.dnd" in values:
            items["EnableDND"] = "1" if values["phone.dnd"] else "0"
        if "phone.forward.always" in values:
            items["AlwaysFWD"] = "1" if values["phone.forward.always"] else "0"
            if values["phone.forward.always"]:
                items["AlwaysFWDNum"] = str(values["phone.forward.always_target"])
        body = '<?xml version="1.0" encoding="UTF-8" ?>\n<FanvilConfiguration cmd="set">'
        body += "".join(f"<Item>sip.line.1.{k} = {escape(v)}</Item>" for k, v in items.items())
        body += "</FanvilConfiguration>"
        http = ctx.http
        reply = await http.request(
            "POST", XML_SERVICE, content=body.encode(), headers={"Content-Type": "text/xml"}
        )
        if reply.status in (423, 429) or (reply.status == 401 and _LOCKED.search(reply.text)):
            raise LockedOut(f"{http.ip}: the phone refuses logins for now (locked)")
        if reply.status != 200:
            error = Refused if 400 <= reply.status < 500 else HttpError
            raise error(f"{http.ip}: {XML_SERVICE}: HTTP {reply.status}")
        code = re.search(r"<RetCode>\s*(-?\d+)\s*</RetCode>", reply.text)
        if not code or code.group(1) != "0":
            got = code.group(1) if code else "no RetCode"
            raise Refused(f"{http.ip}: {XML_SERVICE}: the phone refused the settings ({got})")


def _answer(reply: Reply, ip: str) -> None:
    if reply.status in (423, 429) or (reply.status in (401, 403) and _LOCKED.search(reply.text)):
        raise LockedOut(f"{ip}: the phone refuses logins for now (locked)")
    if reply.status in (401, 403):
        raise HttpError(f"{ip}: the phone refused the web login ({reply.status})")
    if reply.status == 503:
        raise HttpError(f"{ip}: the web server is busy (503: all its sessions are in use)")
    if reply.status != 200:
        raise HttpError(f"{ip}: the web login page answered HTTP {reply.status}")


async def login(http: Session) -> None:
    """The web session, within the session's login budget (the cookie stays in the session)."""
    page = await http.get("/")  # an HTTP Basic challenge is answered by the session
    _answer(page, http.ip)
    if _LOGGED_IN.search(page.text):
        return
    form = _Page(page.text).fields
    if not _NONCE.fullmatch(form.get("nonce", "")):
        raise HttpError(f"{http.ip}: no Fanvil login form on the web page")
    creds: list[Credential] = [http.working] if http.working else list(http.logins)
    for cred in creds:
        nonce = form.get("nonce", "")
        if http.failed_logins >= http.max_logins or not _NONCE.fullmatch(nonce):
            break
        digest = hashlib.md5(f"{cred.username}:{cred.password}:{nonce}".encode()).hexdigest()
        http.cookies.set("auth", nonce)
        data = {"nonce": nonce, "URL": form.get("URL") or "/", "goto": form.get("goto") or "Logon",
                "LOG_Language": form.get("LOG_Language") or "0",
                "encoded": f"{cred.username}:{digest}"}  # fmt: skip
        reply = await http.request("POST", "/", data=data)
        _answer(reply, http.ip)
        if _LOGGED_IN.search(reply.text):
            http.working = cred
            return
        if _LOCKED.search(reply.text):
            raise LockedOut(f"{http.ip}: the phone refuses logins for now (locked)")
        http.failed_logins += 1
        form = _Page(reply.text).fields  # the login form again, with a fresh nonce
    raise HttpError(f"{http.ip}: the phone refused the web login")


async def logout(http: Session) -> None:
    with contextlib.suppress(HttpError):  # best effort: the phone drops idle sessions itself
        await http.request("POST", "/", data={"DefaultLogout": "Logout"})


def parse_config(reply: Reply) -> dict[str, str]:
    """``Key   :value`` lines of the exported configuration (first occurrence wins)."""
    text = reply.text.lstrip("\ufeff \r\n\t")
    if not text.startswith("<<VOIP CONFIG FILE>>"):
        kind = reply.headers.get("content-type", "unknown type")
        raise HttpError(f"{reply.url}: expected the Fanvil configuration file, got {kind}")
    out: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        key, sep, value = line.partition(":")
        key = " ".join(key.split()).lower()
        if sep and key and not key.startswith(("<", "--")):
            out.setdefault(key, value.strip())
    return out


def _flag(cfg: dict[str, str], key: str) -> bool | None:
    return {"0": False, "1": True}.get(cfg.get(key, "").strip())


def config_values(cfg: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    user = cfg.get("sip1 register user") or cfg.get("sip1 phone number") or ""
    who = account(user.partition("@")[0], cfg.get("sip1 register addr"))
    if who:
        out["sip.account"] = who
    ttl = whole_number(cfg.get("sip1 register ttl"))
    if ttl is not None:
        out["sip.register_expires_s"] = ttl
    if cfg.get("sip1 transport") in TRANSPORTS:
        out["sip.transport"] = TRANSPORTS[cfg["sip1 transport"]]
    if "sip1 proxy addr" in cfg:
        proxy, port = cfg["sip1 proxy addr"], cfg.get("sip1 proxy port", "")
        out["phone.outbound_proxy"] = f"{proxy}:{port}" if proxy and port.isdigit() else proxy
    server = cfg.get("flash server ip", cfg.get("download server ip"))
    if server is not None:
        out["phone.provisioning_url"] = _USERINFO.sub(r"\1", server)
    for kind, flag, number in (
        ("always", "sip1 always fwd", "sip1 always fwd num"),
        ("busy", "sip1 busy fwd", "sip1 busy fwd num"),
        ("noanswer", "sip1 no answer fwd", "sip1 noanswer fwd num"),
    ):
        on = _flag(cfg, flag)
        if on is None and cfg.get("sip1 fwd type") == "0":
            on = False  # older firmware: forward type 0 = no forwarding at all
        if on is not None:
            out[f"phone.forward.{kind}"] = on
            if kind == "always" and on:
                out["phone.forward.always_target"] = cfg.get(number, "")
    # Only line 1's own flag: "P1 Enable DND" is 1 in public exports of phones whose DND is
    # off, so it may only mean the feature is available; reading it would raise false alarms.
    line = _flag(cfg, "sip1 enable dnd")
    if line is not None:
        out["phone.dnd"] = line
    return out


def parse_information(page: str, cfg: dict[str, str], now: float) -> dict[str, Any]:
    """Line 1's status word, the phone's IP and its clock from System > Information."""
    out: dict[str, Any] = {}
    rows = _Page(page).rows
    lines = [r for r in rows if re.match(r"(sip|line|account)(?:\s*\d|\b)", _label(r[0]))]
    status = [r for r in lines if any(_status(c) is not None for c in r[1:])]
    line1 = [r for r in status if _label(r[0]).endswith("1")]
    for row in (line1 or status)[:1]:
        out["sip.registered"] = next(s for c in row[1:] if (s := _status(c)) is not None)
    labels = {_label(r[0]): r[1] for r in rows if len(r) >= 2}
    ip = next((labels[k] for k in ("ip", "ip address", "ipv4") if k in labels), "")
    if _IPV4.match(ip):
        out["phone.ip"] = ip
    when = _phone_epoch(labels.get("system time", ""), cfg, now)
    if when is not None:
        out["phone.clock_skew_s"] = clock_skew(when, now)
    return out


def _status(cell: str) -> bool | None:
    word = cell.strip().lower()
    if any(word.startswith(w) for w in _NOT_REGISTERED):
        return False
    return True if word == "registered" else None


def _phone_epoch(text: str, cfg: dict[str, str], now: float) -> float | None:
    """The phone's local System Time as epoch seconds, with its own ``Time Zone Name``; with
    daylight saving on, the offset (zone or zone + ``DST Min Offset``) nearest ``now``."""
    m, zone = _TIME.search(text), _ZONE.search(cfg.get("time zone name", "").strip())
    if not m or not zone:
        return None
    y, mo, d, hh, mm = (int(g) for g in m.groups()[:5])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and y >= 1):
        return None
    local = calendar.timegm((y, mo, d, hh, mm, int(m.group(6) or 0), 0, 0, 0))
    sign = -1 if zone.group(1) == "-" else 1
    offsets = [sign * (int(zone.group(2) or 0) * 3600 + int(zone.group(3) or 0) * 60)]
    dst = cfg.get("dst type", cfg.get("enable dst", "0"))
    shift = whole_number(cfg.get("dst min offset", "60"))
    if dst not in ("", "0") and shift is not None:
        offsets.append(offsets[0] + shift * 60)
    return min((local - o for o in offsets), key=lambda t: abs(t - now))


ADAPTER = Fanvil()
