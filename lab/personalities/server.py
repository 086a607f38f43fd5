"""A phone's web face: ``python -m lab.personalities.server --state F --listen IP:PORT --family V``.

Started by the lab inside the phone's namespace (on its LAN address, port 80). Each HTTP
request becomes a ``Request`` for ``lab.personalities.<family>.handle(req, phone)``; the
``Phone`` is re-read from the state file for every request, and its registration comes from
the controller thread that drives the phone's baresip (``controller.py``). A family module
that does not exist yet gets 404 for everything; a handler that raises gives a 500 and a log
line: the face never dies. While the phone boots (a reboot page, ``lab_boot``), every request
gets a 503.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from lab.personalities import Phone, Request, Response
from lab.personalities.controller import Controller
from lab.personalities.ctrlmux import log

MAX_BODY = 64 * 1024
DRAIN_MAX = 1024 * 1024  # an oversized body is read (and dropped) up to this, then refused
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
FAMILY_RE = re.compile(r"^[a-z][a-z0-9_]*$")

Handler = Callable[[Request, Phone], Response]


class Face:
    """What every request needs: the family's handler, the state file, the controller."""

    def __init__(self, family: str, state_file: Path, controller: Controller | None) -> None:
        if not FAMILY_RE.match(family):
            raise ValueError(f"bad family name {family!r}")
        self.family, self.state_file, self.controller = family, state_file, controller
        self.module: ModuleType | None = None
        self.lock = threading.Lock()
        self.missing_logged = False

    def handler(self) -> Handler | None:
        """The family's ``handle`` (imported on first use, retried while it is missing)."""
        with self.lock:
            if self.module is None:
                name = f"lab.personalities.{self.family}"
                importlib.invalidate_caches()
                try:
                    self.module = importlib.import_module(name)
                except ModuleNotFoundError as exc:
                    if exc.name != name:
                        raise
                    if not self.missing_logged:
                        log(f"no module {name} yet: answering 404 to everything")
                        self.missing_logged = True
                    return None
                log(f"face module {name} loaded")
            return self.module.handle  # type: ignore[no-any-return]

    def phone(self) -> Phone:
        reader = self.controller.registration if self.controller else None
        return Phone(self.state_file, registration=reader, firmware=self.controller)

    def respond(self, req: Request) -> Response:
        """The family's answer; 404 without a module, 500 (logged) when it fails, 503 while
        the phone boots."""
        if self.controller and self.controller.booting:
            return Response.text("<html><body>503 Service Unavailable</body></html>", status=503)
        try:
            handle = self.handler()
            if handle is None:
                return Response.not_found()
            phone = self.phone()
            before = dict(phone.state)
            response = handle(req, phone)
            if not isinstance(response, Response):
                raise TypeError(f"handle() returned {type(response).__name__}, not Response")
            if self.controller and self._state_changed(before):
                self.controller.reload()  # e.g. DND set from the web page: baresip follows now
            return response
        except Exception:
            log(f"{req.method} {req.path}: handler failed\n{traceback.format_exc().rstrip()}")
            return Response.text("<html><body>500 Internal Server Error</body></html>", status=500)

    def _state_changed(self, before: dict[str, Any]) -> bool:
        try:
            return Phone(self.state_file).state != before
        except (OSError, ValueError):
            return False


def make_handler(face: Face) -> type[BaseHTTPRequestHandler]:
    class FaceHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def _dispatch(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._write(Response.text("400 Bad Request", status=400), close=True)
                return
            if length > MAX_BODY:
                self._discard(min(length, DRAIN_MAX))  # so the client reads the 413, not a RST
                self._write(Response.text("413 Request Entity Too Large", status=413), close=True)
                return
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            req = Request(
                method=self.command,
                path=url.path or "/",
                query=dict(parse_qsl(url.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client=self.client_address[0],
                raw_query=url.query,
            )
            self._write(face.respond(req))

        def _discard(self, size: int) -> None:
            while size > 0 and (chunk := self.rfile.read(min(size, 65536))):
                size -= len(chunk)

        def _write(self, resp: Response, close: bool = False) -> None:
            self.send_response_only(resp.status)
            if not any(k.lower() == "date" for k in resp.headers):
                self.send_header("Date", self.date_time_string())
            for key, value in resp.headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            self.log_request(resp.status)

        def log_message(self, format: str, *args: Any) -> None:
            log(f"{self.client_address[0]} {format % args}")

    for method in METHODS:
        setattr(FaceHandler, f"do_{method}", FaceHandler._dispatch)
    return FaceHandler


class FaceServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log(f"connection from {client_address[0]} failed: {sys.exc_info()[1]!r}")


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.personalities.server")
    parser.add_argument("--state", type=Path, required=True, help="phone-state.json")
    parser.add_argument("--listen", required=True, help="IP:PORT, the phone's LAN address")
    parser.add_argument("--family", required=True, help="vendor: lab/personalities/<family>.py")
    parser.add_argument("--sip-log", type=Path, help="baresip's log (REGISTER before we connect)")
    parser.add_argument("--no-controller", action="store_true", help="HTTP face only")
    args = parser.parse_args(argv)
    controller = None if args.no_controller else Controller(args.state, args.sip_log)
    if controller:
        controller.start()
    face = Face(args.family, args.state, controller)
    server = FaceServer(parse_addr(args.listen), make_handler(face))
    log(f"{args.family} face on http://{args.listen}/")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
