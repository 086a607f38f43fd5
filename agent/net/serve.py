"""Hand one document to one device: a short-lived HTTP server on this computer.

Some phones take settings only by fetching a file (a Cisco SPA resyncs from a profile URL
it is given). ``OneFile`` serves ``body`` at an unguessable path, on the address of this
computer that faces the device, on a port the system picks, to that device's address only
(anything else gets 404), until the context ends. A firewall on this computer may keep the
phone out: then nothing is fetched, and ``fetched`` says so after its timeout.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any


def local_address(peer: str) -> str:
    """This computer's address on the route to ``peer`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((peer, 9))
        return str(s.getsockname()[0])


class _Server(HTTPServer):
    def __init__(self, addr: tuple[str, int], peer: str, path: str, body: bytes, ctype: str):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)
        self.peer, self.want, self.body, self.ctype = peer, path, body, ctype
        self.done = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a broken connection from the device: it simply did not fetch


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5

    def do_GET(self) -> None:
        srv = self.server
        if self.client_address[0] != srv.peer or self.path != srv.want:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", srv.ctype)
        self.send_header("Content-Length", str(len(srv.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(srv.body)
        srv.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class OneFile:
    """``async with OneFile(peer, body, "spa.xml") as f:`` give ``f.url`` to the device,
    then ``await f.fetched(timeout)``."""

    def __init__(self, peer: str, body: bytes, name: str, ctype: str = "text/xml") -> None:
        self.peer, self.body, self.name, self.ctype = peer, body, name, ctype
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    async def __aenter__(self) -> OneFile:
        host = local_address(self.peer)
        path = f"/{secrets.token_urlsafe(16)}/{self.name}"
        self._server = _Server((host, 0), self.peer, path, self.body, self.ctype)
        port = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}{path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    async def fetched(self, timeout: float) -> bool:
        """True once the device has fetched the file; False after ``timeout`` seconds."""
        assert self._server is not None
        return await asyncio.to_thread(self._server.done.wait, timeout)

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server.server_close()
