"""Cisco adapter: documented SPA/MPP XML samples, failure shapes, and the lab personality."""

from __future__ import annotations

import asyncio
import calendar
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import HttpError, LockedOut, Session
from agent.vendors import base, registry
from agent.vendors.cisco import ADAPTER
from lab.personalities import Request, Response
from lab.personalities import cisco as face
from tests.unit.vendors.helpers import face_transport, make_phone, read

DATA = Path(__file__).parent / "data" / "cisco"
DEVICE = Device("10.66.0.21", vendor="cisco")
SECRET = "Sup3r&Secret?"
# 4/20/2017 14:17:55 local, GMT+01:00 with daylight saving: 12:17:55 UTC
APRIL = calendar.timegm((2017, 4, 20, 12, 17, 55, 0, 0, 0))


def doc(name: str) -> tuple[int, str, bytes]:
    return 200, "text/xml", (DATA / name).read_bytes()


def plain(path: str) -> str:
    return path.split("&xuser=", 1)[0]


class Fixed:
    """Fixed answers by path (the appended login ignored); records every request."""

    def __init__(self, routes: dict[str, tuple[int, str, bytes]]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def serve(r: httpx.Request) -> httpx.Response:
            self.seen.append(r)
            status, ctype, body = self.routes.get(plain(r.url.path), (404, "text/html", b"nf"))
            return httpx.Response(status, headers={"Content-Type": ctype}, content=body)

        return httpx.MockTransport(serve)


def run(
    transport: httpx.AsyncBaseTransport,
    now: float = APRIL,
    logins: tuple[tuple[str, str], ...] = (("admin", SECRET),),
) -> tuple[dict[str, Any], Session]:
    session = Session(DEVICE.ip, [Credential(u, p) for u, p in logins], transport=transport)
    ctx = base.Context(DEVICE, Config(), session, now=now)
    return asyncio.run(ADAPTER.read(ctx)), session


def spa504g(status: str = "status_spa112_registered.xml") -> Fixed:
    return Fixed({"/admin/status.xml": doc(status), "/admin/spacfg.xml": doc("spacfg_spa504g.xml")})


def test_registry_finds_the_adapter() -> None:
    assert registry.adapter_for("cisco") is ADAPTER


def test_healthy_spa504g_every_key_it_tells() -> None:
    values, _ = run(spa504g().transport())
    assert values == {
        "sip.account": "0033972101010@sip.ovh.net",
        "sip.registered": True,
        "sip.register_expires_s": 1800,
        "sip.transport": "udp",
        "phone.forward.always": False,
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
        "phone.dnd": False,
        "phone.clock_skew_s": 0.0,
        # the rule's [--uid --pwd] options carry a secret: never reported
        "phone.provisioning_url": "http://cisco.prov.voip.ovh.net/init.cfg",
        "phone.outbound_proxy": "sip.ovh.net:5062",
        "phone.ip": "192.168.1.16",
    }
    assert set(values) <= set(base.PHONE_KEYS)


def test_login_is_appended_with_ampersand_and_never_logged() -> None:
    fixed = spa504g()
    _, session = run(fixed.transport())
    first = fixed.seen[0].url
    assert first.path.startswith("/admin/status.xml&xuser=admin&xpassword=")
    assert not first.query  # Cisco's form: no '?'
    assert "xpassword" not in "".join(session.log) and "Secret" not in "".join(session.log)
    assert session.log == ["GET /admin/status.xml", "GET /admin/spacfg.xml"]


def test_clock_skew_uses_the_phone_time_zone() -> None:
    values, _ = run(spa504g().transport(), now=APRIL - 300)
    assert values["phone.clock_skew_s"] == 300.0
    # a phone whose clock was never set (provisioning failed)
    never = Fixed(
        {
            "/admin/status.xml": (
                200,
                "text/xml",
                b"<flat-status><Current_Time>1/1/2000 00:05:00</Current_Time></flat-status>",
            ),
            "/admin/spacfg.xml": doc("spacfg_spa504g.xml"),
        }
    )
    values, _ = run(never.transport())
    assert values["phone.clock_skew_s"] < -500_000_000


def test_clock_unknown_without_the_time_zone() -> None:
    fixed = Fixed({"/admin/status.xml": doc("status_spa112_registered.xml")})
    values, _ = run(fixed.transport())
    assert "phone.clock_skew_s" not in values
    assert values["sip.registered"] is True and values["phone.ip"] == "192.168.1.16"


def test_not_registered_has_no_sip_code_to_tell() -> None:
    values, _ = run(spa504g("status_spa504g_failed.xml").transport())
    assert values["sip.registered"] is False
    assert values["phone.ip"] == "10.66.0.21"
    assert "sip.last_status" not in values and "sip.last_reason" not in values


def test_3pcc_dnd_forward_flags_and_disabled_proxy() -> None:
    fixed = Fixed(
        {
            "/admin/status.xml": doc("status_spa504g_failed.xml"),
            "/admin/spacfg.xml": doc("cfg_cp8851_3pcc.xml"),
        }
    )
    values, _ = run(fixed.transport())
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is False  # a destination left, but Cfwd All = No
    assert "phone.forward.always_target" not in values
    assert values["phone.forward.busy"] is True
    assert values["phone.forward.noanswer"] is False
    assert values["phone.outbound_proxy"] == ""  # Use Outbound Proxy = No
    assert values["sip.transport"] == "tls"
    assert values["phone.provisioning_url"].endswith("/cp88xx/update.cfg")


def test_ata_falls_back_to_config_xml_line_1() -> None:
    fixed = Fixed(
        {
            "/admin/status.xml": doc("status_spa112_registered.xml"),
            "/admin/config.xml": doc("config_spa112.xml"),
        }
    )
    values, session = run(fixed.transport())
    assert session.log[-1] == "GET /admin/config.xml"
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0699887766"
    assert values["phone.dnd"] is False  # line 1, not line 2
    assert values["sip.registered"] is True  # line 1 of two Registration_State
    assert values["sip.register_expires_s"] == 600
    assert values["phone.clock_skew_s"] == 0.0


def test_wrong_web_login_is_refused_within_the_budget() -> None:
    fixed = Fixed({"/admin/status.xml": (401, "text/html", b"401 Unauthorized")})
    with pytest.raises(HttpError, match="refused the web login") as err:
        run(fixed.transport(), logins=(("admin", "wrong1"), ("admin", "wrong2"), ("x", "y")))
    assert len(fixed.seen) == 3  # the appended try, then the session's budget of 2
    assert "wrong" not in str(err.value)


def test_lockout_answers() -> None:
    for answer in ((429, "text/html", b"busy"), (403, "text/html", b"Account locked")):
        fixed = Fixed({"/admin/status.xml": answer})
        with pytest.raises(LockedOut):
            run(fixed.transport())
        assert len(fixed.seen) == 1


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<flat-status><Registration_State>&lol2;</Registration_State></flat-status>"
)


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/html", b"<!DOCTYPE html><html><body>Login</body></html>"),
        (200, "text/xml", b"<flat-status><Registration_State>Regis"),
        (200, "text/xml", BOMB),
        (200, "text/xml", b""),
        (500, "text/html", b"oops"),
    ],
)
def test_malformed_answers_are_http_errors(answer: tuple[int, str, bytes]) -> None:
    fixed = Fixed({"/admin/status.xml": answer, "/admin/spacfg.xml": doc("spacfg_spa504g.xml")})
    with pytest.raises(HttpError) as err:
        run(fixed.transport())
    assert "xpassword" not in str(err.value) and SECRET not in str(err.value)


def test_odd_but_wellformed_documents_leave_keys_out() -> None:
    fixed = Fixed(
        {
            "/admin/status.xml": (200, "text/xml", b"<other><x>1</x></other>"),
            "/admin/spacfg.xml": (
                200,
                "text/xml",
                b"<flat-profile><SIP_Transport_1_>Auto"
                b"</SIP_Transport_1_><Register_Expires_1_>soon</Register_Expires_1_></flat-profile>",
            ),
        }
    )
    assert run(fixed.transport())[0] == {}


def test_no_cisco_pages_at_all() -> None:
    with pytest.raises(HttpError, match="no Cisco"):
        run(Fixed({}).transport())


def test_timeouts_never_show_the_password() -> None:
    def hang(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=r)

    with pytest.raises(HttpError) as err:
        run(httpx.MockTransport(hang))
    assert "xpassword" not in str(err.value) and "Secret" not in str(err.value)


# ---------------------------------------------------------------- the lab personality

STATE: dict[str, Any] = {
    "vendor": "cisco",
    "model": "SPA504G",
    "firmware": "7.6.2c",
    "mac": "00:0e:08:aa:bb:cc",
    "ip": "10.66.0.21",
    "line": "0033972101010",
    "registrar": "sip.ovh.test",
    "admin": {"username": "admin", "password": SECRET},
    "dnd": False,
    "forward": {"always": "", "busy": "", "noanswer": ""},
    "clock_offset_s": 0,
    "provisioning_url": "http://cisco.prov.voip.ovh.net/init.cfg",
    "outbound_proxy": "",
    "transport": "udp",
    "expires": 1800,
}


def face_read(tmp_path: Path, logins=(("admin", SECRET),), **changes: Any) -> dict[str, Any]:
    phone = make_phone(tmp_path, **(STATE | changes))
    return read(ADAPTER, DEVICE, face_transport(face.handle, phone), logins=logins)


def test_personality_round_trips_a_healthy_phone(tmp_path: Path) -> None:
    values = face_read(tmp_path)
    skew = values.pop("phone.clock_skew_s")
    assert abs(skew) < 5
    assert values == {
        "sip.account": "0033972101010@sip.ovh.test",
        "sip.registered": True,
        "sip.register_expires_s": 1800,
        "sip.transport": "udp",
        "phone.forward.always": False,
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
        "phone.dnd": False,
        "phone.provisioning_url": "http://cisco.prov.voip.ovh.net/init.cfg",
        "phone.outbound_proxy": "",
        "phone.ip": "10.66.0.21",
    }


def test_personality_dnd_forward_clock_proxy(tmp_path: Path) -> None:
    values = face_read(
        tmp_path,
        dnd=True,
        forward={"always": "0611223344", "busy": "", "noanswer": "0655"},
        clock_offset_s=-3600 * 5,
        outbound_proxy="sip.ovh.test:5062",
        transport="tcp",
    )
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0611223344"
    assert values["phone.forward.noanswer"] is True and values["phone.forward.busy"] is False
    assert abs(values["phone.clock_skew_s"] + 18000) < 5
    assert values["phone.outbound_proxy"] == "sip.ovh.test:5062"
    assert values["sip.transport"] == "tcp"


def test_personality_not_registered(tmp_path: Path) -> None:
    failed = {"registered": False, "status": 403, "reason": "Wrong login or password"}
    values = face_read(tmp_path, _registration=failed)
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values  # the SPA shows "Failed", no SIP code


def test_personality_ata(tmp_path: Path) -> None:
    values = face_read(
        tmp_path,
        model="SPA112",
        firmware="1.4.1(SR5)",
        dnd=True,
        forward={"always": "0699", "busy": "", "noanswer": ""},
    )
    assert values["phone.dnd"] is True and values["phone.forward.always_target"] == "0699"
    assert values["phone.ip"] == "10.66.0.21"


def test_personality_refuses_wrong_login(tmp_path: Path) -> None:
    with pytest.raises(HttpError, match="refused the web login"):
        face_read(tmp_path, logins=(("admin", "admin"),))


def test_personality_paths_and_basic_auth(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)

    def get(path: str, query: dict[str, str] | None = None, auth: str = "") -> Response:
        headers = {"authorization": auth} if auth else {}
        return face.handle(Request("GET", path, query or {}, headers), phone)

    assert get("/admin/status.xml").status == 401
    assert "Basic" in get("/admin/status.xml").headers["WWW-Authenticate"]
    assert get("/admin/nothing").status == 404
    assert get("/admin/config.xml&xuser=admin&xpassword=x").status == 404  # a phone: spacfg
    ok = get("/admin/spacfg.xml", {"xuser": "admin", "xpassword": SECRET})
    assert ok.status == 200 and b"<flat-profile>" in ok.body
    basic = httpx.BasicAuth("admin", SECRET)
    header = next(basic.auth_flow(httpx.Request("GET", "http://x/"))).headers["Authorization"]
    assert get("/admin/advanced", auth=header).status == 200
    assert face.handle(Request("POST", "/admin/status.xml", {}, {}), phone).status == 404


def test_open_phone_without_admin_password(tmp_path: Path) -> None:
    values = face_read(tmp_path, logins=(), admin={"username": "admin", "password": ""})
    assert values["sip.registered"] is True


def test_state_file_is_not_written_by_reading(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)
    before = phone.state_file.read_text()
    read(ADAPTER, DEVICE, face_transport(face.handle, phone), logins=(("admin", SECRET),))
    assert json.loads(phone.state_file.read_text()) == json.loads(before)


def test_broken_configuration_keeps_the_status() -> None:
    fixed = Fixed(
        {
            "/admin/status.xml": doc("status_spa504g_failed.xml"),
            "/admin/spacfg.xml": (200, "text/xml", b"<flat-profile><DND_Setting>Ye"),
        }
    )
    values, _ = run(fixed.transport())
    assert values == {"sip.registered": False, "phone.ip": "10.66.0.21"}
