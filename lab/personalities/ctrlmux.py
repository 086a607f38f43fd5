"""Share baresip's single ctrl_tcp connection between the phone's controller and lab clients.

baresip 1.0.0's ctrl_tcp accepts one connection at a time: a new client silently replaces
the previous one. So the controller holds that connection (baresip listens on a private port)
and re-exposes the same netstring/JSON protocol on the usual port for any number of clients
(``lab.call``, readiness checks, tests): commands are forwarded with a rewritten token and the
answer goes back to whoever asked; events go to every client and to the controller.
Commands named in ``local`` are answered by the controller itself (``lab_*``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]
Addr = tuple[str, int]
LocalCommand = Callable[[str], str]


def frame(message: Message) -> bytes:
    """One netstring-framed JSON message."""
    body = json.dumps(message).encode()
    return str(len(body)).encode() + b":" + body + b","


class Frames:
    """Incremental netstring decoder."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[Message]:
        self.buf += data
        out: list[Message] = []
        while (colon := self.buf.find(b":")) > 0:
            size = int(self.buf[:colon])
            end = colon + 1 + size
            if len(self.buf) <= end:
                break
            out.append(json.loads(self.buf[colon + 1 : end]))
            self.buf = self.buf[end + 1 :]
        return out


def log(text: str) -> None:
    """One line on stderr (the process log)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, message: Message) -> bool:
        try:
            with self.lock:
                self.sock.sendall(frame(message))
            return True
        except OSError:
            return False


class CtrlMux:
    """baresip's ctrl connection (``upstream``) shared with clients on ``listen``."""

    def __init__(
        self,
        upstream: Addr,
        listen: Addr,
        on_event: Callable[[Message], None],
        on_connect: Callable[[], None],
        local: dict[str, LocalCommand],
    ) -> None:
        self.upstream, self.listen = upstream, listen
        self.on_event, self.on_connect, self.local = on_event, on_connect, local
        self.sock: socket.socket | None = None
        self.send_lock = threading.Lock()
        self.pending: dict[str, Callable[[Message], None]] = {}
        self.clients: set[_Client] = set()
        self.tokens = itertools.count(1)
        self.connected = threading.Event()
        # Events are handled off the reader thread: a handler may itself send a command.
        self.events: queue.Queue[Message] = queue.Queue()

    def start(self) -> None:
        """Connect to baresip (retrying), then serve clients; returns at once."""
        threading.Thread(target=self._upstream_loop, name="ctrl-upstream", daemon=True).start()
        threading.Thread(target=self._event_loop, name="ctrl-events", daemon=True).start()

    def _event_loop(self) -> None:
        while True:
            message = self.events.get()
            try:
                self.on_event(message)
            except Exception as exc:  # the controller must keep running
                log(f"event handler failed: {exc!r}")

    # -- upstream --------------------------------------------------------------------------
    def _upstream_loop(self) -> None:
        listening = False
        while True:
            try:
                sock = socket.create_connection(self.upstream, timeout=1.0)
            except OSError:
                time.sleep(0.02)
                continue
            sock.settimeout(None)
            self.sock = sock
            self.connected.set()
            log(f"connected to baresip ctrl {self.upstream[0]}:{self.upstream[1]}")
            threading.Thread(target=self._safe_on_connect, daemon=True).start()
            if not listening:
                threading.Thread(target=self._serve, name="ctrl-listen", daemon=True).start()
                listening = True
            self._read_upstream(sock)
            self.connected.clear()
            self.sock = None
            for reply in self._drain_pending():
                reply({"response": True, "ok": False, "data": "baresip connection lost"})
            log("baresip ctrl connection lost; reconnecting")
            time.sleep(0.2)

    def _safe_on_connect(self) -> None:
        try:
            self.on_connect()
        except Exception as exc:  # the controller must keep running
            log(f"on_connect failed: {exc!r}")

    def _drain_pending(self) -> list[Callable[[Message], None]]:
        with self.send_lock:
            replies = list(self.pending.values())
            self.pending.clear()
        return replies

    def _read_upstream(self, sock: socket.socket) -> None:
        frames = Frames()
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                sock.close()
                return
            try:
                messages = frames.feed(data)
            except ValueError as exc:  # not baresip's framing: drop the connection, reconnect
                log(f"bad message from baresip: {exc!r}")
                sock.close()
                return
            for message in messages:
                if message.get("response"):
                    with self.send_lock:
                        reply = self.pending.pop(str(message.get("token")), None)
                    if reply:
                        reply(message)
                elif message.get("event"):
                    self.events.put(message)
                    for client in list(self.clients):
                        if not client.send(message):
                            self.clients.discard(client)

    def _forward(self, command: str, params: str, reply: Callable[[Message], None]) -> str:
        """Send a command to baresip; ``reply`` gets its response (with our token)."""
        token = f"mux-{next(self.tokens)}"
        body = frame({"command": command, "params": params, "token": token})
        with self.send_lock:
            sock = self.sock
            if sock is None:
                reply({"response": True, "ok": False, "data": "baresip not connected"})
                return token
            self.pending[token] = reply
            try:
                sock.sendall(body)
            except OSError:
                self.pending.pop(token, None)
                reply({"response": True, "ok": False, "data": "baresip connection lost"})
        return token

    def request(self, command: str, params: str = "", timeout: float = 2.0) -> Message:
        """A command from the controller itself; its response (TimeoutError if none)."""
        done = threading.Event()
        box: list[Message] = []

        def reply(message: Message) -> None:
            box.append(message)
            done.set()

        token = self._forward(command, params, reply)
        if not done.wait(timeout):
            with self.send_lock:
                self.pending.pop(token, None)
            raise TimeoutError(f"baresip did not answer {command!r}")
        return box[0]

    # -- clients ---------------------------------------------------------------------------
    def _serve(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self.listen)
        server.listen(16)
        log(f"ctrl clients on {self.listen[0]}:{self.listen[1]}")
        while True:
            try:
                conn, _ = server.accept()
            except OSError as exc:
                log(f"accept failed: {exc!r}")
                time.sleep(0.1)
                continue
            client = _Client(conn)
            self.clients.add(client)
            threading.Thread(target=self._client_loop, args=(client,), daemon=True).start()

    def _client_loop(self, client: _Client) -> None:
        frames = Frames()
        try:
            while data := client.sock.recv(65536):
                for message in frames.feed(data):
                    self._client_command(client, message)
        except (OSError, ValueError):
            pass
        finally:
            self.clients.discard(client)
            with contextlib.suppress(OSError):
                client.sock.close()

    def _client_command(self, client: _Client, message: Message) -> None:
        command = str(message.get("command", ""))
        params = str(message.get("params", "") or "")
        token = message.get("token")

        def reply(response: Message) -> None:
            answer = dict(response)
            answer.pop("token", None)
            if token is not None:
                answer["token"] = token
            client.send(answer)

        handler = self.local.get(command)
        if handler is None:
            self._forward(command, params, reply)
            return
        try:
            reply({"response": True, "ok": True, "data": handler(params)})
        except Exception as exc:
            reply({"response": True, "ok": False, "data": f"{command} failed: {exc}"})
