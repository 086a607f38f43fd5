"""SSH to a device on the LAN (the office router), read-only and defensively.

One connection with a timeout, then a few commands, each with a timeout and an output
cap; :func:`run` never raises for what the network or the device does: it returns what
it got and, when something failed, why (a message safe to show: never a password).

Host keys are pinned on first use (TOFU), in an OpenSSH-format ``known_hosts`` file that
phonediag keeps beside its store (:func:`known_hosts_path`, mode 0600):

- first connection to a host: its key is accepted, written to the file once the server
  has proved it holds the private key (the key exchange's signature), before any login
  is sent, and said (:attr:`HostKey.status` ``"pinned-now"``);
- known and equal: the connection proceeds (``"known"``);
- known and different: refused during the key exchange, before any authentication is
  sent (no password, no public key offered): ``"changed"``, with both fingerprints.
  ``phonediag ssh forget HOST`` removes the old key after a check.

The file keeps OpenSSH's syntax (``host keytype base64``, ``[host]:port`` off port 22,
hashed ``|1|salt|hash`` names are understood), so ``ssh -o UserKnownHostsFile=FILE`` and
``ssh-keygen -F HOST -f FILE`` read it too. The pinned key types are offered first in the
key exchange, as OpenSSH does, so a router with several host keys shows the pinned one.

asyncssh is imported only when a connection is made (``phonediag --help`` stays fast);
it never reads ``~/.ssh`` (no config, no default keys, no agent, no user known_hosts).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import importlib
import ipaddress
import logging
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PORT = 22
MAX_OUTPUT = 256 * 1024  # bytes of a command's standard output kept (an nft ruleset: ~50 KB)
MAX_STDERR = 4096
CLOSE_WAIT = 1.0  # at most this long to say goodbye to the server
KNOWN_HOSTS = "known_hosts"


class SshError(Exception):
    """A failure whose message is safe to show (no secret in it)."""


# ------------------------------------------------------------------------ the target
@dataclass(frozen=True)
class Target:
    """Who to log in as, where: an IPv4 address on the LAN and a port."""

    user: str
    host: str
    port: int = DEFAULT_PORT

    @property
    def where(self) -> str:
        """``10.66.0.1``, or ``10.66.0.1:2222`` off the default port (as the user writes it)."""
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host's name in known_hosts: ``10.66.0.1`` or ``[10.66.0.1]:2222``."""
        return self.host if self.port == DEFAULT_PORT else f"[{self.host}]:{self.port}"


def parse_target(text: str, user_required: bool = False, private_only: bool = True) -> Target:
    """``user@host[:port]`` (or ``[host]:port``) -> :class:`Target` (user "root" when left
    out); with ``private_only`` the host must be a private IPv4 address (agent/scope's rule:
    RFC 1918 or RFC 6598). ValueError says why."""
    from agent import scope

    text = text.strip()
    user, sep, rest = text.rpartition("@")
    if not sep:
        user, rest = "", text
    if user_required and not user:
        raise ValueError(f"{text!r} must be user@host[:port], e.g. root@192.168.1.1")
    if user and (any(c.isspace() for c in user) or ":" in user):
        raise ValueError(f"{user!r} is not a user name")
    port = DEFAULT_PORT
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ValueError(f"{rest!r} is not host[:port]")
        port_text = tail[1:] if tail else None
    else:
        host, colon, port_text_raw = rest.partition(":")
        port_text = port_text_raw if colon else None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{port_text!r} is not a port number")
        port = int(port_text)
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IPv4 address (the router's LAN address)") from None
    if private_only and not scope.is_allowed(ipaddress.IPv4Network(f"{addr}/32")):
        raise ValueError(f"{addr} is not a private address of the office network")
    return Target(user or "root", str(addr), port)


def known_hosts_path(store_path: str | None) -> Path:
    """The known_hosts file beside the local store (agent/store.py)."""
    from agent import store

    return store.path_for(store_path).parent / KNOWN_HOSTS


# ------------------------------------------------------------------------ known_hosts
def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob: ``SHA256:…`` (base64, no padding)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _key_type(blob: bytes) -> str | None:
    """The algorithm name at the start of a public key blob."""
    if len(blob) < 4:
        return None
    (n,) = struct.unpack(">I", blob[:4])
    name = blob[4 : 4 + n]
    return name.decode("ascii", "replace") if len(name) == n else None


@dataclass(frozen=True)
class Entry:
    """One line of a known_hosts file holding a host key."""

    line: int  # 1-based
    hosts: str  # the comma-separated names (or one hashed name)
    key_type: str
    blob: bytes
    marker: str = ""  # @revoked, @cert-authority (never written by phonediag)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def names(self) -> list[str]:
        return [h for h in self.hosts.split(",") if h]

    def matches(self, name: str) -> bool:
        """Whether this entry is for ``name`` (``10.66.0.1`` or ``[10.66.0.1]:2222``),
        written as is or hashed (``|1|salt|hash``); wildcards are not expanded."""
        return any(_name_matches(h, name) for h in self.names())


def _name_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            _, _, salt, digest = pattern.split("|", 3)
            mac = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
            return hmac.compare_digest(mac, base64.b64decode(digest))
        except (ValueError, binascii.Error):
            return False
    return pattern == name


def parse_known_hosts(text: str) -> list[Entry]:
    """The host keys of a known_hosts text; comments, blank and unreadable lines skipped."""
    entries = []
    for n, raw in enumerate(text.splitlines(), 1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else ""
        if len(fields) < 3:
            continue
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        entries.append(Entry(n, fields[0], fields[1], blob, marker))
    return entries


def read_known_hosts(path: Path) -> list[Entry]:
    """The entries of ``path`` ([] when it does not exist); OSError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return parse_known_hosts(text)


def pinned_for(entries: Sequence[Entry], target: Target) -> list[Entry]:
    """The keys pinned for the target's host and port (revocations and CA lines aside)."""
    return [e for e in entries if not e.marker and e.matches(target.known_hosts_name)]


def ensure_file(path: Path) -> None:
    """Create ``path`` (and its folder, 0700) owner-only if needed; tighten a file others
    could read. OSError when it cannot be."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    if os.name == "posix" and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def pin(path: Path, target: Target, blob: bytes) -> None:
    """Append the host key ``blob`` for ``target`` to ``path`` (created 0600)."""
    key_type = _key_type(blob)
    if not key_type:
        raise ValueError("not a public key")
    ensure_file(path)
    line = f"{target.known_hosts_name} {key_type} {base64.b64encode(blob).decode()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def forget(path: Path, target: Target) -> list[Entry]:
    """Remove every key pinned for the target's host and port; return what was removed.

    A line that also names other hosts keeps them (only this name goes). The file is
    rewritten atomically, still 0600."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except FileNotFoundError:
        return []
    name = target.known_hosts_name
    by_line = {e.line: e for e in parse_known_hosts("".join(lines))}
    removed, kept = [], []
    for n, raw in enumerate(lines, 1):
        entry = by_line.get(n)
        if entry is None or entry.marker or not entry.matches(name):
            kept.append(raw)
            continue
        removed.append(entry)
        others = [h for h in entry.names() if not _name_matches(h, name)]
        if others:
            kept.append(raw.replace(entry.hosts, ",".join(others), 1))
    if removed:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(kept)
        tmp.replace(path)
    return removed


# ------------------------------------------------------------------------ a session
@dataclass
class HostKey:
    """What the host key check found."""

    # "pinned-now" (first use, written before the login), "known" (equal to the pinned
    # key), "changed" (refused), "seen" (first use, but the connection ended before the
    # key could be pinned: nothing written)
    status: str
    offered: str  # the fingerprint the server showed
    pinned: list[str]  # the fingerprints pinned before this connection ([] on first use)
    file: Path

    @property
    def changed(self) -> bool:
        return self.status == "changed"


@dataclass
class Output:
    """One command's result."""

    command: str
    status: int | None = None  # exit status (None: none received)
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # why the output is missing or partial (timeout, cut...)


@dataclass
class Result:
    """A session: the host key check, each command's output, and why it stopped short."""

    target: Target
    hostkey: HostKey | None = None
    outputs: list[Output] = field(default_factory=list)
    error: str | None = None  # None: logged in and every command was started


class _Pinning:
    """Trust on first use, decided during the key exchange (asyncssh's callback)."""

    def __init__(self, path: Path, target: Target, pinned: list[Entry]) -> None:
        self.path, self.target, self.pinned = path, target, pinned
        self.hostkey: HostKey | None = None
        self.pending: bytes | None = None  # a first key, written once it proved itself
        self.write_error: str | None = None

    def check(self, blob: bytes) -> bool:
        fp = fingerprint(blob)
        before = [e.fingerprint for e in self.pinned]
        if not self.pinned:
            if self.hostkey is None:
                self.pending = blob
                self.hostkey = HostKey("seen", fp, [], self.path)
            return fp == self.hostkey.offered
        if any(e.blob == blob for e in self.pinned):
            self.hostkey = HostKey("known", fp, before, self.path)
            return True
        self.hostkey = HostKey("changed", fp, before, self.path)
        return False

    def proven(self) -> bool:
        """The key exchange is over (the server signed with the key): write a first key
        now, before any login is sent. False when it could not be written."""
        if self.pending is None:
            return True
        blob, self.pending = self.pending, None
        try:
            pin(self.path, self.target, blob)
        except (OSError, ValueError) as e:
            self.write_error = getattr(e, "strerror", None) or str(e)
            return False
        if self.hostkey is not None:
            self.hostkey.status = "pinned-now"
        return True


_client_class: Any = None


def _client(asyncssh: Any, guard: _Pinning) -> Any:
    """An asyncssh client that asks ``guard`` about the host key and pins a first key
    between the key exchange and the authentication."""
    global _client_class
    if _client_class is None:

        class Client(asyncssh.SSHClient):  # type: ignore[misc,name-defined]
            def __init__(self, guard: _Pinning) -> None:
                self.guard = guard
                self.conn: Any = None

            def connection_made(self, conn: Any) -> None:
                self.conn = conn

            def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
                return self.guard.check(bytes(key.public_data))

            def begin_auth(self, username: str) -> None:
                if not self.guard.proven() and self.conn is not None:
                    self.conn.abort()  # never log in to a key we could not pin

        _client_class = Client
    return _client_class(guard)


def _host_key_algs(asyncssh: Any, pinned: list[Entry]) -> list[str]:
    """The pinned keys' algorithms first, then asyncssh's defaults (no certificates: a
    certificate would need a CA we do not have)."""
    algs: list[bytes] = []
    for e in pinned:
        try:
            key = asyncssh.import_public_key(f"{e.key_type} {base64.b64encode(e.blob).decode()}")
        except (asyncssh.KeyImportError, ValueError):
            continue
        algs += [a for a in key.sig_algorithms if a not in algs]
    algs += [a for a in asyncssh.public_key.get_default_public_key_algs() if a not in algs]
    return [a.decode("ascii") for a in algs]


def _nothing_trusted(_host: str, _addr: str, _port: int | None) -> tuple[list, list, list]:
    """known_hosts for asyncssh: trust nothing by itself, so every key goes through
    :meth:`_Pinning.check` (asyncssh never reads ~/.ssh/known_hosts)."""
    return [], [], []


async def run(
    target: Target,
    commands: Sequence[str],
    *,
    known_hosts: Path,
    timeout: float,
    key_file: str | None = None,
    password: str | None = None,
    max_bytes: int = MAX_OUTPUT,
) -> Result:
    """Log in to ``target`` (host key pinned on first use in ``known_hosts``) and run
    ``commands`` one after the other. ``timeout`` bounds the connection (TCP, key
    exchange, login) and each command. Never raises for what the network or the device
    does: :attr:`Result.error` says what went wrong, with no secret in it."""
    result = Result(target)
    try:
        result.error = await _session(
            result, commands, known_hosts, timeout, key_file, password, max_bytes
        )
    except SshError as e:
        result.error = str(e)
    if password:
        result.error = result.error and result.error.replace(password, "***")
        for out in result.outputs:
            out.stdout, out.stderr = (s.replace(password, "***") for s in (out.stdout, out.stderr))
            out.error = out.error and out.error.replace(password, "***")
    return result


async def _session(
    result: Result,
    commands: Sequence[str],
    known_hosts: Path,
    timeout: float,
    key_file: str | None,
    password: str | None,
    max_bytes: int,
) -> str | None:
    target = result.target
    try:  # in a worker thread: importing asyncssh and cryptography costs ~0.5 s of CPU,
        # which would hold every other probe's timers on the event loop meanwhile
        asyncssh = await asyncio.to_thread(importlib.import_module, "asyncssh")
    except ImportError:
        raise SshError("SSH is not available: the asyncssh package is not installed") from None
    # what goes wrong is said once, in the report's errors: nothing on the console
    logging.getLogger("asyncssh").setLevel(logging.CRITICAL)
    try:
        ensure_file(known_hosts)
        pinned = pinned_for(read_known_hosts(known_hosts), target)
    except OSError as e:
        raise SshError(f"known_hosts file {known_hosts}: {e.strerror or e}") from None
    keys = None
    if key_file:
        path = Path(key_file).expanduser()
        try:
            keys = [asyncssh.read_private_key(path)]
        except OSError as e:
            raise SshError(f"private key file {path}: {e.strerror or e}") from None
        except (asyncssh.KeyImportError, ValueError) as e:
            raise SshError(f"private key file {path}: not usable ({e})") from None
    guard = _Pinning(known_hosts, target, pinned)
    where = target.where
    conn = None
    try:
        try:
            async with asyncio.timeout(timeout):
                conn = await asyncssh.connect(
                    target.host,
                    target.port,
                    username=target.user,
                    client_factory=lambda: _client(asyncssh, guard),
                    known_hosts=_nothing_trusted,
                    server_host_key_algs=_host_key_algs(asyncssh, pinned),
                    client_keys=keys,
                    password=password or None,
                    passphrase=None,
                    agent_path=None,
                    agent_forwarding=False,
                    config=[],
                    x509_trusted_certs=None,
                    x509_trusted_cert_paths=[],
                    gss_auth=False,
                    gss_kex=False,
                    host_based_auth=False,
                    connect_timeout=timeout,
                    keepalive_interval=0,
                )
        finally:
            result.hostkey = guard.hostkey
        if guard.write_error:  # aborted before the login: asyncssh may still hand it over
            return f"known_hosts file {known_hosts}: {guard.write_error}; not logged in"
        for command in commands:
            if conn.is_closed():  # the router hung up: one error, not one per command
                done, total = len(result.outputs), len(commands)
                return f"{where}: the SSH connection closed after {done} of {total} commands"
            result.outputs.append(await _exec(asyncssh, conn, command, timeout, max_bytes))
        return None
    except TimeoutError:
        return f"{where}: no SSH answer within {timeout:g} s"
    except asyncssh.HostKeyNotVerifiable as e:
        hk = guard.hostkey
        if hk is not None and hk.changed:
            return (
                f"{where}: refused: the SSH host key changed (pinned {', '.join(hk.pinned)},"
                f" offered {hk.offered}); nothing was sent to log in. If the router was"
                f" replaced or reset on purpose: phonediag ssh forget {where}"
            )
        return f"{where}: host key not verifiable ({e.reason})"
    except asyncssh.PermissionDenied:
        how = " and ".join(x for x, on in (("key", keys), ("password", password)) if on)
        return f"{where}: login refused for user {target.user} (authentication by {how} failed)"
    except asyncssh.DisconnectError as e:
        if guard.write_error:
            return f"known_hosts file {known_hosts}: {guard.write_error}; not logged in"
        return f"{where}: SSH connection closed: {e.reason or type(e).__name__}"
    except ConnectionRefusedError:
        return f"{where}: connection refused (no SSH server on port {target.port})"
    except OSError as e:
        if guard.write_error:
            return f"known_hosts file {known_hosts}: {guard.write_error}; not logged in"
        return f"{where}: {e.strerror or type(e).__name__}"
    except (asyncssh.Error, ValueError) as e:  # a protocol error, a bad option value
        return f"{where}: SSH failed: {type(e).__name__}: {e}"
    finally:
        if conn is not None:
            conn.close()
            task = asyncio.current_task()
            if task is None or not task.cancelling():  # cut short (a deadline): no waiting
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_WAIT):
                        await conn.wait_closed()


async def _read_capped(stream: Any, cap: int) -> tuple[bytes, bool]:
    """Read to the end, or up to ``cap`` bytes: (data, cut)."""
    data = bytearray()
    while len(data) <= cap:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(data), False
        data += chunk
    return bytes(data[:cap]), True


async def _exec(asyncssh: Any, conn: Any, command: str, timeout: float, cap: int) -> Output:
    """One command, with its timeout and output cap."""
    out = Output(command)
    proc = None
    tasks: list[asyncio.Task[tuple[bytes, bool]]] = []
    stdout, stderr = b"", b""
    try:
        async with asyncio.timeout(timeout):
            proc = await conn.create_process(command, encoding=None)
            proc.stdin.write_eof()
            tasks = [
                asyncio.ensure_future(_read_capped(proc.stdout, cap)),
                asyncio.ensure_future(_read_capped(proc.stderr, MAX_STDERR)),
            ]
            done = set()
            while len(done) < 2:
                finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                done |= finished
                if any(t.result()[1] for t in finished):
                    break
            for t, name in zip(tasks, ("stdout", "stderr"), strict=True):
                if t.done():
                    data, cut = t.result()
                    if name == "stdout":
                        stdout = data
                    else:
                        stderr = data
                    if cut:
                        out.error = f"{name} cut at {len(data)} bytes"
            if out.error is None:
                await proc.wait_closed()
                out.status = proc.exit_status
    except TimeoutError:
        for t, name in zip(tasks, ("stdout", "stderr"), strict=True):
            if t.done() and not t.cancelled() and t.exception() is None:
                if name == "stdout":
                    stdout = t.result()[0]
                else:
                    stderr = t.result()[0]
        out.error = f"no end within {timeout:g} s"
    except (asyncssh.Error, OSError) as e:
        out.error = f"could not run: {getattr(e, 'reason', None) or e}"
    finally:
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if proc is not None:
            proc.close()
    out.stdout = stdout.decode("utf-8", "replace")
    out.stderr = stderr.decode("utf-8", "replace")
    return out
