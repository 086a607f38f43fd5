"""Gigaset adapter: web configurator samples, login failures, odd markup, and the lab face."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import HttpError, LockedOut, Session
from agent.vendors import base, registry
from agent.vendors.gigaset import ADAPTER
from lab.personalities import Phone, Request
from lab.personalities import gigaset as face
from tests.unit.vendors.helpers import face_transport, make_phone

DATA = Path(__file__).parent / "data" / "gigaset"
DEVICE = Device("10.66.0.31", vendor="gigaset", model="C530 IP")
PIN = "4711"
PAGES = ("status_device.html", "settings_telephony_connections.html")
NEVER_TOLD = (
    "phone.dnd",
    "phone.forward.always",
    "phone.forward.always_target",
    "phone.forward.busy",
    "phone.forward.noanswer",
    "phone.clock_skew_s",
    "sip.transport",
)


def doc(name: str) -> tuple[int, str, bytes]:
    return 200, "text/html", (DATA / name).read_bytes()


def healthy_routes(**override: tuple[int, str, bytes]) -> dict[str, tuple[int, str, bytes]]:
    routes = {
        "/login.html": doc("home.html"),
        "/status_device.html": doc("status_device.html"),
        "/settings_telephony_connections.html": doc("connections_registered.html"),
        "/settings_telephony_voip.html": doc("voip_ip1.html"),
        "/settings_admin_special.html": doc("admin_special.html"),
        "/logout.html": (200, "text/html", b"You have been successfully logged off."),
    }
    routes.update(override)
    return routes


class Fixed:
    """Fixed answers by path; records every request."""

    def __init__(self, routes: dict[str, tuple[int, str, bytes]]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def serve(r: httpx.Request) -> httpx.Response:
            self.seen.append(r)
            status, ctype, body = self.routes.get(r.url.path, (404, "text/html", b"not found"))
            return httpx.Response(status, headers={"Content-Type": ctype}, content=body)

        return httpx.MockTransport(serve)


def run(
    transport: httpx.AsyncBaseTransport, logins: tuple[tuple[str, str], ...] = (("admin", PIN),)
) -> tuple[dict[str, Any], Session]:
    session = Session(DEVICE.ip, [Credential(u, p) for u, p in logins], transport=transport)
    ctx = base.Context(DEVICE, Config(), session)
    return asyncio.run(ADAPTER.read(ctx)), session


def lab_phone(tmp_path: Path, **state: Any) -> Phone:
    full = {
        "vendor": "gigaset",
        "model": "C530 IP",
        "firmware": "42.245.00.000",
        "mac": "7c:2f:80:12:34:56",
        "ip": "10.66.0.31",
        "line": "0033972101010",
        "registrar": "sip.ovh.test",
        "admin": {"username": "admin", "password": PIN},
        "dnd": False,
        "forward": {"always": "", "busy": "", "noanswer": ""},
        "clock_offset_s": 0,
        "provisioning_url": "http://prov.ovh.test/gigaset",
        "outbound_proxy": "91.121.129.159:5962",
        "transport": "udp",
        "expires": 1800,
    }
    full.update(state)
    return make_phone(tmp_path, **full)


# ---------------------------------------------------------------- documented shapes


def test_registry_finds_the_adapter() -> None:
    assert registry.adapter_for("gigaset") is ADAPTER


def test_healthy_base_is_read_from_its_pages() -> None:
    fixed = Fixed(healthy_routes())
    values, session = run(fixed.transport())
    assert values == {
        "phone.ip": "192.168.1.37",
        "sip.registered": True,
        "sip.register_expires_s": 1800,
        "phone.outbound_proxy": "91.121.129.159:5962",
        "phone.provisioning_url": "profile.gigaset.net/device",
    }
    login = fixed.seen[0]
    assert login.method == "POST" and login.url.path == "/login.html"
    assert login.content == f"language=1&password={PIN}".encode()
    assert fixed.seen[-1].url.path == "/logout.html"  # one session at a time: always log out
    voip = next(r for r in fixed.seen if r.url.path == "/settings_telephony_voip.html")
    assert voip.url.params["id"] == "0"  # IP1
    assert session.working is not None and session.failed_logins == 0


def test_dnd_and_forwarding_are_never_guessed() -> None:
    values, _ = run(Fixed(healthy_routes()).transport())
    assert not set(NEVER_TOLD) & set(values)


def test_registration_failure_gives_the_sip_code_of_the_status() -> None:
    routes = healthy_routes(
        **{"/settings_telephony_connections.html": doc("connections_failed.html")}
    )
    values, _ = run(Fixed(routes).transport())
    assert values["sip.registered"] is False
    assert values["sip.last_status"] == 403
    assert values["sip.last_reason"] == "Registration failed (0x403)"


def test_french_wording_without_a_code_leaves_the_status_unknown() -> None:
    routes = healthy_routes(
        **{"/settings_telephony_connections.html": doc("connections_failed_fr.html")}
    )
    values, _ = run(Fixed(routes).transport())
    assert values["sip.registered"] is False
    assert values["sip.last_reason"] == "Échec enregistrement"
    assert "sip.last_status" not in values


def test_outbound_proxy_mode_never_means_none() -> None:
    page = (DATA / "voip_ip1.html").read_text()
    page = page.replace('value="0" checked', 'value="0"').replace('value="2"', 'value="2" checked')
    routes = healthy_routes(**{"/settings_telephony_voip.html": (200, "text/html", page.encode())})
    values, _ = run(Fixed(routes).transport())
    assert values["phone.outbound_proxy"] == ""


def test_missing_pages_leave_their_keys_unknown() -> None:
    routes = healthy_routes()
    del routes["/settings_admin_special.html"], routes["/status_device.html"]
    values, _ = run(Fixed(routes).transport())
    assert "phone.provisioning_url" not in values and "phone.ip" not in values
    assert values["sip.registered"] is True


# ---------------------------------------------------------------- logins


def test_wrong_pin_is_tried_within_the_budget_then_reported() -> None:
    fixed = Fixed(healthy_routes(**{"/login.html": doc("login_refused.html")}))
    logins = (("admin", "1111"), ("admin", "2222"), ("admin", "3333"), ("admin", "4444"))
    with pytest.raises(HttpError, match="refused the system PIN"):
        run(fixed.transport(), logins)
    assert [r.url.path for r in fixed.seen] == ["/login.html", "/login.html"]  # budget: 2


def test_a_401_answer_is_handled() -> None:
    fixed = Fixed(healthy_routes(**{"/login.html": (401, "text/html", b"Unauthorized")}))
    with pytest.raises(HttpError):
        run(fixed.transport())
    assert len(fixed.seen) <= 3


def test_another_open_session_is_a_lockout() -> None:
    fixed = Fixed(healthy_routes(**{"/login.html": doc("login_other_session.html")}))
    with pytest.raises(LockedOut):
        run(fixed.transport(), (("admin", PIN), ("admin", "0000")))
    assert len(fixed.seen) == 1  # stop at once, do not make it worse


@pytest.mark.parametrize("status", [423, 429])
def test_lockout_statuses(status: int) -> None:
    with pytest.raises(LockedOut):
        run(Fixed(healthy_routes(**{"/login.html": (status, "text/html", b"")})).transport())


def test_no_login_page_is_a_clear_error() -> None:
    with pytest.raises(HttpError, match="404"):
        run(Fixed({}).transport())


def test_session_lost_mid_read_is_an_error_and_still_logs_out() -> None:
    fixed = Fixed(healthy_routes(**{"/status_device.html": doc("login_refused.html")}))
    with pytest.raises(HttpError, match="session ended"):
        run(fixed.transport())
    assert fixed.seen[-1].url.path == "/logout.html"


def test_a_session_cookie_is_sent_back() -> None:
    seen: list[str] = []

    def serve(r: httpx.Request) -> httpx.Response:
        if r.url.path == "/login.html":
            body = (DATA / "home.html").read_bytes()
            return httpx.Response(200, headers={"Set-Cookie": "SID=abc; Path=/"}, content=body)
        seen.append(r.headers.get("cookie", ""))
        status, ctype, body = healthy_routes().get(r.url.path, (404, "text/html", b""))
        return httpx.Response(status, headers={"Content-Type": ctype}, content=body)

    values, _ = run(httpx.MockTransport(serve))
    assert values["sip.registered"] is True
    assert seen and all(c == "SID=abc" for c in seen)


# ---------------------------------------------------------------- malformed answers


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body><table><tr><td>IP address:<td>",  # truncated
        b"\x00\xff\xfe<<<>>>&#xZZ;<!--",  # binary junk
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<x>&b;&b;</x>",  # entities are not expanded by the HTML parser
        b'{"status": "Registered"}',  # JSON where HTML is expected
        b"<table>" + b"<tr><td>IP1</td><td>" * 5000,  # deep, unclosed
    ],
)
def test_odd_pages_leave_keys_out(body: bytes) -> None:
    routes = healthy_routes(**{p: (200, "text/html", body) for p in ("/" + q for q in PAGES)})
    routes["/settings_telephony_voip.html"] = (200, "text/html", body)
    routes["/settings_admin_special.html"] = (200, "text/html", body)
    values, _ = run(Fixed(routes).transport())
    assert set(values) <= {"phone.ip", "sip.registered"}
    assert values.get("phone.ip") in (None, "192.168.1.37")


def test_a_bad_address_is_not_reported() -> None:
    page = b"<table><tr><td>IP address:</td><td>999.x.1</td></tr></table>"
    routes = healthy_routes(**{"/status_device.html": (200, "text/html", page)})
    values, _ = run(Fixed(routes).transport())
    assert "phone.ip" not in values


@pytest.mark.parametrize("body", [b"", b"<html>Service unavailable"])
def test_odd_login_answers_are_errors(body: bytes) -> None:
    with pytest.raises(HttpError):
        run(Fixed(healthy_routes(**{"/login.html": (200, "text/html", body)})).transport())


def test_server_error_on_a_page_is_an_http_error() -> None:
    routes = healthy_routes(**{"/status_device.html": (500, "text/html", b"oops")})
    with pytest.raises(HttpError, match="500"):
        run(Fixed(routes).transport())


# ---------------------------------------------------------------- against the lab face


def test_round_trip_healthy(tmp_path: Path) -> None:
    phone = lab_phone(tmp_path)
    values, session = run(face_transport(face.handle, phone))
    assert values == {
        "sip.account": "0033972101010@sip.ovh.test",
        "phone.ip": "10.66.0.31",
        "sip.registered": True,
        "sip.register_expires_s": 1800,
        "phone.outbound_proxy": "91.121.129.159:5962",
        "phone.provisioning_url": "http://prov.ovh.test/gigaset",
    }
    assert session.log[-1] == "GET logout.html"


def test_round_trip_dnd_and_forward_stay_unknown(tmp_path: Path) -> None:
    phone = lab_phone(
        tmp_path, dnd=True, forward={"always": "0612345678", "busy": "", "noanswer": ""}
    )
    values, _ = run(face_transport(face.handle, phone))
    assert not set(NEVER_TOLD) & set(values)
    assert values["sip.registered"] is True


def test_round_trip_not_registered(tmp_path: Path) -> None:
    reg = {"registered": False, "status": 403, "reason": "Wrong login or password"}
    phone = lab_phone(tmp_path, _registration=reg, outbound_proxy="")
    values, _ = run(face_transport(face.handle, phone))
    assert values["sip.registered"] is False
    assert values["sip.last_status"] == 403
    assert values["sip.last_reason"] == "Registration failed (0x403)"
    assert values["phone.outbound_proxy"] == ""


def test_round_trip_no_answer_from_the_registrar(tmp_path: Path) -> None:
    reg = {"registered": False, "status": None, "reason": None}
    values, _ = run(face_transport(face.handle, lab_phone(tmp_path, _registration=reg)))
    assert values["sip.registered"] is False and "sip.last_status" not in values


def test_round_trip_factory_pin_acknowledges_the_security_advice(tmp_path: Path) -> None:
    phone = lab_phone(tmp_path, admin={"username": "admin", "password": "0000"})
    values, session = run(face_transport(face.handle, phone), (("admin", "0000"),))
    assert values["sip.registered"] is True and values["phone.ip"] == "10.66.0.31"
    assert "POST security_advice.html" in session.log


def test_round_trip_wrong_pin(tmp_path: Path) -> None:
    phone = lab_phone(tmp_path)
    with pytest.raises(HttpError, match="refused"):
        run(face_transport(face.handle, phone), (("admin", "0000"), ("admin", "admin")))


def test_round_trip_other_client_holds_the_session(tmp_path: Path) -> None:
    phone = lab_phone(tmp_path)
    other = Request(
        "POST", "/login.html", {}, {}, f"language=1&password={PIN}".encode(), "10.66.0.7"
    )
    assert face.handle(other, phone).status == 302
    with pytest.raises(LockedOut):
        run(face_transport(face.handle, phone))
    bye = Request("GET", "/logout.html", {}, {}, b"", "10.66.0.7")
    face.handle(bye, phone)
    assert run(face_transport(face.handle, phone))[0]["sip.registered"] is True


def test_face_logs_out_so_the_next_client_can_log_in(tmp_path: Path) -> None:
    phone = lab_phone(tmp_path)
    run(face_transport(face.handle, phone))
    other = Request(
        "POST", "/login.html", {}, {}, f"language=1&password={PIN}".encode(), "10.66.0.7"
    )
    assert face.handle(other, phone).status == 302


def test_face_pages_need_a_session_and_unknown_paths_are_404(tmp_path: Path) -> None:
    phone = lab_phone(tmp_path)
    page = face.handle(Request("GET", "/status_device.html", {}, {}, b"", "10.66.0.9"), phone)
    assert b'name="password"' in page.body and "login.html" in page.headers["ETag"]
    assert (
        face.handle(Request("GET", "/cgi-bin/api", {}, {}, b"", "10.66.0.9"), phone).status == 404
    )
