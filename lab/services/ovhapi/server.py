"""The stand-in's HTTP side: routing, handlers, and an HTTPS ThreadingHTTPServer.

``StandIn.handle()`` turns one request into a ``Reply`` and never raises: API errors become
their JSON body, a registrar failure or a bug becomes a 500 JSON body (the traceback goes to
the log only). The server adds ``X-Ovh-QueryId`` to every response and logs one line per
request.
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import json
import os
import re
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lab.services.ovhapi import auth, errors, schema
from lab.services.ovhapi.errors import ApiError
from lab.services.ovhapi.store import KamailioStore, MemoryStore, Store, StoreError

PREFIX = "/1.0"
MAX_BODY = 64 * 1024
DRAIN_MAX = 1024 * 1024  # an oversized body is read (and dropped) up to this, then refused
HANDSHAKE_TIMEOUT = 10.0
# The manager offers no remote reboot for these brands and reads HTTP 501 as "not supported".
NO_REBOOT = re.compile(r"^phone\.(gigaset|cisco\.spa112)")

LogFn = Callable[[str], None]


def log(text: str) -> None:
    """One line on stderr (the process log)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


@dataclass
class Reply:
    status: int
    payload: Any  # any JSON value; None is sent as `null`
    error_code: str | None = None


_LINE = "/telephony/{ba}/line/{sn}"
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/auth/time", "auth_time"),
    ("GET", "/telephony", "billing_accounts"),
    ("GET", "/telephony/{ba}/line", "line_list"),
    ("GET", _LINE, "line"),
    ("GET", _LINE + "/options", "get_options"),
    ("PUT", _LINE + "/options", "put_options"),
    ("GET", _LINE + "/lastRegistrations", "last_registrations"),
    ("GET", _LINE + "/ips", "ips"),
    ("GET", _LINE + "/phone", "phone"),
    ("POST", _LINE + "/phone/reboot", "reboot"),
    ("POST", _LINE + "/phone/resetConfig", "reset_config"),
]
UNSIGNED = {"auth_time"}
_COMPILED = [
    (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"), name)
    for method, path, name in ROUTES
]


def route(method: str, api_path: str) -> tuple[str, dict[str, str]] | None:
    """(handler name, path parameters) of a request, or None."""
    for verb, pattern, name in _COMPILED:
        match = pattern.match(api_path)
        if match and verb == method:
            return name, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


class StandIn:
    """The API's behaviour, independent of HTTP (one per server)."""

    def __init__(
        self,
        account: auth.Account,
        store: Store,
        clock: Callable[[], float] = time.time,
        log: LogFn = log,
    ) -> None:
        self.account, self.store, self.clock, self.log = account, store, clock, log
        self.clock_offset = 0.0  # tests move the server's clock with this
        self.actions: list[dict[str, Any]] = []  # reboot / resetConfig calls, in order
        self._tasks = itertools.count(1)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.clock() + self.clock_offset

    def handle(
        self,
        method: str,
        target: str,
        host: str,
        headers: Mapping[str, str],
        body: bytes,
        scheme: str = "https",
    ) -> Reply:
        """Answer one request (``target`` as on the request line, ``headers`` lower-case)."""
        try:
            return self._handle(method, target, host, headers, body, scheme)
        except ApiError as exc:
            return Reply(exc.status, exc.body(), exc.error_code)
        except StoreError as exc:
            self.log(f"{method} {target}: registrar: {exc}")
            err = ApiError(500, "Internal server error")
            return Reply(500, err.body())
        except Exception:
            self.log(f"{method} {target}: failed\n{traceback.format_exc().rstrip()}")
            err = ApiError(500, "Internal server error")
            return Reply(500, err.body())

    def _handle(
        self,
        method: str,
        target: str,
        host: str,
        headers: Mapping[str, str],
        body: bytes,
        scheme: str,
    ) -> Reply:
        path = urlsplit(target).path
        if not path.startswith(PREFIX + "/"):
            raise errors.invalid_url()
        api_path = path[len(PREFIX) :]
        found = route(method, api_path)
        if found is None:
            raise errors.invalid_url()
        name, params = found
        text = body.decode("utf-8", "replace")
        if name not in UNSIGNED:
            urls = auth.full_urls(scheme, host, target)
            auth.authenticate(self.account, method, api_path, urls, headers, text, self.now())
        data = None
        if method != "GET" and text.strip():
            try:
                data = json.loads(text)
            except ValueError:
                raise errors.bad_request("Invalid JSON received") from None  # assumed wording
        return Reply(200, getattr(self, "_" + name)(params, data))

    # ------------------------------------------------------------ lookups

    def _lines_of(self, ba: str) -> dict[str, Any]:
        account = self.account.billing_accounts.get(ba)
        if account is None:
            raise errors.not_found("billingAccount", ba)
        return account["lines"]  # type: ignore[no-any-return]

    def _line_cfg(self, p: Mapping[str, str]) -> dict[str, Any]:
        line = self._lines_of(p["ba"]).get(p["sn"])
        if line is None:
            raise errors.not_found("serviceName", p["sn"])
        return line  # type: ignore[no-any-return]

    def _phone_cfg(self, p: Mapping[str, str]) -> dict[str, Any]:
        phone = self._line_cfg(p).get("phone")
        if not phone:
            raise errors.not_found("serviceName", p["sn"])  # assumed wording for "no phone"
        return phone  # type: ignore[no-any-return]

    # ------------------------------------------------------------ handlers

    def _auth_time(self, _p: Mapping[str, str], _data: Any) -> int:
        return int(self.now())

    def _billing_accounts(self, _p: Mapping[str, str], _data: Any) -> list[str]:
        return sorted(self.account.billing_accounts)

    def _line_list(self, p: Mapping[str, str], _data: Any) -> list[str]:
        return sorted(self._lines_of(p["ba"]))

    def _line(self, p: Mapping[str, str], _data: Any) -> dict[str, Any]:
        return schema.line_model(p["sn"], self._line_cfg(p))

    def options(self, service_name: str) -> dict[str, Any]:
        """The effective LineOptions of a line: defaults ⊕ the store's overrides."""
        defaults = schema.default_options(service_name, self.account.sip_domain)
        overrides = self.store.options(service_name)
        return schema.effective_options(
            defaults, overrides, lambda m: self.log(f"{service_name}: {m}")
        )

    def _get_options(self, p: Mapping[str, str], _data: Any) -> dict[str, Any]:
        self._line_cfg(p)
        return self.options(p["sn"])

    def _put_options(self, p: Mapping[str, str], data: Any) -> None:
        self._line_cfg(p)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise errors.bad_request("Invalid body: expected an object")  # assumed wording
        values = {name: schema.validate_option(name, value) for name, value in data.items()}
        for name, value in values.items():
            self.store.set_option(p["sn"], name, schema.encode(value))
        if values:
            self.log(f"{p['sn']}: options set: {', '.join(sorted(values))}")
        return None

    def _last_registrations(self, p: Mapping[str, str], _data: Any) -> list[dict[str, Any]]:
        self._line_cfg(p)
        return schema.last_registrations(self.store.registrations(p["sn"]))

    def _ips(self, p: Mapping[str, str], _data: Any) -> list[dict[str, Any]]:
        self._line_cfg(p)
        return schema.ips_model(self.store.registrations(p["sn"]))

    def _phone(self, p: Mapping[str, str], _data: Any) -> dict[str, Any]:
        return schema.phone_model(self._phone_cfg(p))

    def _record(self, action: str, p: Mapping[str, str], **extra: Any) -> None:
        entry = {"action": action, "billingAccount": p["ba"], "serviceName": p["sn"], **extra}
        with self._lock:
            self.actions.append({"time": self.now(), **entry})
        self.log(f"{p['sn']}: {action} {json.dumps(extra, sort_keys=True)}")

    def _reboot(self, p: Mapping[str, str], data: Any) -> dict[str, Any]:
        phone = self._phone_cfg(p)
        _only_params(data, ())
        if NO_REBOOT.match(phone["brand"]):
            # assumed wording; the status is what the manager checks
            raise ApiError(501, "Remote reboot is not available for this phone")
        task_id = next(self._tasks)
        self._record("reboot", p, taskId=task_id)
        return {
            "action": "reboot",
            "message": None,
            "objectCreated": None,
            "serviceType": "line",
            "status": "todo",
            "taskId": task_id,
        }

    def _reset_config(self, p: Mapping[str, str], data: Any) -> dict[str, Any]:
        self._phone_cfg(p)
        _only_params(data, ("ip",))
        ip = data.get("ip") if isinstance(data, dict) else None
        if ip is None:
            raise errors.bad_request("Missing body parameter ip")  # assumed wording
        try:
            if not isinstance(ip, str):
                raise TypeError(ip)
            ipaddress.IPv4Address(ip)
        except (ValueError, TypeError):
            raise errors.bad_request(
                "Invalid value for body parameter ip: expected an IPv4 address"
            ) from None
        self._record("resetConfig", p, ip=ip)
        return {"resetCodeInfo": None, "resetPhoneMethod": "http"}


def _only_params(data: Any, allowed: tuple[str, ...]) -> None:
    if data is None:
        return
    if not isinstance(data, dict):
        raise errors.bad_request("Invalid body: expected an object")  # assumed wording
    for key in data:
        if key not in allowed:
            raise errors.bad_request(f"Unknown body parameter {key}")


# ---------------------------------------------------------------- HTTP


def query_id(now: float) -> str:
    """An X-Ovh-QueryId in the real header's shape (``EU.ext-3.63ac85b6.10528.<uuid>``)."""
    return f"LAB.ext-1.{int(now):x}.{os.getpid()}.{uuid.uuid4()}"


def make_handler(api: StandIn, scheme: str) -> type[BaseHTTPRequestHandler]:
    class ApiHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        server_version = "nginx"  # what the real API's front answers
        sys_version = ""

        def _dispatch(self) -> None:
            started = time.monotonic()
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self._send(
                    Reply(400, errors.bad_request("Chunked bodies are not supported").body()),
                    started,
                    close=True,
                )
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(
                    Reply(400, errors.bad_request("Bad Content-Length").body()), started, close=True
                )
                return
            if length > MAX_BODY:
                self._discard(min(length, DRAIN_MAX))  # so the client reads the 413, not a RST
                self._send(
                    Reply(413, ApiError(413, "Request body too large").body()), started, close=True
                )
                return
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = api.handle(
                self.command, self.path, self.headers.get("Host", ""), headers, body, scheme
            )
            self._send(reply, started)

        def _discard(self, size: int) -> None:
            while size > 0 and (chunk := self.rfile.read(min(size, 65536))):
                size -= len(chunk)

        def _send(self, reply: Reply, started: float, close: bool = False) -> None:
            data = json.dumps(reply.payload).encode()
            self.send_response_only(reply.status)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("X-Ovh-QueryId", query_id(api.now()))
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            ms = (time.monotonic() - started) * 1000
            code = f" {reply.error_code}" if reply.error_code else ""
            api.log(
                f"{self.client_address[0]} {self.command} {self.path} {reply.status}{code}"
                f" {ms:.0f}ms"
            )

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """Malformed requests (bad request line, headers): a JSON error, no HTML."""
            self.command = self.command or "-"
            self.path = getattr(self, "path", "") or "-"
            if getattr(self, "request_version", "") in ("", "HTTP/0.9"):  # answer in HTTP/1.1
                self.request_version = "HTTP/1.1"
            self._send(
                Reply(code, ApiError(code, message or "Bad request").body()),
                time.monotonic(),
                close=True,
            )

        def log_message(self, format: str, *args: Any) -> None:
            api.log(f"{self.client_address[0]} {format % args}")

    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        setattr(ApiHandler, f"do_{method}", ApiHandler._dispatch)
    return ApiHandler


class ApiServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with TLS; the handshake runs in the request's own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, addr: tuple[str, int], api: StandIn, context: ssl.SSLContext | None = None
    ) -> None:
        self.api, self.context = api, context
        self.scheme = "https" if context else "http"
        super().__init__(addr, make_handler(api, self.scheme))

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except ssl.SSLEOFError:
            self.api.log(f"{client_address[0]} closed before the TLS handshake (a port probe?)")
            return
        except (OSError, ssl.SSLError) as exc:
            self.api.log(f"{client_address[0]} TLS handshake failed: {exc}")
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.api.log(f"connection from {client_address[0]} failed: {sys.exc_info()[1]!r}")

    @property
    def url(self) -> str:
        """The endpoint as a client would configure it (``https://127.0.0.1:8443/1.0``)."""
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}{PREFIX}"


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


def make_server(
    account: auth.Account,
    store: Store,
    host: str,
    port: int,
    cert: Path | None = None,
    key: Path | None = None,
    log: LogFn = log,
) -> ApiServer:
    """A ready-to-serve stand-in (HTTPS when ``cert`` and ``key`` are given; port 0: any)."""
    context = tls_context(cert, key) if cert and key else None
    return ApiServer((host, port), StandIn(account, store, log=log), context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.services.ovhapi", description="OVHcloud /telephony API stand-in"
    )
    parser.add_argument("--listen", required=True, help="IP address to listen on")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    parser.add_argument("--account", type=Path, required=True, help="account.json")
    parser.add_argument("--ctl", type=Path, help="Kamailio ctl socket (default: memory store)")
    parser.add_argument(
        "--provisioning-port", type=int, help="also serve OVHcloud's provisioning (plain HTTP)"
    )
    parser.add_argument("--provisioning-log", type=Path, help="JSON lines, one per profile fetch")
    args = parser.parse_args(argv)
    try:
        account = auth.Account.load(args.account)
    except ValueError as exc:
        print(f"ovhapi: {exc}", file=sys.stderr)
        return 2
    store: Store = KamailioStore(args.ctl) if args.ctl else MemoryStore()
    try:
        server = make_server(account, store, args.listen, args.port, args.cert, args.key)
    except (OSError, ssl.SSLError) as exc:
        print(f"ovhapi: cannot serve on {args.listen}:{args.port}: {exc}", file=sys.stderr)
        return 1
    store_name = f"registrar {args.ctl}" if args.ctl else "memory"
    if args.provisioning_port is not None:
        from lab.services.ovhapi.provisioning import Provisioning, ProvisioningServer

        addr = (args.listen, args.provisioning_port)
        try:
            prov = ProvisioningServer(addr, Provisioning(server.api, args.provisioning_log))
        except OSError as exc:
            print(f"ovhapi: cannot serve provisioning on {addr}: {exc}", file=sys.stderr)
            return 1
        threading.Thread(target=prov.serve_forever, name="provisioning", daemon=True).start()
        log(f"provisioning server on http://{args.listen}:{prov.server_address[1]}/")
    log(f"OVHcloud API stand-in on {server.url} (state: {store_name})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
