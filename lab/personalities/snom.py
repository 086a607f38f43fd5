"""Snom D3xx/D7xx face: the phone's web server as Snom documents it (tests/unit/vendors/data/snom).

- ``/`` the web UI root, ``<TITLE>snom D785</TITLE>`` (what PBX tools read the model from).
- ``/settings.xml`` the phone's settings as a ``<settings><phone-settings>`` document, per
  identity with ``idx="1"``: ``user_active``, ``user_name``, ``user_host``, ``user_outbound``
  (``host;transport=x``; without an outbound proxy the transport goes on ``user_host``),
  ``user_expiry``, ``dnd_mode``, ``fwd_all|busy|time_enabled``/``_target``, ``setting_server``.
- ``/info.htm`` the status page: "IP Address", "Identity 1" with the line's state
  ("Registered", "Not registered", "Not registered (403 Wrong login or password)").
- ``/dummy.htm?settings=save&<name>=<value>[&store_settings=save]``: Snom's documented way to
  change a setting over HTTP (``dnd_mode[1]``, ``fwd_*_enabled1``/``fwd_*_target1``,
  ``setting_server``); answers an empty page.
- ``/advanced_network.htm?reboot=Reboot``: the reboot button (what PBX tools such as
  IssabelFoundation/endpointconfig2 send); answers the page, then the phone reboots.
HTTP Basic with the web login (Digest when ``http_scheme`` is "on" in the state, Snom's
"Authentication Scheme"); no login when the web user is empty (a factory phone). Unknown
paths: 404. Every answer carries ``Date`` from the phone's clock.
"""

from __future__ import annotations

import html

from lab.personalities import Phone, Request, Response, dated
from lab.personalities.auth import basic_challenge, basic_ok, digest_challenge, digest_ok

REALM = "snom"
PATHS = ("/", "/index.htm", "/settings.xml", "/info.htm", "/dummy.htm", "/advanced_network.htm")
KINDS = {"all": "always", "busy": "busy", "time": "noanswer"}  # Snom's name -> state's
ON = ("on", "true", "1")


def _handle(req: Request, phone: Phone) -> Response:
    if req.path not in PATHS:
        return Response.not_found()
    if not _authorized(req, phone):
        digest = str(phone.state.get("http_scheme", "off")).lower() in ON
        return digest_challenge(REALM) if digest else basic_challenge(REALM)
    if req.path == "/settings.xml":
        return Response.text(_settings(phone), "application/xml; charset=utf-8")
    if req.path == "/info.htm":
        return Response.text(_info(phone))
    if req.path == "/dummy.htm":
        _save(req, phone)
        return Response.text("<html><body></body></html>")
    if req.path == "/advanced_network.htm":
        if req.query.get("reboot") == "Reboot":
            phone.reboot(f"web reboot from {req.client}")
        title = f"snom {html.escape(_model(phone))}"
        return Response.text(f"<HTML><HEAD><TITLE>{title}</TITLE></HEAD><BODY></BODY></HTML>")
    model = html.escape(_model(phone))
    return Response.text(f"<HTML><HEAD><TITLE>snom {model}</TITLE></HEAD><BODY></BODY></HTML>")


handle = dated(_handle)


def _authorized(req: Request, phone: Phone) -> bool:
    admin = phone.state.get("admin") or {}
    user, password = str(admin.get("username", "")), str(admin.get("password", ""))
    if not user:
        return True  # a factory phone: the web server asks for no login
    if str(phone.state.get("http_scheme", "off")).lower() in ON:
        return digest_ok(req, user, password, REALM)
    return basic_ok(req, user, password)


def _model(phone: Phone) -> str:
    model = str(phone.state.get("model", ""))
    return model[4:] if model.lower().startswith("snom") else model


def _settings(phone: Phone) -> str:
    st, fwd = phone.state, phone.state.get("forward", {})
    registrar, proxy = str(st.get("registrar", "")), str(st.get("outbound_proxy", "") or "")
    transport = f";transport={st.get('transport', 'udp')}"
    host, outbound = (registrar, proxy + transport) if proxy else (registrar + transport, "")
    line = {
        "user_active": "on",
        "user_name": st.get("line", ""),
        "user_host": host,
        "user_outbound": outbound,
        "user_expiry": st.get("expires", 3600),
        "dnd_mode": "on" if st.get("dnd") else "off",
    }
    for snom, kind in KINDS.items():
        target = str(fwd.get(kind) or "")
        line[f"fwd_{snom}_enabled"] = "on" if target else "off"
        line[f"fwd_{snom}_target"] = target
    line["fwd_time_secs"] = 15
    body = "".join(f'<{k} idx="1" perm="">{html.escape(str(v))}</{k}>\n' for k, v in line.items())
    server = html.escape(str(st.get("provisioning_url", "")))
    fw = html.escape(str(st.get("firmware", "")))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<settings>\n<phone-settings e="2">\n'
        f'<setting_server perm="">{server}</setting_server>\n'
        f'<firmware_version perm="">{fw}</firmware_version>\n'
        f"{body}</phone-settings>\n</settings>\n"
    )


def _info(phone: Phone) -> str:
    st, reg = phone.state, phone.registration()
    if reg.get("registered"):
        state = "Registered"
    elif reg.get("status"):
        state = f"Not registered ({reg['status']} {reg.get('reason') or ''})".replace(" )", ")")
    else:
        state = "Not registered"
    uri = f"sip:{st.get('line', '')}@{st.get('registrar', '')}"
    rows = (
        ("Phone Model:", f"snom{_model(phone)}"),
        ("Version:", f"snom{_model(phone)}-SIP {st.get('firmware', '')}"),
        ("IP Address:", st.get("ip", "")),
        ("MAC Address:", str(st.get("mac", "")).replace(":", "").upper()),
    )
    table = "".join(
        f'<tr><td class="normalText">{html.escape(k)}</td>'
        f'<td class="normalText">{html.escape(str(v))}</td></tr>\n'
        for k, v in rows
    )
    return (
        f"<HTML><HEAD><TITLE>snom {html.escape(_model(phone))}</TITLE></HEAD><BODY>\n"
        f"<h2>System Information</h2>\n<table>\n{table}</table>\n<h2>SIP</h2>\n<table>\n"
        f'<tr><td class="normalText">Identity 1:</td><td class="normalText">'
        f"{html.escape(uri)}</td><td>{html.escape(state)}</td></tr>\n</table>\n</BODY></HTML>\n"
    )


def _save(req: Request, phone: Phone) -> None:
    """``settings=save&name=value``: the settings this face keeps, written to the state."""
    q = {**req.form(), **req.query} if req.method == "POST" else dict(req.query)
    if q.get("settings") != "save":
        return
    st = phone.state
    for name in ("dnd_mode", "dnd_mode1"):
        if name in q:
            st["dnd"] = q[name].lower() in ON
    fwd = st.setdefault("forward", {})
    for snom, kind in KINDS.items():
        enabled, target = q.get(f"fwd_{snom}_enabled1"), q.get(f"fwd_{snom}_target1")
        if enabled is None and target is None:
            continue
        on = enabled.lower() in ON if enabled is not None else bool(fwd.get(kind))
        target = target if target is not None else str(fwd.get(kind) or "")
        fwd[kind] = target if on else ""
    if "setting_server" in q:
        st["provisioning_url"] = q["setting_server"]
    phone.save()
