"""The phone HTTP session: redirects, cookies, size cap, login budget, lockout, safe XML."""

import asyncio

import httpx
import pytest

from agent.config import Credential
from agent.net.http import MAX_BYTES, HttpError, LockedOut, Session


def session(handler, logins=(("admin", "admin"),), **kw):
    creds = [Credential(u, p) for u, p in logins]
    return Session("10.0.0.5", creds, timeout=1, transport=httpx.MockTransport(handler), **kw)


def run(coro):
    return asyncio.run(coro)


def test_post_redirect_becomes_get_and_keeps_the_cookie():
    seen = []

    def handler(r):
        seen.append((r.method, r.url.path, r.headers.get("cookie"), r.content))
        if r.url.path == "/login":
            return httpx.Response(302, headers={"Location": "/home", "Set-Cookie": "sid=42"})
        return httpx.Response(200, text="home")

    s = session(handler)
    reply = run(s.request("POST", "/login", data={"password": "x"}))
    assert reply.status == 200 and reply.text == "home"
    assert seen[1] == ("GET", "/home", "sid=42", b"")
    run(s.get("/status"))
    assert seen[-1][2] == "sid=42"  # the session cookie survives to the next request


def test_redirect_off_the_phone_is_refused():
    s = session(lambda r: httpx.Response(302, headers={"Location": "http://203.0.113.9/x"}))
    with pytest.raises(HttpError, match="redirects off the phone"):
        run(s.get("/"))


def test_oversized_answer_is_cut():
    s = session(lambda r: httpx.Response(200, content=b"x" * (MAX_BYTES + 10)))
    with pytest.raises(HttpError, match="larger than"):
        run(s.get("/"))


def test_login_budget_and_lockout():
    calls = []

    def refuse(r):
        calls.append(r.headers.get("authorization"))
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="p"'})

    s = session(refuse, logins=[("a", "1"), ("b", "2"), ("c", "3")])
    assert run(s.get("/")).status == 401
    assert len(calls) == 3  # one anonymous try, then the budget of two logins
    assert run(s.get("/")).status == 401 and len(calls) == 4  # budget spent: no more logins

    def locked(r):
        if "authorization" in r.headers:
            return httpx.Response(403, text="Account locked for 10 minutes")
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="p"'})

    with pytest.raises(LockedOut):
        run(session(locked).get("/"))


def test_digest_login_works_and_is_remembered():
    def handler(r):
        auth = r.headers.get("authorization", "")
        if auth.startswith("Digest"):
            return httpx.Response(200, text="ok")
        return httpx.Response(401, headers={"WWW-Authenticate": 'Digest realm="p", nonce="n"'})

    s = session(handler)
    assert run(s.get("/")).text == "ok"
    assert s.working is not None and s.working.username == "admin"
    assert "admin" not in " ".join(s.log)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>login</body></html",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
        b"",
    ],
)
def test_bad_xml_is_an_http_error(body):
    reply = run(session(lambda r: httpx.Response(200, content=body)).get("/"))
    with pytest.raises(HttpError):
        reply.xml()


def test_html_instead_of_json():
    reply = run(session(lambda r: httpx.Response(200, text="<html>")).get("/"))
    with pytest.raises(HttpError, match="expected JSON"):
        reply.json()


def test_digest_login_is_answered_again_on_the_next_request():
    nonces = iter(["n1", "n2", "n3", "n4"])

    def handler(r):
        if r.headers.get("authorization", "").startswith("Digest"):
            return httpx.Response(200, text="ok")
        return httpx.Response(
            401, headers={"WWW-Authenticate": f'Digest realm="p", nonce="{next(nonces)}"'}
        )

    s = session(handler)
    assert run(s.get("/a")).text == "ok"
    assert run(s.get("/b")).text == "ok"  # a Digest phone keeps working after the first page
    assert s.failed_logins == 0


def test_lockout_answer_without_a_login():
    with pytest.raises(LockedOut):
        run(session(lambda r: httpx.Response(429)).get("/"))


def test_the_trail_shows_each_answer_for_the_technician():
    def handler(r):
        if r.url.path == "/big":
            return httpx.Response(200, content=b"x" * (MAX_BYTES + 10))
        return httpx.Response(404 if r.url.path == "/nope" else 200, text="ok")

    s = session(handler)
    run(s.get("/status.xml"))
    run(s.get("/nope"))
    with pytest.raises(HttpError):
        run(s.get("/big"))
    assert s.trail() == [
        "GET /status.xml -> 200",
        "GET /nope -> 404",
        f"GET /big -> answer larger than {MAX_BYTES} bytes",
    ]
