"""Grandstream HT802 face: the web UI's CGI API, as Grandstream's public clients use it.

- ``POST /cgi-bin/dologin`` (``username``, ``password``): ``{"response": "success", "body":
  {"sid", "role", "ver", "mac", "defaultAuth"}}`` and a ``session-identity`` cookie; a refused
  password ``{"response": "error", "body": "wrong<attempts left>"}``; after 5 failures (Web
  Access Attempt Limit, P28117) ``{"response": "error", "body": "locked", "lockTime": <min>}``
  for 15 minutes (Web Lockout Duration, P1683).
- ``GET|POST /cgi-bin/api.values.get?request=K1:K2&sid=``: ``{"response": "success", "body":
  {K1: "...", ...}}`` with every asked key echoed ("" when unknown). Without a session only
  the identity keys answer; anything else gets ``{"response": "error", "body":
  "session-expired"}``. Account 1 (FXS port 1): P35 user ID, P47 SIP server, P48 outbound
  proxy, P130 transport (0 UDP, 1 TCP, 2 TLS), P32 register expiration (minutes), P237
  config server path (no scheme) and P212 its protocol, P271 account active; runtime
  ``PAccountRegistered1`` and ``Pipv4``.
- ``GET|POST /cgi-bin/api-get_line_status``: the FXS ports' call state (``idle``).
Every answer carries ``Date`` from the phone's clock; other paths 404. DND and forwarding are
set on the analog handset with star codes (*78/*79, *72/*73, ...), not over HTTP, and the
HT8xx MIB that shows them is not served here: this face shows neither.
Sources: tests/unit/vendors/data/grandstream/SOURCES.md.
"""

from __future__ import annotations

import hmac
import html
import math
import re
import secrets
import threading
import time

from lab.personalities import Phone, Request, Response, dated

LIMIT, LOCK_S = 5, 15 * 60  # P28117, P1683 defaults of the HT80x template
PUBLIC = {"phone_model", "vendor_fullname", "Pipv4", "P67"}
_SESSIONS: dict[str, str] = {}  # sid -> the phone's state file
_FAILS: dict[str, tuple[int, float]] = {}  # state file -> (failures, locked until)
_LOCK = threading.Lock()  # the lab server answers from several threads


def _handle(req: Request, phone: Phone) -> Response:
    params = {**req.query, **(req.form() if req.method == "POST" else {})}
    if req.path == "/cgi-bin/dologin" and req.method == "POST":
        return _login(params, phone)
    if req.path == "/cgi-bin/api.values.get":
        keys = [k for k in params.get("request", "").split(":") if k]
        if not _session(req, params, phone) and not set(keys) <= PUBLIC:
            return Response.json({"response": "error", "body": "session-expired"})
        values = _values(phone)
        return Response.json({"response": "success", "body": {k: values.get(k, "") for k in keys}})
    if req.path == "/cgi-bin/api-get_line_status":
        if not _session(req, params, phone):
            return Response.json({"response": "error", "body": "session-expired"})
        idle = {"state": "idle", "active": 0, "remotename": "", "remotenumber": "", "conf": 0}
        lines = [{"line": n, "acct": n - 1, **idle} for n in (1, 2)]
        return Response.json({"response": "success", "body": lines})
    if req.path == "/" and req.method == "GET":
        model = html.escape(str(phone.state.get("model", "HT802")))
        title = "<head><title>Grandstream Device Configuration</title></head>"
        return Response.text(f"<html>{title}<body><div id='model'>{model}</div></body></html>")
    return Response.not_found()


handle = dated(_handle)


def _session(req: Request, params: dict[str, str], phone: Phone) -> bool:
    m = re.search(r"session-identity=([0-9a-f]+)", req.headers.get("cookie", ""))
    sid = params.get("sid") or (m.group(1) if m else "")
    return bool(sid) and _SESSIONS.get(sid) == str(phone.state_file)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _login(form: dict[str, str], phone: Phone) -> Response:
    admin, key, now = phone.state["admin"], str(phone.state_file), time.monotonic()
    with _LOCK:
        fails, until = _FAILS.get(key, (0, 0.0))
        if until > now:
            left = math.ceil((until - now) / 60)
            return Response.json({"response": "error", "body": "locked", "lockTime": left})
        user_ok = _same(form.get("username", "admin"), admin["username"])
        if user_ok and _same(form.get("password", ""), admin["password"]):
            _FAILS.pop(key, None)
            sid = secrets.token_hex(16)
            _SESSIONS[sid] = key
            while len(_SESSIONS) > 256:
                del _SESSIONS[next(iter(_SESSIONS))]
        else:
            fails = 0 if until else fails  # a lockout that ran out starts afresh
            fails += 1
            locked = fails >= LIMIT
            _FAILS[key] = (fails, now + LOCK_S if locked else 0.0)
            body = "locked" if locked else f"wrong{LIMIT - fails}"
            return Response.json({"response": "error", "body": body})
    st = phone.state
    body = {
        "sid": sid,
        "role": "admin",
        "ver": st.get("firmware", ""),
        "mac": st.get("mac", ""),
        "defaultAuth": admin["password"] == "admin",
    }
    resp = Response.json({"response": "success", "body": body})
    resp.headers["Set-Cookie"] = f"session-identity={sid}; Path=/cgi-bin; HttpOnly"
    return resp


def _values(phone: Phone) -> dict[str, str]:
    st, reg = phone.state, phone.registration()
    url = str(st.get("provisioning_url", "") or "")
    scheme, sep, path = url.partition("://")
    methods = {"tftp": "0", "http": "1", "https": "2", "ftp": "3", "ftps": "4"}
    transport = {"udp": "0", "tcp": "1", "tls": "2"}.get(str(st.get("transport", "udp")), "0")
    return {
        "phone_model": str(st.get("model", "HT802")),
        "vendor_fullname": "Grandstream",
        "Pipv4": str(st.get("ip", "")),
        "P67": str(st.get("mac", "")),
        "P271": "1",
        "P35": str(st.get("line", "")),
        "P47": str(st.get("registrar", "")),
        "P48": str(st.get("outbound_proxy", "") or ""),
        "P130": transport,
        "P32": str(max(1, round(int(st.get("expires", 3600)) / 60))),
        "P237": path if sep else url,
        "P212": methods.get(scheme.lower(), "1") if sep else "1",
        "PAccountRegistered1": "1" if reg.get("registered") else "0",
    }
