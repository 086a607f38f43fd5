"""OVHcloud's provisioning server (``*.prov.voip.ovh.net``), served by the API stand-in.

A Plug & Phone phone asks ``GET /<any path>/<mac12>.xml`` over plain HTTP when it boots.
OVHcloud serves a line's configuration only to the public IP given to
``POST /telephony/{ba}/line/{sn}/phone/resetConfig`` (its "automatic re-configuration"), so:

- the MAC is no line's phone (``macAddress`` in the account file), or the path is not
  ``.../<12 hex digits>.xml``: 404;
- that line had a ``resetConfig`` whose ``ip`` is the request's source address within the
  last RESET_WINDOW_S: 200, a ``<flat-profile>`` with the line (``User_ID_1_``), its SIP
  password (the account's per-line ``sip_password``; left out when the account has none),
  the SIP domain (``Proxy_1_``), ``Register_Expires_1_`` 1800, DND off, no forwarding, and
  ``Profile_Rule`` = the URL asked (from ``Host`` and the path);
- otherwise: 403.

In the lab the phones come through the router's NAT, so the source is the office's public
address (100.64.66.2), which is what the agent gives resetConfig. Every fetch is logged
(``provisioning <mac12> from <ip>: <status>``) and, with a record file, appended to it as one
JSON object per line: time, mac, ip, status, path.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lab.services.ovhapi.schema import normal_mac
from lab.services.ovhapi.server import StandIn

PORT = 80
RESET_WINDOW_S = 3600.0
EXPIRES = 1800  # OVHcloud's recommended registration interval
MAC_PATH = re.compile(r"^/(?:.*/)?(?P<mac>[0-9A-Fa-f]{12})\.xml$")


class Provisioning:
    """Answers profile requests from the stand-in's account and its resetConfig calls."""

    def __init__(
        self, api: StandIn, record: Path | None = None, log: Callable[[str], None] | None = None
    ) -> None:
        self.api, self.record = api, record
        self.log = log or api.log
        self.fetches: list[dict[str, Any]] = []  # every request, oldest first
        self._lock = threading.Lock()

    def answer(self, target: str, host: str, client: str) -> tuple[int, str]:
        """(status, body) for ``GET target`` with ``Host: host`` from address ``client``."""
        path = urlsplit(target).path
        match = MAC_PATH.match(path)
        mac = match["mac"].lower() if match else "-"
        found = self._line(mac) if match else None
        if found is None:
            status, body = 404, "404 Not Found\n"
        elif not self._reset_for(found[0], found[1], client):
            status, body = 403, "403 Forbidden: no configuration reset for this address\n"
        else:
            status, body = 200, self.profile(found[1], found[2], f"http://{host}{path}")
        self._note(mac, client, status, path)
        return status, body

    def _line(self, mac12: str) -> tuple[str, str, dict[str, Any]] | None:
        """(billing account, line, its config) of the line whose phone has MAC ``mac12``."""
        for ba, account in self.api.account.billing_accounts.items():
            for sn, line in account["lines"].items():
                phone = line.get("phone")
                if phone and normal_mac(str(phone["macAddress"])).replace(":", "") == mac12:
                    return ba, sn, line
        return None

    def _reset_for(self, ba: str, sn: str, client: str) -> bool:
        now = self.api.now()
        return any(
            a["action"] == "resetConfig"
            and (a["billingAccount"], a["serviceName"]) == (ba, sn)
            and a.get("ip") == client
            and 0 <= now - a["time"] <= RESET_WINDOW_S
            for a in list(self.api.actions)
        )

    def profile(self, sn: str, line: dict[str, Any], url: str) -> str:
        """The line's ``<flat-profile>``."""
        rows: list[tuple[str, object]] = [("User_ID_1_", sn)]
        if isinstance(line.get("sip_password"), str):
            rows.append(("Password_1_", line["sip_password"]))
        rows += [
            ("Proxy_1_", self.api.account.sip_domain),
            ("Register_Expires_1_", EXPIRES),
            ("DND_Setting", "No"),
            ("Cfwd_All_Dest", ""),
            ("Cfwd_Busy_Dest", ""),
            ("Cfwd_No_Ans_Dest", ""),
            ("Profile_Rule", url),
        ]
        body = "".join(f"<{k}>{escape(str(v))}</{k}>\n" for k, v in rows)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<flat-profile>\n{body}</flat-profile>\n'

    def _note(self, mac: str, client: str, status: int, path: str) -> None:
        entry = {"time": self.api.now(), "mac": mac, "ip": client, "status": status, "path": path}
        with self._lock:
            self.fetches.append(entry)
            if self.record is not None:
                with self.record.open("a") as fh:
                    fh.write(json.dumps(entry) + "\n")
        self.log(f"provisioning {mac} from {client}: {status}")


def make_handler(prov: Provisioning) -> type[BaseHTTPRequestHandler]:
    class ProvisioningHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        server_version = "nginx"
        sys_version = ""

        def do_GET(self) -> None:
            host = self.headers.get("Host") or self.server.server_address[0]
            status, body = prov.answer(self.path, str(host), self.client_address[0])
            ctype = "text/xml; charset=utf-8" if status == 200 else "text/plain; charset=utf-8"
            self._send(status, body.encode(), ctype)

        do_HEAD = do_GET

        def _send(self, status: int, data: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """Other methods (501) and malformed requests: a short text, then close."""
            self.close_connection = True
            if getattr(self, "request_version", "") in ("", "HTTP/0.9"):
                self.request_version = "HTTP/1.1"
            self._send(code, f"{code} {message or ''}\n".encode(), "text/plain")

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Requests are logged by ``Provisioning.answer``."""

        def log_message(self, format: str, *args: Any) -> None:
            prov.log(f"provisioning {self.client_address[0]} {format % args}")

    return ProvisioningHandler


class ProvisioningServer(ThreadingHTTPServer):
    """Plain HTTP, one thread per request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], prov: Provisioning) -> None:
        self.prov = prov
        super().__init__(addr, make_handler(prov))

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.prov.log(f"provisioning: {client_address[0]} failed: {sys.exc_info()[1]!r}")
