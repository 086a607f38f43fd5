"""Fanvil X/V/W-series face: the phone's web server, as Fanvil and public clients show it.

- Every page asks HTTP Basic (realm "VoIP Phone") first, as pyfanvil describes this web
  server; then the web session: ``GET /`` gives the login form (hidden ``nonce``, ``URL``,
  ``LOG_Language``, ``goto``; the nonce also set as the ``auth`` cookie), ``POST /`` with
  ``encoded = user:md5(user:password:nonce)`` answers the frameset (logged in) or the form
  again; ``POST / DefaultLogout=Logout`` ends the session. Three wrong passwords lock the
  login for five minutes (Fanvil manuals): the answers then say so (401 / login page).
- With the session: ``/information.htm`` (System > Information: model, versions, System
  Time, network, SIP account status Registered / Unapplied / Trying / Timeout),
  ``/currentstat.htm`` (the same), ``/title.htm`` (model) and ``/config.txt`` (the exported
  ``<<VOIP CONFIG FILE>>``); without it, the login form.
- ``POST /xmlService`` (Fanvil HTTP API, Basic or Digest): ``<FanvilConfiguration cmd="set">``
  with ``<Item>sip.line.1.Key = value</Item>``; DND (``EnableDND``) and forwarding
  (``AlwaysFWD``, ``AlwaysFWDNum``, ``BusyFWD``…, ``NoAnswerFWD``…) update the state.
Unknown paths: 404. Sources: tests/unit/vendors/data/fanvil/SOURCES.md.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import threading
import time

from lab.personalities import Phone, Request, Response, local_time
from lab.personalities.auth import basic_challenge, basic_ok, digest_challenge, digest_ok

REALM = "VoIP Phone"
LOCK_AFTER, LOCK_S = 3, 300  # "entered incorrectly three times … locked … 5 minutes"
LOCKED_TEXT = "Login locked: too many failed attempts, try again in 5 minutes"
_SESSIONS: dict[str, bool] = {}  # nonce (auth cookie) -> logged in
_FAILS: dict[str, list[float]] = {}  # phone -> times of failed logins
_LOCK = threading.Lock()
_PAGES = ("/information.htm", "/currentstat.htm", "/title.htm", "/config.txt")
_FWD = {"AlwaysFWD": "always", "BusyFWD": "busy", "NoAnswerFWD": "noanswer"}


def handle(req: Request, phone: Phone) -> Response:
    if req.path == "/xmlService":
        return _xml_service(req, phone)
    if req.path != "/" and req.path not in _PAGES:
        return Response.not_found()
    admin, who = phone.state["admin"], str(phone.state_file)
    if _locked(who):
        return Response(401, {"WWW-Authenticate": f'Basic realm="{REALM}"'}, LOCKED_TEXT.encode())
    if not basic_ok(req, admin["username"], admin["password"]):
        if req.headers.get("authorization"):
            _fail(who)
        return basic_challenge(REALM)
    sid = _cookie(req)
    if req.path == "/" and req.method == "POST":
        return _post_root(req, phone, sid, who)
    if not _SESSIONS.get(sid or ""):
        return _login_page(phone)
    if req.path == "/":
        return Response.text(_FRAMESET)
    if req.path == "/title.htm":
        model = html.escape(str(phone.state.get("model", "")))
        return Response.text(f"<html><body><span>{model}</span></body></html>")
    if req.path == "/config.txt":
        return Response.text(_config(phone), "text/plain")
    return Response.text(_information(phone))


def _cookie(req: Request) -> str | None:
    m = re.search(r"(?:^|;\s*)auth=([0-9A-Za-z]+)", req.headers.get("cookie", ""))
    return m.group(1) if m else None


def _locked(who: str) -> bool:
    with _LOCK:
        recent = [t for t in _FAILS.get(who, []) if time.time() - t < LOCK_S]
        _FAILS[who] = recent
        return len(recent) >= LOCK_AFTER


def _fail(who: str) -> None:
    with _LOCK:
        _FAILS.setdefault(who, []).append(time.time())


def _post_root(req: Request, phone: Phone, sid: str | None, who: str) -> Response:
    form, admin = req.form(), phone.state["admin"]
    if "DefaultLogout" in form:
        with _LOCK:
            _SESSIONS.pop(sid or "", None)
        return _login_page(phone)
    nonce = form.get("nonce", "")
    user, password = admin["username"], admin["password"]
    digest = hashlib.md5(f"{user}:{password}:{nonce}".encode()).hexdigest()  # Fanvil's scheme
    if nonce in _SESSIONS and secrets.compare_digest(form.get("encoded", ""), f"{user}:{digest}"):
        with _LOCK:
            _SESSIONS[nonce] = True
        return Response.text(_FRAMESET)
    _fail(who)
    message = LOCKED_TEXT if _locked(who) else "Wrong username or password"
    return _login_page(phone, message)


def _login_page(phone: Phone, message: str = "") -> Response:
    nonce = secrets.token_hex(8)
    with _LOCK:
        _SESSIONS[nonce] = False
        while len(_SESSIONS) > 64:
            del _SESSIONS[next(iter(_SESSIONS))]
    model = html.escape(str(phone.state.get("model", "")))
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{v}">'
        for k, v in (("nonce", nonce), ("URL", "/"), ("LOG_Language", "0"), ("goto", "Logon"))
    )
    page = (
        f"<html><head><title>Fanvil {model}</title></head><body>"
        f'<form name="logon" method="post" action="/">{hidden}<input type="hidden" '
        'name="encoded" value=""><input type="text" name="username" value="">'
        '<input type="password" name="password" value="">'
        '<input type="submit" name="DefaultLogon" value="Logon"></form>'
        f'<p class="err">{html.escape(message)}</p></body></html>'
    )
    return Response(200, {"Content-Type": "text/html", "Set-Cookie": f"auth={nonce}; path=/"},
                    page.encode())  # fmt: skip


_FRAMESET = (
    '<HTML><FRAMESET ROWS="60,*"><FRAME NAME="title_top" SRC="title.htm">'
    '<FRAME NAME="main" SRC="currentstat.htm"></FRAMESET></HTML>'
)


def _line_status(phone: Phone) -> str:
    reg = phone.registration()
    if not phone.state.get("line"):
        return "Unapplied"
    if reg.get("registered"):
        return "Registered"
    return "Trying" if reg.get("status") else "Timeout"  # refused: retrying; else no answer


def _information(phone: Phone) -> str:
    st = phone.state
    line, server = str(st.get("line", "")), str(st.get("registrar", ""))
    rows = [
        ("MODEL", "Model", st.get("model", "")),
        ("HWVER", "Hardware Version", "1.0"),
        ("SWVER", "Software Version", st.get("firmware", "")),
        ("SYSTIME", "System Time", f"{local_time(phone.now()):%Y-%m-%d %H:%M:%S}"),
        ("NETMODE", "Network Mode", "DHCP"),
        ("MAC", "MAC", st.get("mac", "")),
        ("IP", "IP", st.get("ip", "")),
    ]
    info = "".join(
        f'<tr><td><span id="XSTR_LBL_INFO_{i}">{label}</span>:</td>'
        f"<td>{html.escape(str(value))}</td></tr>"
        for i, label, value in rows
    )
    user = f"{line}@{server}" if line else ""
    sip = (
        "<tr><th>Line</th><th>SIP User</th><th>Status</th></tr>"
        f"<tr><td>SIP1</td><td>{html.escape(user)}</td><td>{_line_status(phone)}</td></tr>"
        "<tr><td>SIP2</td><td></td><td>Unapplied</td></tr>"
    )
    return f'<html><body><table class="info">{info}</table><table>{sip}</table></body></html>'


def _config(phone: Phone) -> str:
    st, fwd = phone.state, phone.state.get("forward") or {}
    line, proxy = str(st.get("line", "")), str(st.get("outbound_proxy", "") or "")
    host, _, port = proxy.rpartition(":") if re.search(r":\d+$", proxy) else (proxy, "", "5060")
    transport = {"udp": "0", "tcp": "1", "tls": "3"}.get(str(st.get("transport", "udp")), "0")
    sip1 = [
        ("Phone Number", line), ("Display Name", line), ("Sip Name", line),
        ("Register Addr", st.get("registrar", "")), ("Register Port", "5060"),
        ("Register User", line), ("Register Pswd", ""), ("Register TTL", st.get("expires", 3600)),
        ("Enable Reg", 1 if line else 0), ("Proxy Addr", host), ("Proxy Port", port),
        ("Always FWD", int(bool(fwd.get("always")))), ("Busy FWD", int(bool(fwd.get("busy")))),
        ("No Answer FWD", int(bool(fwd.get("noanswer")))),
        ("Always FWD Num", fwd.get("always") or ""), ("Busy FWD Num", fwd.get("busy") or ""),
        ("NoAnswer FWD Num", fwd.get("noanswer") or ""), ("FWD Timer", 5),
        ("Transport", transport), ("Enable DND", int(bool(st.get("dnd")))),
    ]  # fmt: skip
    sip2 = [("Phone Number", ""), ("Register Addr", ""), ("Enable Reg", 0), ("Enable DND", 0)]
    lines = [f"SIP{n} {k:<19}:{v}" for n, items in ((1, sip1), (2, sip2)) for k, v in items]
    return "\n".join(
        [
            "<<VOIP CONFIG FILE>>Version:2.0000000000",
            "",
            "<NET CONFIG MODULE>",
            "WAN TYPE           :0",
            "Enable DHCP        :1",
            f"DHCP Hostname      :{st.get('model', '')}",
            "",
            "<SIP CONFIG MODULE>",
            "SIP  Port          :5060",
            "Reg Fail Interval  :32",
            "--SIP Line List--  :",
            *lines,
            "",
            "<CALL FEATURE MODULE>",
            "--Port Config--    :",
            "P1 Enable DND         :0",
            "P1 DND Mode           :1",  # per line: the DND of SIP1 above
            "P1 DND Return Code    :480",
            "",
            "<PHONE FEATURE MODULE>",
            "--DateTime Config--:",
            "Enable SNTP        :1",
            "Time Zone          :4",
            "Time Zone Name     :UTC+1",
            "DST Type           :1",
            "DST Min Offset     :60",
            "",
            "<AUTOUPDATE CONFIG MODULE>",
            f"Flash Server IP    :{st.get('provisioning_url', '')}",
            "Flash File Name    :$mac.cfg",
            "Flash Protocol     :4",
            "Flash Mode         :1",
            "Flash Interval     :1",
            "<<END OF FILE>>",
            "",
        ]
    )


# ------------------------------------------------------------------ HTTP API (xmlService)


def _xml_service(req: Request, phone: Phone) -> Response:
    admin = phone.state["admin"]
    user, password = admin["username"], admin["password"]
    if req.method != "POST":
        return Response.not_found()
    if not (basic_ok(req, user, password) or digest_ok(req, user, password, REALM)):
        return digest_challenge(REALM)
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(req.body)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return _ret("set", -1)
    cmd = root.get("cmd", "")
    if root.tag != "FanvilConfiguration" or cmd != "set":
        return _ret(cmd, -1)
    st = phone.state
    fwd = dict(st.get("forward") or {})
    items = {}
    for item in root.iter("Item"):
        key, _, value = (item.text or "").partition("=")
        m = re.fullmatch(r"sip\.line\.1\.(\w+)", key.strip())
        if m:
            items[m.group(1)] = value.strip()
    if "EnableDND" in items:
        st["dnd"] = items["EnableDND"] == "1"
    for flag, kind in _FWD.items():
        on = items.get(flag)
        target = items.get(f"{flag}Num", fwd.get(kind) or "")
        if on is not None or f"{flag}Num" in items:
            keep = on == "1" if on is not None else bool(fwd.get(kind))
            fwd[kind] = target if keep else ""
    st["forward"] = fwd
    phone.save()
    return _ret(cmd, 0)


def _ret(cmd: str, code: int) -> Response:
    head = '<?xml version="1.0" encoding="UTF-8" ?>\n'
    body = f'<FanvilConfiguration cmd="{html.escape(cmd)}"><RetCode>{code}</RetCode>'
    return Response.text(f"{head}{body}</FanvilConfiguration>", "text/xml")
