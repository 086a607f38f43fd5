"""Gigaset / Siemens DECT IP base (C530 IP, C470/C590/C610 IP, N510 IP PRO): the web
configurator, as public client code and Gigaset's guides show it.

- Form login with the system PIN: ``POST login.html`` ``language=1&password=PIN`` (the
  state's ``admin.password``); success redirects to ``home.html``, or first to
  ``security_advice.html`` while the PIN is the factory ``0000`` (acknowledged with
  ``disable_advice``); a refused PIN shows the login page again with ``var error = 1;``.
- One web session at a time, bound to the client's address, 5 minutes idle; another
  client meanwhile gets ``var error = 2;``. ``logout.html`` ends it.
- Pages answer their name in ``ETag``; without a session they show the login page.
- ``status_device.html`` (IP/MAC/firmware), ``settings_telephony_connections.html`` (each
  connection's status: "Registered", or "Registration failed (0x403)" with the Gigaset
  VoIP status code of the registrar's answer), ``settings_telephony_voip.html?id=N`` (the
  account form), ``settings_admin_special.html`` (data server = provisioning URL).
- DND and call forwarding are handset features: no page shows or sets them.

Sources: see tests/unit/vendors/data/gigaset/SOURCES.md.
"""

from __future__ import annotations

import html
import time
from typing import Any

from lab.personalities import Phone, Request, Response

SESSION_S = 300.0
_SESSIONS: dict[str, dict[str, Any]] = {}  # state file -> {client, seen, advice}

_LOGIN = """<html><head><title>Gigaset {model}</title>
<script type="text/javascript">var error = {error};</script></head><body>
<form name="gigaset" method="post" action="login.html">
<select name="language"><option value="1" selected>English</option>
<option value="2">Deutsch</option><option value="9">Fran&ccedil;ais</option></select>
<input type="password" name="password" id="password" maxlength="4" value="">
<input type="submit" value="OK"></form></body></html>"""

_FRAME = """<html><head><title>Gigaset {model}</title>
<script type="text/javascript">var error = 0;</script></head><body>
<a href="home.html">Home</a> <a href="settings_telephony_connections.html">Settings</a>
<a href="status_device.html">Status</a> <a href="logout.html">Log off</a>
{body}</body></html>"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(phone: Phone, name: str, body: str, login: bool = False, error: int = 0) -> Response:
    model = _e(phone.state.get("model", "C530 IP"))
    text = (
        _LOGIN.format(model=model, error=error) if login else _FRAME.format(model=model, body=body)
    )
    resp = Response.text(text)
    resp.headers["ETag"] = f'"/{name}"'
    return resp


def _redirect(name: str) -> Response:
    return Response(302, {"Location": f"/{name}", "Content-Type": "text/html"}, b"")


def _session(req: Request, phone: Phone) -> dict[str, Any] | None:
    s = _SESSIONS.get(str(phone.state_file))
    if s is None or time.time() - s["seen"] > SESSION_S:
        _SESSIONS.pop(str(phone.state_file), None)
        return None
    return s if s["client"] == req.client else None


def _login(req: Request, phone: Phone) -> Response:
    key = str(phone.state_file)
    other = _SESSIONS.get(key)
    if other and other["client"] != req.client and time.time() - other["seen"] <= SESSION_S:
        return _page(phone, "login.html", "", login=True, error=2)
    pin = req.form().get("password", "")
    if pin != str(phone.state.get("admin", {}).get("password", "0000")):
        return _page(phone, "login.html", "", login=True, error=1)
    factory = pin == "0000"
    _SESSIONS[key] = {"client": req.client, "seen": time.time(), "advice": factory}
    return _redirect("security_advice.html" if factory else "home.html")


def _status(phone: Phone) -> str:
    s = phone.state
    mac = str(s.get("mac", "")).replace("-", ":").upper()
    return (
        "<table>"
        f"<tr><td>IP address:</td><td>{_e(s.get('ip', '0.0.0.0'))}</td></tr>"
        f"<tr><td>MAC address:</td><td>{_e(mac)}</td></tr>"
        f"<tr><td>Firmware version:</td><td>{_e(s.get('firmware', ''))}</td></tr>"
        "</table>"
    )


def _connections(phone: Phone) -> str:
    reg = phone.registration()
    if reg.get("registered"):
        status = "Registered"
    elif reg.get("status"):
        status = f"Registration failed (0x{int(reg['status'])})"
    else:
        status = "Not registered"
    rows = [("Gigaset.net", "Gigaset.net", "#9", "Disabled")]
    rows.append((str(phone.state.get("line", "IP1")), "IP1", "#1", status))
    rows += [(f"IP{n}", f"IP{n}", f"#{n}", "Not configured") for n in range(2, 7)]
    cells = "".join(
        f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(c)}</td><td>{_e(d)}</td></tr>"
        for a, b, c, d in rows
    )
    return (
        "<table><tr><th>Connection name</th><th>Connection</th><th>Suffix</th>"
        f"<th>Status</th></tr>{cells}</table>"
    )


def _voip(req: Request, phone: Phone) -> str:
    s = phone.state
    ident = req.query.get("id", "0")
    ident = ident if ident.isdigit() and int(ident) < 6 else "0"
    ip1 = ident == "0"
    host, _, port = str(s.get("outbound_proxy", "") if ip1 else "").rpartition(":")
    if not host:
        host, port = port, ""
    mode = "0" if host else "1"  # 0 always, 1 automatic, 2 never
    fields = {
        "account_name": f"IP{int(ident) + 1}",
        "sip_user_id": s.get("line", "") if ip1 else "",
        "sip_domain": s.get("registrar", "") if ip1 else "",
        "sip_server": s.get("registrar", "") if ip1 else "",
        "sip_server_port": "5060",
        "sip_registrar": s.get("registrar", "") if ip1 else "",
        "sip_registrar_port": "5060",
        "reg_refresh_time": s.get("expires", 180) if ip1 else 180,
        "stun_server": "",
        "stun_port": "3478",
        "nat_refresh_time": "20",
        "outbound_proxy": host,
        "outbound_port": port or "5060",
    }
    inputs = "".join(
        f'<tr><td>{_e(k)}</td><td><input type="text" name="{k}" value="{_e(v)}"></td></tr>'
        for k, v in fields.items()
    )
    radios = "".join(
        f'<input type="radio" name="outbound_mode" value="{v}"{" checked" if v == mode else ""}>'
        f"{label} "
        for v, label in (("0", "Always"), ("1", "Automatic"), ("2", "Never"))
    )
    return (
        f'<form name="gigaset" method="post" action="settings_telephony_voip.html?id={_e(ident)}">'
        f'<input type="hidden" name="account_id" value="{_e(ident)}">'
        f'<table>{inputs}<tr><td>Authentication password</td><td><input type="password" '
        f'name="sip_password" value=""></td></tr>'
        f"<tr><td>Outbound proxy mode</td><td>{radios}</td></tr></table></form>"
    )


def _admin(phone: Phone) -> str:
    url = phone.state.get("provisioning_url", "")
    return (
        '<form name="gigaset" method="post" action="settings_admin_special.html"><table>'
        f'<tr><td>Data server</td><td><input type="text" name="data_server" value="{_e(url)}">'
        '</td></tr><tr><td>User defined firmware file</td><td><input type="text" '
        'name="user_firmware_url" value=""></td></tr></table></form>'
    )


_PAGES = {
    "home.html": lambda req, phone: "<p>Welcome</p>",
    "status_device.html": lambda req, phone: _status(phone),
    "settings_telephony_connections.html": lambda req, phone: _connections(phone),
    "settings_telephony_voip.html": _voip,
    "settings_admin_special.html": lambda req, phone: _admin(phone),
}


def handle(req: Request, phone: Phone) -> Response:
    name = req.path.strip("/") or "login.html"
    if name in ("login.html", "index.html"):
        if req.method == "POST":
            return _login(req, phone)
        return _page(phone, "login.html", "", login=True)
    if name == "logout.html":
        if _session(req, phone) is not None:
            _SESSIONS.pop(str(phone.state_file), None)
        return _page(phone, name, "<p>You have been successfully logged off.</p>")
    if name not in _PAGES and name != "security_advice.html":
        return Response.not_found()
    s = _session(req, phone)
    if s is None:
        return _page(phone, "login.html", "", login=True)
    s["seen"] = time.time()
    if name == "security_advice.html":
        if req.method == "POST" and "disable_advice" in req.form():
            s["advice"] = False
            return _redirect("home.html")
        body = "<p>Please change the system PIN.</p><form><input name='disable_advice'></form>"
        return _page(phone, name, body)
    if s["advice"]:
        return _redirect("security_advice.html")
    return _page(phone, name, _PAGES[name](req, phone))
