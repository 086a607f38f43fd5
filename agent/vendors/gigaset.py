"""Gigaset / Siemens DECT IP bases (C530 IP, C470/C590/C610 IP, N510 IP PRO): the base's
web configurator, the only management interface public code shows for these bases (no
JSON API exists).

Interfaces used:
- ``POST login.html`` ``language=1&password=<system PIN>``: the base answers its home page
  (``home.html``, or ``security_advice.html`` while the PIN is the factory one, which a
  client acknowledges with ``disable_advice=0``); a refused login shows the login page
  again with ``var error = N;`` (1 wrong PIN, 2 another web session is open, 4 firmware
  update running, 7 settings being restored). One web session at a time: always log out.
- ``GET status_device.html``: "IP address:" -> phone.ip.
- ``GET settings_telephony_connections.html``: the status of each connection; IP1 (the
  OVHcloud line) -> sip.registered, and a Gigaset VoIP status code ``0x403`` (= SIP 403)
  when shown -> sip.last_status, the base's own wording -> sip.last_reason.
- ``GET settings_telephony_voip.html?id=0``: IP1's form ``reg_refresh_time``,
  ``outbound_mode`` (0 always, 1 automatic, 2 never), ``outbound_proxy``, ``outbound_port``.
- ``GET settings_admin_special.html``: ``data_server`` (the provisioning/data server).
- ``GET logout.html``.

Not readable, so left unknown: DND and call forwarding (handset features, no web field),
the base's clock and the SIP transport (not shown on these pages).

Sources (details in tests/unit/vendors/data/gigaset/SOURCES.md): wazo-platform/
wazo-provd-plugins plugins/wazo-gigaset/common-c/common.py and plugins/xivo-gigaset/C590/
entry.py; Eyepea/xivo-skaro lib-python/xivo/Phones/Siemens.py; robinsmidsrod/WWW-Gigaset
lib/WWW/Gigaset.pm; Gigaset user guides, appendix "VoIP status codes".
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from agent.net.http import HttpError, LockedOut, Reply
from agent.vendors.base import Context, account, for_html_parser, whole_number

LOGIN = "login.html"
ADVICE = "security_advice.html"
LOGOUT = "logout.html"
STATUS = "status_device.html"
CONNECTIONS = "settings_telephony_connections.html"
VOIP = "settings_telephony_voip.html"
ADMIN = "settings_admin_special.html"

_ERROR_RE = re.compile(r"var\s+error\s*=\s*(\d{1,9})\s*;")
_PAGE_RE = re.compile(r"([\w.-]+\.html)")
_CODE_RE = re.compile(r"(?:\b0x|\()\s*([3-6]\d{2})\b", re.IGNORECASE)
_IPV4_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_BUSY = {4: "a firmware update is running", 7: "its settings are being restored"}
_OUTBOUND_MODES = {"0": "always", "1": "automatic", "2": "never"}
_IP_LABELS = ("ip address", "adresse ip", "ip-adresse")
_IP1_NAMES = ("ip1", "ip 1")
# The base's wording, English first (language=1), French and German tolerated.
_NOT_REGISTERED = (
    "not registered", "unregistered", "non enregistr", "nicht registriert", "failed", "echec",
    "fehl", "error", "erreur", "disabled", "desactiv", "deaktiv", "not configured",
    "non configur", "not reachable", "injoignable", "nicht erreichbar",
)  # fmt: skip
_REGISTERED = ("registered", "enregistr", "registriert", "angemeldet")


def _norm(text: str) -> str:
    """Lower case, accents removed, spaces collapsed."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(flat.lower().split())


class _Page(HTMLParser):
    """What the adapter needs from a page: form values, table rows, links, a login form."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, str] = {}
        self.rows: list[list[str]] = []
        self.links: set[str] = set()
        self.login_form = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): v or "" for k, v in attrs}
        name, kind = a.get("name", ""), a.get("type", "text").lower()
        if tag == "input" and name:
            if kind == "password" and name == "password":
                self.login_form = True
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.fields[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "image", "reset", "file"):
                self.fields.setdefault(name, a.get("value", ""))
        elif tag == "select":
            self._select = name or None
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.add(a["href"].rsplit("/", 1)[-1].split("?")[0])
        elif tag == "tr":
            self._end_cell()
            self._row = []
            self.rows.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._end_cell()
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "tr"):
            self._end_cell()
        if tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def _end_cell(self) -> None:
        if self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
        self._cell = None


def _parse(reply: Reply) -> _Page:
    page = _Page()
    try:
        page.feed(for_html_parser(reply.text[:200_000]))
        page.close()
    except Exception:  # odd markup: keep what was understood, never crash
        pass
    return page


def _page_name(reply: Reply) -> str:
    """The page the base served: its ETag names it, else the final URL."""
    m = _PAGE_RE.search(reply.headers.get("etag", ""))
    return m.group(1) if m else urlsplit(reply.url).path.rsplit("/", 1)[-1]


def _login_error(text: str) -> int:
    m = _ERROR_RE.search(text)
    return int(m.group(1)) if m else 0


def _logged_in(reply: Reply, page: _Page) -> bool:
    if page.login_form:
        return False
    return _page_name(reply) in ("home.html", ADVICE) or LOGOUT in page.links


def _after_label(rows: list[list[str]], labels: tuple[str, ...]) -> str | None:
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if _norm(cell).rstrip(" :") in labels:
                return row[i + 1].strip()
    return None


def _registration(rows: list[list[str]]) -> dict[str, Any]:
    """IP1's row of the connections table: registered or not, and why."""
    row = next((r for r in rows if any(_norm(c) in _IP1_NAMES for c in r)), None)
    if row is None:
        return {}
    for cell in reversed(row):
        n = _norm(cell)
        if any(w in n for w in _NOT_REGISTERED):
            out: dict[str, Any] = {"sip.registered": False, "sip.last_reason": cell}
            m = _CODE_RE.search(cell)
            if m:
                out["sip.last_status"] = int(m.group(1))
            return out
        if any(w in n for w in _REGISTERED):
            return {"sip.registered": True}
    return {}


def _voip(fields: dict[str, str]) -> dict[str, Any]:
    """IP1's settings form: registration interval and outbound proxy."""
    out: dict[str, Any] = {}
    refresh = whole_number(fields.get("reg_refresh_time"))
    if refresh:
        out["sip.register_expires_s"] = refresh
    mode = _OUTBOUND_MODES.get(fields.get("outbound_mode", "").strip())
    if "outbound_proxy" in fields or mode:
        host = fields.get("outbound_proxy", "").strip()
        port = fields.get("outbound_port", "").strip()
        if mode == "never" or not host:
            out["phone.outbound_proxy"] = ""
        else:
            out["phone.outbound_proxy"] = f"{host}:{port}" if port.isdigit() else host
    user = account(fields.get("sip_user_id"), fields.get("sip_domain"))
    if user:
        out["sip.account"] = user
    return out


class Gigaset:
    vendor = "gigaset"

    async def read(self, ctx: Context) -> dict[str, Any]:
        headers = await self._login(ctx)
        try:
            return await self._read_pages(ctx, headers)
        finally:
            with contextlib.suppress(HttpError):  # one session at a time: always log out
                await ctx.http.request("GET", LOGOUT, headers=headers)

    async def _login(self, ctx: Context) -> dict[str, str]:
        """Log in with the system PIN (the login's password), within the session's budget."""
        http, ip = ctx.http, ctx.http.ip
        creds = [http.working] if http.working else list(http.logins)
        if not creds:
            raise HttpError(f"{ip}: no system PIN configured for the Gigaset web configurator")
        for cred in creds:
            if http.failed_logins >= http.max_logins:
                break
            form = {"language": "1", "password": cred.password}
            reply = await http.request("POST", LOGIN, data=form)
            if reply.status in (423, 429):
                raise LockedOut(f"{ip}: the base refuses logins for now (HTTP {reply.status})")
            if reply.status == 404:
                raise HttpError(f"{ip}: no Gigaset web configurator login page (404)")
            if reply.status != 200:
                raise HttpError(f"{ip}: {LOGIN} answered HTTP {reply.status}")
            error = _login_error(reply.text)
            if error == 2:
                raise LockedOut(
                    f"{ip}: the base refuses logins for now: another web session is open"
                )
            if error in _BUSY:
                raise HttpError(f"{ip}: the base refuses logins while {_BUSY[error]}")
            page = _parse(reply)
            if error == 0 and _logged_in(reply, page):
                http.working = cred
                cookie = reply.headers.get("set-cookie", "").split(";", 1)[0].strip()
                headers = {"Cookie": cookie} if "=" in cookie else {}
                if _page_name(reply) == ADVICE:  # factory PIN: acknowledge, change nothing
                    await http.request(
                        "POST", ADVICE, data={"disable_advice": "0"}, headers=headers
                    )
                return headers
            http.failed_logins += 1
        raise HttpError(f"{ip}: the Gigaset base refused the system PIN(s) tried")

    async def _get(
        self, ctx: Context, path: str, headers: dict[str, str], params: dict[str, str] | None = None
    ) -> _Page | None:
        reply = await ctx.http.request("GET", path, params=params, headers=headers)
        if reply.status == 404:
            return None  # not on this model or firmware: its keys stay unknown
        if reply.status in (423, 429):
            raise LockedOut(f"{ctx.http.ip}: the base refuses access for now (HTTP {reply.status})")
        if reply.status != 200:
            raise HttpError(f"{ctx.http.ip}: {path} answered HTTP {reply.status}")
        page = _parse(reply)
        if page.login_form or _page_name(reply) == LOGIN:
            raise HttpError(f"{ctx.http.ip}: {path}: the web session ended (login page shown)")
        return page

    async def _read_pages(self, ctx: Context, headers: dict[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        status = await self._get(ctx, STATUS, headers)
        if status is not None:
            ip = _after_label(status.rows, _IP_LABELS)
            if ip and _IPV4_RE.match(ip):
                values["phone.ip"] = ip
        connections = await self._get(ctx, CONNECTIONS, headers)
        if connections is not None:
            values.update(_registration(connections.rows))
        voip = await self._get(ctx, VOIP, headers, {"id": "0"})
        if voip is not None:
            values.update(_voip(voip.fields))
        admin = await self._get(ctx, ADMIN, headers)
        if admin is not None and "data_server" in admin.fields:
            values["phone.provisioning_url"] = admin.fields["data_server"].strip()
        return values


ADAPTER = Gigaset()
