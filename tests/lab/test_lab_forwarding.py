"""Forwarding, DND and absent subscriber at the provider, as OVHcloud does it (root only).

A phone dials a feature code (``*21*NUMBER#``...) through its real baresip; the real Kamailio
registrar keeps the line's options in htable ``opts``, shared with the OVHcloud API stand-in;
an INVITE to a forwarded line never reaches its phone and goes to the PSTN gateway (a real
baresip at 100.64.66.6) or to the target line. Run in a loopback-only namespace, e.g.
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/lab -x -q'
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lab import Lab, netns, topology
from lab.services import kamailio

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="the lab needs iproute2's `ip`"),
]

FORWARD_TO = "0612345678"
REGISTER_PORT = 5099  # the agent host's port for the test's own REGISTERs
RESET = {"forwardUnconditional": False, "doNotDisturb": False, "absentSubscriber": False}


# -- helpers ---------------------------------------------------------------------------------
def wait_for(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll ``check`` until it returns something truthy (or ``timeout``); return the last."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def closed_reason(events: list[dict[str, Any]]) -> str | None:
    """The final answer baresip reports for a call (CALL_CLOSED's param)."""
    closed = [e for e in events if e.get("type") == "CALL_CLOSED"]
    return str(closed[-1].get("param")) if closed else None


def line_of(lab: Lab, role: str) -> str:
    return next(p["line"] for p in lab.phones if p["role"] == role)


def reset_options(lab: Lab) -> None:
    for ph in lab.phones:
        for name, value in RESET.items():
            lab.set_line_option(ph["line"], name, value)


def call_and_trace(lab: Lab, caller: str, callee: str) -> tuple[list[str], list[Any], list[Any]]:
    """Call ``callee``'s line from ``caller``; return the caller's events, the calls that
    reached the callee's phone and those that reached the PSTN gateway, during this call."""
    seen, pstn = len(lab.incoming_calls(callee)), len(lab.pstn_calls())
    events = lab.call(caller, callee)
    time.sleep(0.3)  # the callee's controller records events asynchronously
    return events, lab.incoming_calls(callee)[seen:], lab.pstn_calls()[pstn:]


def sip_exchange(lab: Lab, message: str, port: int = 0, timeout: float = 3.0) -> list[str]:
    """Send one SIP request from the agent host (UDP ``port``, 0: any) to the registrar;
    return the answers until a final one (or ``timeout``). PORT in ``message`` becomes the
    local port."""
    sock = netns.socket_in(lab.ns("agent"), socket.AF_INET, socket.SOCK_DGRAM)
    answers: list[str] = []
    with sock:
        sock.bind((topology.AGENT_IP, port))
        port = sock.getsockname()[1]
        sock.sendto(message.replace("PORT", str(port)).encode(), (topology.PROVIDER_IPS[0], 5060))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                break
            answers.append(data)
            if not data.startswith("SIP/2.0 1"):
                break
    return answers


def request(method: str, uri: str, from_user: str, extra: str = "", cseq: int = 1) -> str:
    """A SIP request from ``from_user``'s line at the agent host (PORT: its local port); a
    REGISTER's To is the line's AoR."""
    aor = f"sip:{from_user}@{kamailio.DOMAIN}"
    to = aor if method == "REGISTER" else uri
    branch, tag = secrets.token_hex(6), secrets.token_hex(4)
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {topology.AGENT_IP}:PORT;branch=z9hG4bK{branch};rport\r\n"
        f"From: <{aor}>;tag={tag}\r\nTo: <{to}>\r\nCall-ID: {secrets.token_hex(8)}\r\n"
        f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:{from_user}@{topology.AGENT_IP}:PORT>\r\n"
        f"User-Agent: phonediag-lab-test\r\n{extra}Content-Length: 0\r\n\r\n"
    )


def digest(challenge: str, user: str, password: str, method: str, uri: str) -> str:
    """An Authorization value answering a 401/407 challenge (MD5, qop=auth if offered)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split("Digest", 1)[1]))
    ha1 = hashlib.md5(f"{user}:{params['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    nonce = params["nonce"]
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(4), "00000001"
        text = f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        text, extra = f"{ha1}:{nonce}:{ha2}", ""
    response = hashlib.md5(text.encode()).hexdigest()
    return (
        f'Digest username="{user}", realm="{params["realm"]}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5{extra}'
    )


def header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*?)\r?$", message, re.M | re.I)
    assert match, message
    return match.group(1)


def register(lab: Lab, line: str, expires: int) -> str:
    """REGISTER ``line`` from the agent host (UDP REGISTER_PORT, so the Contact is the same
    each time) with digest auth; return the final status line."""
    uri = f"sip:{kamailio.DOMAIN}"
    extra = f"Expires: {expires}\r\n"
    first = sip_exchange(lab, request("REGISTER", uri, line, extra), REGISTER_PORT)
    assert first and first[-1].startswith("SIP/2.0 401"), first
    password = lab.state.passwords[line]
    auth = digest(header(first[-1], "WWW-Authenticate"), line, password, "REGISTER", uri)
    again = request("REGISTER", uri, line, f"{extra}Authorization: {auth}\r\n", cseq=2)
    final = sip_exchange(lab, again, REGISTER_PORT)
    return final[-1].splitlines()[0] if final else "no answer"


# -- forwarding-left-on: the fault as a user leaves it -----------------------------------------
@pytest.fixture(scope="module")
def forwarding() -> Iterator[Lab]:
    with Lab.up("forwarding-left-on", phones=2) as lab:
        yield lab


def test_forward_left_on_lives_at_the_provider_not_in_the_phone(forwarding: Lab) -> None:
    options = forwarding.line_options("1001")
    assert options["forwardUnconditional"] == "true", options
    assert options["forwardUnconditionalNumber"] == FORWARD_TO, options
    assert forwarding.phone_state("phone1")["forward"] == {"always": "", "busy": "", "noanswer": ""}
    assert forwarding.phone_state("phone1")["dnd"] is False
    assert forwarding.line_options("1002").get("forwardUnconditional") != "true"
    kam_log = (forwarding.state.dir / "logs" / "kamailio.log").read_text()
    assert f"line 1001: feature code *21*{FORWARD_TO}#" in kam_log


def test_forwarded_call_goes_to_the_pstn_and_phone_never_sees_it(forwarding: Lab) -> None:
    events, at_phone, at_pstn = call_and_trace(forwarding, "phone2", "phone1")
    assert "CALL_ESTABLISHED" in events, events  # the PSTN gateway picked up
    assert at_phone == [], at_phone
    assert len(at_pstn) == 1, at_pstn
    call = at_pstn[0]
    assert call["called_number"] == FORWARD_TO
    assert call["from"] == f"sip:1002@{kamailio.DOMAIN}"
    assert call["to"] == f"sip:1001@{kamailio.DOMAIN}"  # the line called first
    assert "sip:1001@" in call["diversion"] and "reason=unconditional" in call["diversion"]
    assert call["status"] == 200


def test_api_stand_in_sees_the_forward_the_phone_dialled(forwarding: Lab) -> None:
    path = f"/telephony/{forwarding.api_account}/line/1001/options"
    status, options = forwarding.api_call("GET", path)
    assert status == 200, options
    assert options["forwardUnconditional"] is True, options
    assert options["forwardUnconditionalNumber"] == FORWARD_TO, options


def test_cancel_code_turns_the_forward_off_and_calls_reach_the_phone(forwarding: Lab) -> None:
    events = forwarding.dial_events("phone1", "#21#")
    assert closed_reason(events) == "603 Renvoi immediat desactive", events
    assert forwarding.line_options("1001")["forwardUnconditional"] == "false"
    events, at_phone, at_pstn = call_and_trace(forwarding, "phone2", "phone1")
    assert "CALL_ESTABLISHED" in events, events
    assert [c["peer"] for c in at_phone] == [f"sip:1002@{kamailio.DOMAIN}"], at_phone
    assert at_pstn == []


def test_reactivate_with_stored_number_then_cancel_all_escaped(forwarding: Lab) -> None:
    events = forwarding.dial_events("phone1", "*21#")
    assert closed_reason(events) == f"603 Renvoi immediat active vers {FORWARD_TO}", events
    assert forwarding.line_options("1001")["forwardUnconditional"] == "true"
    _events, at_phone, at_pstn = call_and_trace(forwarding, "phone2", "phone1")
    assert at_phone == [] and [c["called_number"] for c in at_pstn] == [FORWARD_TO]
    # "#002" with the '#' escaped as most desk phones send it: sip:%23002@...
    events = forwarding.dial_events("phone1", "%23002")
    assert closed_reason(events) == "603 Tous les renvois desactives", events
    options = forwarding.line_options("1001")
    assert [options[k] for k in ("forwardUnconditional", "forwardBusy", "forwardNoReply")] == [
        "false"
    ] * 3
    events, at_phone, at_pstn = call_and_trace(forwarding, "phone2", "phone1")
    assert "CALL_ESTABLISHED" in events and len(at_phone) == 1 and at_pstn == [], events


def test_forward_set_through_the_api_diverts_calls(forwarding: Lab) -> None:
    path = f"/telephony/{forwarding.api_account}/line/1001/options"
    body = {"forwardUnconditional": True, "forwardUnconditionalNumber": "0033972101010"}
    status, answer = forwarding.api_call("PUT", path, body)
    assert status == 200, answer
    try:
        assert forwarding.line_options("1001")["forwardUnconditional"] == "true"
        _events, at_phone, at_pstn = call_and_trace(forwarding, "phone2", "phone1")
        assert at_phone == [], at_phone
        assert [c["called_number"] for c in at_pstn] == ["0033972101010"], at_pstn
    finally:
        forwarding.set_line_option("1001", "forwardUnconditional", False)


# -- healthy: no false alarm, and every option through the registrar ------------------------
@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    with Lab.up("healthy") as lab:
        yield lab


@pytest.fixture
def office(healthy: Lab) -> Iterator[Lab]:
    """The healthy lab, its lines' options reset after the test."""
    yield healthy
    reset_options(healthy)


def test_healthy_no_forward_and_calls_reach_the_phone(office: Lab) -> None:
    for ph in office.phones:
        assert office.line_options(ph["line"]).get("forwardUnconditional") != "true"
    events, at_phone, at_pstn = call_and_trace(office, "phone2", "phone1")
    assert "CALL_ESTABLISHED" in events, events
    assert len(at_phone) == 1 and at_pstn == []
    assert office.pstn_calls() == []


def test_registrar_state_has_the_same_effect_as_the_feature_code(office: Lab) -> None:
    office.set_line_option("1001", "forwardUnconditionalNumber", "0699887766")
    office.set_line_option("1001", "forwardUnconditional", True)
    assert office.line_options("1001")["forwardUnconditionalNumber"] == "0699887766"  # digits kept
    events, at_phone, at_pstn = call_and_trace(office, "phone2", "phone1")
    assert "CALL_ESTABLISHED" in events and at_phone == [], (events, at_phone)
    assert [c["called_number"] for c in at_pstn] == ["0699887766"]
    office.set_line_option("1001", "forwardUnconditional", False)
    _events, at_phone, at_pstn = call_and_trace(office, "phone2", "phone1")
    assert len(at_phone) == 1 and at_pstn == []


def test_forward_to_another_line_rings_that_phone(office: Lab) -> None:
    office.set_line_option("1001", "forwardUnconditionalNumber", "1002")
    office.set_line_option("1001", "forwardUnconditional", True)
    seen2, pstn = len(office.incoming_calls("phone2")), len(office.pstn_calls())
    events, at_phone1, _ = call_and_trace(office, "phone3", "phone1")
    assert "CALL_ESTABLISHED" in events and at_phone1 == [], (events, at_phone1)
    at_phone2 = wait_for(lambda: office.incoming_calls("phone2")[seen2:])
    assert [c["peer"] for c in at_phone2] == [f"sip:1003@{kamailio.DOMAIN}"]
    assert len(office.pstn_calls()) == pstn


def test_dnd_code_rejects_callers_then_clears(office: Lab) -> None:
    assert closed_reason(office.dial_events("phone1", "*26#")) == "603 Ne pas deranger active"
    assert office.line_options("1001")["doNotDisturb"] == "true"
    seen = len(office.incoming_calls("phone1"))
    events = office.dial_events("phone2", "1001")
    assert closed_reason(events) == "486 Do Not Disturb", events
    assert office.incoming_calls("phone1")[seen:] == []
    assert office.phone_state("phone1")["dnd"] is False  # the phone's own DND is untouched
    assert closed_reason(office.dial_events("phone1", "#26#")) == "603 Ne pas deranger desactive"
    assert office.line_options("1001")["doNotDisturb"] == "false"
    assert "CALL_ESTABLISHED" in office.call("phone2", "phone1")


def test_absent_subscriber_code_answers_480(office: Lab) -> None:
    assert closed_reason(office.dial_events("phone3", "*24%23")) == "603 Abonne absent active"
    events = office.dial_events("phone1", "1003")
    assert closed_reason(events) == "480 Absent Subscriber", events
    assert closed_reason(office.dial_events("phone3", "#24#")) == "603 Abonne absent desactive"
    assert "CALL_ESTABLISHED" in office.call("phone1", "phone3")


def test_query_and_unknown_codes(office: Lab) -> None:
    assert closed_reason(office.dial_events("phone2", "*#21#")) == "603 Renvoi immediat inactif"
    assert closed_reason(office.dial_events("phone2", "*21#")) == "484 Aucun numero de renvoi"
    assert closed_reason(office.dial_events("phone2", "*99#")) == "404 Code de service inconnu"
    assert office.line_options("1002").get("forwardUnconditional") != "true"


def test_feature_code_needs_the_line_password(office: Lab) -> None:
    uri = f"sip:*21*0600000000%23@{kamailio.DOMAIN}"
    answers = sip_exchange(office, request("INVITE", uri, "1002"))
    assert answers and answers[-1].startswith("SIP/2.0 407"), answers
    assert "forwardUnconditionalNumber" not in office.line_options("1002")


def test_each_register_is_recorded_but_not_an_unregister(office: Lab) -> None:
    for ph in office.phones:
        rows = office.last_registrations(ph["line"])
        assert rows, ph["line"]
        assert rows[-1]["user_agent"] == ph["user_agent"]
        assert rows[-1]["local_ip"] == ph["ip"] and rows[-1]["ip"] == topology.ROUTER_WAN_IP
        assert rows[-1]["domain"] == kamailio.DOMAIN

    def mine() -> list[dict[str, str]]:
        return [r for r in office.last_registrations("1003") if "lab-test" in r["user_agent"]]

    assert register(office, "1003", 60).startswith("SIP/2.0 200")
    assert len(mine()) == 1 and mine()[0]["local_ip"] == topology.AGENT_IP
    assert register(office, "1003", 0).startswith("SIP/2.0 200")
    assert len(mine()) == 1
    bound = [b["address"] for b in office.registrations() if b["aor"] == "1003"]
    assert not any(topology.AGENT_IP in a for a in bound), bound
