"""Phone personalities: each lab phone's management face, shaped as its vendor documents it.

A real phone's firmware cannot run here, so this is the one stand-in of the lab: a
small HTTP server per phone (``lab.personalities.server``) that answers on the paths,
with the authentication, field names and formats of the vendor's documentation, from
the phone's state file. The same state drives the phone's real SIP UA (baresip): DND
on means incoming calls are rejected, a wrong password means the registrar's real
401/403 loop.

A family module ``lab/personalities/<vendor>.py`` defines::

    def handle(req: Request, phone: Phone) -> Response

The state file (``<lab state>/<role>/phone-state.json``) holds::

    vendor, model, firmware, mac, ip, line, registrar ("sip.ovh.test"),
    admin {username, password},            # the web login of this phone
    dnd (bool), forward {always, busy, noanswer} (target number or ""),
    clock_offset_s (phone clock minus true time), provisioning_url, outbound_proxy,
    transport ("udp"), expires (registration interval, s),
    sip_password (what the phone holds for its line: a wrong one in wrong-password),
    provisioning_server ("ip:port" where the lab reaches OVHcloud's *.prov.voip.ovh.net)

A face that reboots or resyncs the phone calls ``phone.reboot(reason)`` or
``phone.resync(url, reason)``: the controller (``controller.py``) does it in a thread after
the answer, and the face answers 503 to everything while the phone boots.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    client: str = ""
    raw_query: str = ""  # the request target after "?", undecoded (Cisco's resync URL)

    def form(self) -> dict[str, str]:
        """A urlencoded POST body as a dict."""
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def text(
        cls, body: str, ctype: str = "text/html; charset=utf-8", status: int = 200
    ) -> Response:
        return cls(status, {"Content-Type": ctype}, body.encode())

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, {"Content-Type": "application/json"}, json.dumps(data).encode())

    @classmethod
    def not_found(cls) -> Response:
        return cls.text("<html><body>404 Not Found</body></html>", status=404)


RegistrationReader = Callable[[], dict[str, Any]]


class Firmware(Protocol):
    """What drives the phone's SIP UA (the controller): boots and profile resyncs."""

    def boot_async(self, reason: str) -> None: ...

    def resync_async(self, url: str | None, reason: str) -> None: ...


Handler = Callable[["Request", "Phone"], "Response"]


def dated(handler: Handler) -> Handler:
    """Give every answer a ``Date`` header from the phone's own clock (as real phones do),
    unless the face set one."""

    def handle(req: Request, phone: Phone) -> Response:
        resp = handler(req, phone)
        resp.headers.setdefault("Date", email.utils.formatdate(phone.now(), usegmt=True))
        return resp

    return handle


def local_time(epoch: float) -> datetime:
    """``epoch`` in the lab phones' time zone (Europe/Paris; standard time without tzdata)."""
    try:
        from zoneinfo import ZoneInfo

        return datetime.fromtimestamp(epoch, ZoneInfo("Europe/Paris"))
    except Exception:  # no tz database here: standard time
        return datetime.fromtimestamp(epoch, timezone(timedelta(hours=1)))


class Phone:
    """The phone behind the face: its state file, its clock, its line's registration."""

    def __init__(
        self,
        state_file: Path,
        registration: RegistrationReader | None = None,
        firmware: Firmware | None = None,
    ) -> None:
        self.state_file = state_file
        self.state: dict[str, Any] = json.loads(state_file.read_text())
        self._registration = registration
        self._firmware = firmware

    def save(self) -> None:
        """Write the state file atomically, owner-only (it holds the passwords)."""
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.state, fh, indent=2)
        tmp.replace(self.state_file)

    def reboot(self, reason: str) -> None:
        """Reboot once the current answer is sent (nothing without a controller)."""
        if self._firmware is not None:
            self._firmware.boot_async(reason)

    def resync(self, url: str | None, reason: str) -> None:
        """Fetch and apply a profile (``url``, else the phone's own) after the answer."""
        if self._firmware is not None:
            self._firmware.resync_async(url, reason)

    def now(self) -> float:
        """The phone's clock (epoch seconds): true time plus the state's offset."""
        return time.time() + float(self.state.get("clock_offset_s", 0))

    def registration(self) -> dict[str, Any]:
        """{registered: bool, status: int|None, reason: str|None} from the real SIP UA."""
        if self._registration is None:
            return {"registered": False, "status": None, "reason": None}
        return self._registration()
