"""Cisco SPA5xx / SPA112 (and 3PCC) face: the admin XML documents of the phone's web server.

- ``/admin/status.xml``: ``<flat-status>`` shaped as the real SPA112 capture in
  davejcameron/pyciscospa ``tests/fixtures/status_registered.xml`` (``Registration_State``
  unsuffixed, once per line; ``Current_Time`` as ``M/D/YYYY HH:MM:SS`` local time).
- ``/admin/spacfg.xml`` (desk phones) or ``/admin/config.xml`` (ATAs): ``<flat-profile>``
  with the provisioning parameter names and ``group`` attributes of the SPA5xx profile.
- ``/admin/advanced``: the configuration utility's page (HTML).
- ``/admin/reboot`` and ``/admin/resync[?<profile URL>]`` (SPA provisioning guide): 200, then
  the phone reboots, or fetches the URL (without one: its own profile, next to
  ``Profile_Rule``) and applies the ``<flat-profile>`` (profile.py). The login goes after the
  URL: ``/admin/resync?http://h/p/spa.xml&xuser=admin&xpassword=s3cr%21t``.

The login is accepted appended to the path (``&xuser=<u>&xpassword=<p>``, Cisco's documented
form) or as HTTP Basic (the browser prompt); with no admin password set, pages are open, as
on a factory SPA5xx. Anything else gets a 401 (and nothing is done), unknown paths a 404.
Cisco documents no HTTP write path for DND or forwarding (the web form ids are not public):
settings change only through a resync.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from urllib.parse import unquote
from xml.sax.saxutils import escape

from lab.personalities import Phone, Request, Response, local_time
from lab.personalities.auth import basic_challenge, basic_ok

TIME_ZONE = "GMT+01:00"  # a French office; daylight saving as the EU rule below
DST_RULE = "start=3/-1/7/2;end=10/-1/7/3;save=1"
_ATA = re.compile(r"^(SPA1\d\d|SPA2\d\d|ATA)", re.I)
_LOGIN = re.compile(r"(?:^|&)xuser=(?P<u>.*?)&xpassword=(?P<p>.*)$")
ACTIONS = ("/admin/reboot", "/admin/resync")


def _stamp(t: datetime) -> str:
    return f"{t.month}/{t.day}/{t.year} {t:%H:%M:%S}"


def _authorized(req: Request, phone: Phone, user: str | None, pwd: str | None) -> bool:
    admin = phone.state.get("admin") or {}
    name, password = str(admin.get("username", "admin")), str(admin.get("password", ""))
    if not password:
        return True
    if user is None or pwd is None:
        return basic_ok(req, name, password)
    ok = secrets.compare_digest(user, name) & secrets.compare_digest(pwd, password)
    return ok or basic_ok(req, name, password)


def handle(req: Request, phone: Phone) -> Response:
    path, user, pwd = req.path, req.query.get("xuser"), req.query.get("xpassword")
    m = _LOGIN.search(path)
    if m:
        path, user, pwd = path[: m.start()], unquote(m["u"]), unquote(m["p"])
    url = ""
    if path == "/admin/resync" and req.raw_query:  # ?<profile URL>[&xuser=u&xpassword=p]
        url = req.raw_query
        m = _LOGIN.search(url)
        if m:
            url, user, pwd = url[: m.start()], unquote(m["u"]), unquote(m["p"])
        url = url if "://" in url else unquote(url)
    if req.method != "GET":
        return Response.not_found()
    model = str(phone.state.get("model", "SPA504G"))
    ata = bool(_ATA.match(model))
    pages = {
        "/admin/status.xml",
        "/admin/advanced",
        "/admin/config.xml" if ata else "/admin/spacfg.xml",
        *ACTIONS,
    }
    if path not in pages:
        return Response.not_found()
    if not _authorized(req, phone, user, pwd):
        return basic_challenge(model)
    if path == "/admin/reboot":
        phone.reboot(f"/admin/reboot from {req.client}")
        return Response.text(_done(model, "Rebooting"))
    if path == "/admin/resync":
        phone.resync(url or None, f"/admin/resync from {req.client}")
        return Response.text(_done(model, "Resyncing"))
    if path == "/admin/status.xml":
        return Response.text(_status(phone, model, ata), "text/xml")
    if path == "/admin/advanced":
        return Response.text(
            f"<html><head><title>{escape(model)} Configuration Utility</title></head>"
            f"<body>Software Version: {escape(str(phone.state.get('firmware', '')))}</body></html>"
        )
    return Response.text(_profile(phone, model, ata), "text/xml")


def _done(model: str, what: str) -> str:
    """The page after a reboot or resync request (wording assumed)."""
    return f"<html><head><title>{escape(model)}</title></head><body>{what}...</body></html>"


def _status(phone: Phone, model: str, ata: bool) -> str:
    s, reg = phone.state, phone.registration()
    now = phone.now()
    expires = int(s.get("expires", 3600) or 3600)
    if reg.get("registered"):
        state, period = "Registered", max(expires // 2, 1)
        since = int(now) % period
        last, nxt = _stamp(local_time(now - since)), f"{period - since} s"
    else:
        state = "Failed" if reg.get("status") else "Not Registered"
        last, nxt = "0/0/0 00:00:00", ""
    rows = [
        ("Product_Name", model),
        ("Software_Version", s.get("firmware", "")),
        ("Current_Time", _stamp(local_time(now))),
        ("Hook_State_1_", "On"),
        ("Registration_State", state),
        ("Last_Registration_At", last),
        ("Next_Registration_In", nxt),
        ("Message_Waiting", "No"),
        ("Call_1_State_1_", "Idle"),
    ]
    if not ata:
        rows.insert(3, ("Current_IP", s.get("ip", "")))
    body = "".join(f"<{k}>{escape(str(v))}</{k}>\n" for k, v in rows)
    if ata:
        body += f"<router-status>\n<WAN_Interface>\n<IP>{escape(str(s.get('ip', '')))}</IP>\n"
        body += "</WAN_Interface>\n</router-status>\n"
    return f'<?xml version="1.0"?>\n<flat-status>\n{body}</flat-status>\n'


def _profile(phone: Phone, model: str, ata: bool) -> str:
    s = phone.state
    fwd = s.get("forward") or {}
    proxy = str(s.get("outbound_proxy", "") or "")
    line = "_1_" if ata else ""  # ATAs carry user settings per line
    rows = [
        ("Product_Name", "Info/Product_Information", model),
        ("Software_Version", "Info/Product_Information", s.get("firmware", "")),
        ("MAC_Address", "Info/Product_Information", str(s.get("mac", "")).replace(":", "")),
        ("Current_IP", "Info/System_Information", s.get("ip", "")),
        ("Provision_Enable", "Provisioning/Configuration_Profile", "Yes"),
        ("Profile_Rule", "Provisioning/Configuration_Profile", s.get("provisioning_url", "")),
        ("Time_Zone", "Regional/Miscellaneous", TIME_ZONE),
        ("Daylight_Saving_Time_Rule", "Regional/Miscellaneous", DST_RULE),
        ("Daylight_Saving_Time_Enable", "Regional/Miscellaneous", "Yes"),
        ("Line_Enable_1_", "Ext_1/General", "Yes"),
        ("SIP_Transport_1_", "Ext_1/SIP_Settings", str(s.get("transport", "udp")).upper()),
        ("Proxy_1_", "Ext_1/Proxy_and_Registration", s.get("registrar", "")),
        ("Use_Outbound_Proxy_1_", "Ext_1/Proxy_and_Registration", "Yes" if proxy else "No"),
        ("Outbound_Proxy_1_", "Ext_1/Proxy_and_Registration", proxy),
        ("Register_1_", "Ext_1/Proxy_and_Registration", "Yes"),
        ("Register_Expires_1_", "Ext_1/Proxy_and_Registration", s.get("expires", 3600)),
        ("User_ID_1_", "Ext_1/Subscriber_Information", s.get("line", "")),
        (f"Cfwd_All_Dest{line}", "User/Call_Forward", fwd.get("always", "")),
        (f"Cfwd_Busy_Dest{line}", "User/Call_Forward", fwd.get("busy", "")),
        (f"Cfwd_No_Ans_Dest{line}", "User/Call_Forward", fwd.get("noanswer", "")),
        (f"Cfwd_No_Ans_Delay{line}", "User/Call_Forward", "20"),
        (f"DND_Setting{line}", "User/Supplementary_Services", "Yes" if s.get("dnd") else "No"),
    ]
    body = "".join(
        f'<{k} group="{g}">{escape(str(v))}</{k}>\n' if str(v) else f'<{k} group="{g}" />\n'
        for k, g, v in rows
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<flat-profile>\n{body}</flat-profile>\n'
