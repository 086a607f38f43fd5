"""Run an adapter against a lab personality in-process (httpx.MockTransport), no network."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import Session
from agent.vendors import base
from lab.personalities import Phone, Request, Response


def face_transport(handle, phone: Phone) -> httpx.MockTransport:
    """An httpx transport answering with a personality's ``handle(req, phone)``."""

    def serve(r: httpx.Request) -> httpx.Response:
        req = Request(
            method=r.method,
            path=r.url.path,
            query=dict(parse_qsl(r.url.query.decode(), keep_blank_values=True)),
            headers={k.lower(): v for k, v in r.headers.items()},
            body=r.content,
            client="10.66.0.100",
            raw_query=r.url.query.decode(),
        )
        resp: Response = handle(req, phone)
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body)

    return httpx.MockTransport(serve)


def static_transport(routes: dict[str, tuple[int, str, bytes]]) -> httpx.MockTransport:
    """Fixed answers by path (status, content type, body): for documented response shapes."""

    def serve(r: httpx.Request) -> httpx.Response:
        status, ctype, body = routes.get(r.url.path, (404, "text/html", b"not found"))
        return httpx.Response(status, headers={"Content-Type": ctype}, content=body)

    return httpx.MockTransport(serve)


def make_phone(tmp: Path, **state: Any) -> Phone:
    f = tmp / "phone-state.json"
    f.write_text(json.dumps(state))
    return Phone(
        f,
        registration=lambda: state.get(
            "_registration", {"registered": True, "status": 200, "reason": "OK"}
        ),
    )


def read(adapter, device: Device, transport, logins=(("admin", "admin"),)) -> dict[str, Any]:
    creds = [Credential(u, p) for u, p in logins]
    session = Session(device.ip, creds, timeout=2, transport=transport)
    ctx = base.Context(device, Config(), session)
    return asyncio.run(adapter.read(ctx))
