"""Yealink T4x/T5x face: the Action URI and the web UI servlet, as Yealink documents them.

- ``/servlet?phonecfg=get[&accounts=1][&dnd=1][&fw=1]``: only from the Action URI allow list
  (``action_uri_limit_ip`` in the state, default "any" here; 403 otherwise), HTTP Basic (or a
  web session); the INI answer of Yealink's CreatePhoneInfo. Writes: ``key=DNDOn|DNDOff``
  and ``phonecfg=set&Forward_<always|busy|noanswer>_enable=0|1&..._target=N``;
  ``key=Reboot`` answers OK, then the phone reboots (and provisions itself).
- ``/servlet?m=mod_listener&p=login&q=loginForm`` (RSA public key, JSESSIONID), POST
  ``&q=login`` (username, pwd = AES-CBC(zero padded "rand;JSESSIONID;password"), rsakey/rsaiv
  = RSA PKCS#1 v1.5 of the AES key/IV as hex): ``<div id="_RES_INFO_">{"authstatus":...}``.
- ``/servlet?m=mod_data&p=status|settings-autop|account-register&q=load`` with the session;
  without it, 302 to the login form.
Every answer carries ``Date`` from the phone's clock. Sources: tests/unit/vendors/data/yealink.
"""

from __future__ import annotations

import base64
import fnmatch
import html
import json
import re
import secrets
import threading

from lab.personalities import Phone, Request, Response, dated
from lab.personalities.auth import basic_challenge, basic_ok

LOGIN_FORM = "/servlet?m=mod_listener&p=login&q=loginForm&jumpto=status"
_SESSIONS: dict[str, bool] = {}  # JSESSIONID -> logged in
_KEY: list = []  # the web UI's RSA private key (made on first use)
_LOCK = threading.Lock()  # the lab server answers from several threads


def _handle(req: Request, phone: Phone) -> Response:
    q = req.query
    if req.path == "/":
        return Response(302, {"Location": LOGIN_FORM})
    if req.path != "/servlet":
        return Response.not_found()
    if "phonecfg" in q or "key" in q:
        return _action_uri(req, phone)
    if q.get("m") == "mod_listener" and q.get("p") == "login":
        if q.get("q") == "loginForm":
            return _login_form(phone)
        if q.get("q") == "login" and req.method == "POST":
            return _login(req, phone)
    if not _session(req):
        return Response(302, {"Location": LOGIN_FORM})
    page = _PAGES.get(q.get("p", "")) if q.get("m") == "mod_data" and q.get("q") == "load" else None
    return Response.text(page(phone)) if page else Response.not_found()


handle = dated(_handle)


def _session(req: Request) -> str | None:
    m = re.search(r"JSESSIONID=([^;\s]+)", req.headers.get("cookie", ""))
    return m.group(1) if m and _SESSIONS.get(m.group(1)) else None


# ------------------------------------------------------------------ Action URI


def _allowed(client: str, limit: str) -> bool:
    pats = [p.strip() for p in limit.split(",") if p.strip()]
    return any(p.lower() == "any" or fnmatch.fnmatchcase(client, p) for p in pats)


def _action_uri(req: Request, phone: Phone) -> Response:
    if not _allowed(req.client, str(phone.state.get("action_uri_limit_ip", "any"))):
        return Response.text("<html><body>403 Forbidden</body></html>", status=403)
    admin = phone.state["admin"]
    if not (basic_ok(req, admin["username"], admin["password"]) or _session(req)):
        return basic_challenge(f"Enterprise IP phone {phone.state.get('model', '')}")
    q, st = req.query, phone.state
    if q.get("phonecfg") == "get":
        return Response.text(_phonecfg(phone, q), "text/plain")
    if q.get("phonecfg") == "set":
        fwd = st.setdefault("forward", {})
        for kind in ("always", "busy", "noanswer"):
            enable, target = q.get(f"Forward_{kind}_enable"), q.get(f"Forward_{kind}_target")
            if enable == "0":
                fwd[kind] = ""
            elif target is not None or enable == "1":
                fwd[kind] = target if target is not None else fwd.get(kind, "")
        phone.save()
    elif q.get("key") in ("DNDOn", "DNDOff"):
        st["dnd"] = q["key"] == "DNDOn"
        phone.save()
    elif q.get("key") == "Reboot":
        phone.reboot(f"Action URI key=Reboot from {req.client}")
    return Response.text("<html><body>OK</body></html>")


def _phonecfg(phone: Phone, q: dict[str, str]) -> str:
    st, fwd = phone.state, phone.state.get("forward", {})
    line, server = st.get("line", ""), st.get("registrar", "")
    out = f"[Status]\nFirmwareVersion={st.get('firmware', '')}\n"
    if q.get("accounts", "0") != "0":
        out += f"[Accounts]\nAccount0=Enabled|{line}|{line}|{line}|Off|{line}@{server}|\n"
    if q.get("dnd", "0") != "0":
        out += f"[DND]\nState={'On' if st.get('dnd') else 'Off'}\n"
    if q.get("fw", "0") != "0":
        for kind in ("always", "busy", "noanswer"):
            target = fwd.get(kind) or ""
            rings = "Ringtimes=12\n" if kind == "noanswer" else ""
            out += f"[Forward_{kind}]\n{rings}State={'On' if target else 'Off'}\nTarget={target}\n"
    return out


# ------------------------------------------------------------------ web UI


def _login_form(phone: Phone) -> Response:
    n, e = _key()
    sid = secrets.token_hex(16)
    with _LOCK:
        _SESSIONS[sid] = False
        while len(_SESSIONS) > 256:
            del _SESSIONS[next(iter(_SESSIONS))]
    model = html.escape(str(phone.state.get("model", "")))
    page = (
        f"<html><head><title>Yealink {model}</title><script type='text/javascript'>\n"
        f'var g_phonetype = "{model}";\nvar g_rsa_n = "{n:x}";\nvar g_rsa_e = "{e:x}";\n'
        "</script></head><body><form><input id='idUsername' name='username'/>"
        "<input id='idPassword' name='pwd' type='password'/><button id='idConfirm'/></form>"
        f'<span>T("Enterprise IP phone {model}")</span></body></html>'
    )
    resp = Response.text(page)
    resp.headers["Set-Cookie"] = f"JSESSIONID={sid}; Path=/"
    return resp


def _login(req: Request, phone: Phone) -> Response:
    m = re.search(r"JSESSIONID=([^;\s]+)", req.headers.get("cookie", ""))
    sid, form, admin = m.group(1) if m else "", req.form(), phone.state["admin"]
    ok = False
    if sid in _SESSIONS and form.get("username") == admin["username"]:
        fields = _decrypt(form).split(";", 2)
        ok = len(fields) == 3 and fields[1] == sid and fields[2] == admin["password"]
    if ok:
        _SESSIONS[sid] = True
    info = json.dumps({"authstatus": "done" if ok else "error"}, separators=(",", ":"))
    return Response.text(f'<html><body><div id="_RES_INFO_">{info}</div></body></html>')


def _status(phone: Phone) -> str:
    st, reg = phone.state, phone.registration()
    state = 2 if reg.get("registered") else 3 if reg.get("status") else 1
    acc = json.dumps({"Account1": f"{st.get('line', '')}@{st.get('registrar', '')}:{state}"})
    acc = acc.replace('"', '\\"')  # a JSON text inside a JavaScript string, as the page has it
    fw, mac, ip = (html.escape(str(st.get(k, ""))) for k in ("firmware", "mac", "ip"))
    rows = "".join(
        f'<tr><td>T("{label}")</td><td><label id="{i}" dvalue="{v}">{v}</label></td></tr>'
        for label, i, v in (
            ("Firmware Version", "tdFirmware", fw),
            ("MAC Address", "tdMACAddress", mac),
            ("IPv4 WAN IP Address", "tdWANIP", ip),
        )
    )
    return (
        f'<html><head><script type="text/javascript">\nvar g_strFirmware = "{fw}";\n'
        f'var g_strToken = "{secrets.token_hex(8)}";\n'
        f'var g_dataAccStatus = g_json.ParseJSON("{acc}");\n'
        f"</script></head><body><table>{rows}</table></body></html>"
    )


def _input(name: str, value: object) -> str:
    return f'<input type="text" name="{name}" id="{name}" value="{html.escape(str(value))}"/>'


def _select(name: str, value: str, options: tuple[str, ...]) -> str:
    opts = "".join(
        f'<option value="{o}"{" selected" if o == value else ""}>{o}</option>' for o in options
    )
    return f'<select name="{name}" id="{name}">{opts}</select>'


def _autop(phone: Phone) -> str:
    url = phone.state.get("provisioning_url", "")
    return f"<html><body><form>{_input('AutoProvisionServerURL', url)}</form></body></html>"


def _account(phone: Phone) -> str:
    st = phone.state
    proxy = str(st.get("outbound_proxy", "") or "")
    transport = {"udp": "0", "tcp": "1", "tls": "2"}.get(str(st.get("transport", "udp")), "0")
    return (
        "<html><body><form>"
        + _select("AccountEnable", "1", ("0", "1"))
        + _input("AccountLabel", st.get("line", ""))
        + _input("AccountRegisterName", st.get("line", ""))
        + _input("server1", st.get("registrar", ""))
        + _select("Transport1", transport, ("0", "1", "2", "3"))
        + _input("Expires1", st.get("expires", 3600))
        + _select("AccountOutboundSwitch", "1" if proxy else "0", ("0", "1"))
        + _input("AccountOutboundProxy", proxy)
        + "</form></body></html>"
    )


_PAGES = {"status": _status, "settings-autop": _autop, "account-register": _account}


# ------------------------------------------------------------------ the login's cryptography


def _private_key():  # cryptography RSAPrivateKey
    """The web UI's RSA key (1024 bits, e = 65537), made once."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    with _LOCK:
        if not _KEY:
            _KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=1024))
        return _KEY[0]


def _key() -> tuple[int, int]:
    numbers = _private_key().public_key().public_numbers()
    return numbers.n, numbers.e


def _rsa_decrypt(text: str) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        return _private_key().decrypt(bytes.fromhex(text), padding.PKCS1v15())
    except ValueError:
        return b""


def _decrypt(form: dict[str, str]) -> str:
    """The login's plaintext "rand;JSESSIONID;password", or "" when it does not decrypt."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        key = bytes.fromhex(_rsa_decrypt(form.get("rsakey", "")).decode())
        iv = bytes.fromhex(_rsa_decrypt(form.get("rsaiv", "")).decode())
        data = base64.b64decode(form.get("pwd", ""), validate=True)
    except (ValueError, UnicodeDecodeError):
        return ""
    if len(key) != 16 or len(iv) != 16 or not data or len(data) % 16:
        return ""
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    out = dec.update(data) + dec.finalize()
    return out.rstrip(b"\0").decode("utf-8", "replace")
