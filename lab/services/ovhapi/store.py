"""Where the stand-in keeps line state: shared with the lab's Kamailio registrar.

A line option set through the API and one set by a phone dialling ``*21*NUMBER#`` must be one
state, so the options live in the registrar, in two htables of lab/services/kamailio.cfg.tmpl:

- ``opts``: key ``<line>::<LineOptions field>`` → the raw value (``true``/``false``, digits,
  text; the empty string clears a nullable field). No key: the stand-in's default.
- ``regs``: key ``<line>::<epoch seconds with micro-seconds>`` (``1764213000.123456``) →
  ``<public ip>;<public port>;<contact host>;<contact port>;<domain>;<user agent>``, one row
  per successful REGISTER. The user agent is last and may contain ';' (split with maxsplit=5).

``Store.registrations()`` gives raw rows: dicts of strings with the keys ``time`` (the epoch
part of the key), ``ip``, ``port``, ``local_ip``, ``local_port``, ``domain``, ``user_agent``.

``KamailioStore`` talks to the registrar with ``kamcmd``; ``MemoryStore`` is for tests.

``kamcmd htable.dump`` output, as Kamailio 5.6.3 prints it (one block per non-empty hash
slot, several items when keys collide; nothing at all for an empty table)::

    {
    \tentry: 2
    \tsize: 2
    \tslot: {
    \t\t{
    \t\t\tname: 1001::forwardUnconditionalNumber
    \t\t\tvalue: 0612345678
    \t\t\ttype: str
    \t\t}
    \t\t{
    \t\t\tname: 1002::callWaiting
    \t\t\tvalue: 0
    \t\t\ttype: int
    \t\t}
    \t}
    }

An empty value prints as ``value: `` (one trailing space). A table that does not exist gives
``error: 500 - No such htable`` on stdout with exit status 0, and a reply over the ctl
module's size limit gives ``ERROR: reply too big`` with status 255 (seen with 2000 rows of
~110 bytes; 800 rows still worked).

kamcmd turns an argument that looks like a number into an integer (``0612345678`` became
``612345678``, and ``""`` became ``0``), so every key and value is sent with the ``s:`` prefix,
which forces a string.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from lab.services import kamailio

OPTS, REGS = "opts", "regs"
REG_FIELDS = ("ip", "port", "local_ip", "local_port", "domain", "user_agent")
_NAME, _VALUE, _TYPE = "\t\t\tname: ", "\t\t\tvalue:", "\t\t\ttype: "


class StoreError(RuntimeError):
    """The registrar could not be read or written."""


class Store(Protocol):
    """Line state: option overrides (raw strings) and registrations (raw rows)."""

    def options(self, line: str) -> dict[str, str]: ...

    def set_option(self, line: str, name: str, value: str) -> None: ...

    def registrations(self, line: str) -> list[dict[str, str]]: ...


def parse_htable_dump(text: str) -> dict[str, str]:
    """``kamcmd htable.dump TABLE`` output → {key: value}.

    A value that spans several lines (it contained a newline) is joined back with ``\\n``.
    """
    items: dict[str, str] = {}
    name: str | None = None
    value: list[str] | None = None
    for line in text.splitlines():
        if value is not None:  # inside a value: everything up to its "type:" line
            if line.startswith(_TYPE):
                if name is not None:
                    items[name] = "\n".join(value)
                name, value = None, None
            else:
                value.append(line)
        elif line.startswith(_NAME):
            name = line[len(_NAME) :]
        elif line.startswith(_VALUE) and name is not None:
            value = [line[len(_VALUE) :].removeprefix(" ")]
    return items


def parse_reg(key: str, value: str) -> tuple[str, dict[str, str]] | None:
    """One ``regs`` htable entry → (line, raw row); None if it is malformed."""
    line, sep, stamp = key.rpartition("::")
    parts = value.split(";", 5)
    if not sep or not line or len(parts) != len(REG_FIELDS):
        return None
    try:
        float(stamp)
    except ValueError:
        return None
    return line, {"time": stamp, **dict(zip(REG_FIELDS, parts, strict=True))}


def reg_key(line: str, when: float) -> str:
    """The ``regs`` key of a registration at ``when`` (epoch seconds)."""
    return f"{line}::{when:.6f}"


def reg_value(row: dict[str, str]) -> str:
    """The ``regs`` value of a raw row."""
    return ";".join(row.get(f, "") for f in REG_FIELDS)


def _rows_of(line: str, entries: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """The raw rows of ``line`` among ``regs`` entries (malformed ones are skipped)."""
    rows = []
    for key, value in entries:
        parsed = parse_reg(key, value)
        if parsed and parsed[0] == line:
            rows.append(parsed[1])
    return rows


class MemoryStore:
    """A store in memory, same semantics as the registrar's htables (tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opts: dict[str, str] = {}
        self._regs: dict[str, str] = {}

    def options(self, line: str) -> dict[str, str]:
        prefix = f"{line}::"
        with self._lock:
            return {k[len(prefix) :]: v for k, v in self._opts.items() if k.startswith(prefix)}

    def set_option(self, line: str, name: str, value: str) -> None:
        with self._lock:
            self._opts[f"{line}::{name}"] = value

    def registrations(self, line: str) -> list[dict[str, str]]:
        with self._lock:
            entries = list(self._regs.items())
        return _rows_of(line, entries)

    def add_row(self, key: str, value: str) -> None:
        """Add a ``regs`` entry exactly as the registrar writes it."""
        with self._lock:
            self._regs[key] = value

    def add_registration(
        self,
        line: str,
        ip: str,
        port: int | str = 5060,
        local_ip: str = "",
        local_port: int | str = "",
        domain: str = "",
        user_agent: str = "",
        when: float | None = None,
    ) -> str:
        """Add one registration (``when`` defaults to now); return its key."""
        key = reg_key(line, time.time() if when is None else when)
        row = {
            "ip": ip,
            "port": str(port),
            "local_ip": local_ip,
            "local_port": str(local_port),
            "domain": domain,
            "user_agent": user_agent,
        }
        self.add_row(key, reg_value(row))
        return key


def _run_kamcmd(ctl: Path, *args: str, timeout: float) -> str:
    """kamcmd on ``ctl``: lab.services.kamailio.kamcmd when ``ctl`` is a lab's socket."""
    if ctl == kamailio.ctl_socket(ctl.parent):
        return kamailio.kamcmd(ctl.parent, *args, timeout=timeout)
    argv = ["kamcmd", "-s", f"unix:{ctl}", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kamcmd {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


class KamailioStore:
    """The registrar's ``opts`` and ``regs`` htables, through ``kamcmd`` on its ctl socket."""

    def __init__(self, ctl_socket: Path, timeout: float = 5.0) -> None:
        self.ctl, self.timeout = Path(ctl_socket), timeout
        self._missing_logged: set[str] = set()

    def _rpc(self, *args: str) -> str:
        try:
            out = _run_kamcmd(self.ctl, *args, timeout=self.timeout)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(str(exc)) from exc
        if out.startswith("error:"):  # an RPC error still exits 0
            raise StoreError(f"kamcmd {args[0]}: {out.strip()}")
        return out

    def dump(self, table: str) -> dict[str, str]:
        """Every entry of ``table``; a table the registrar does not have reads as empty."""
        try:
            return parse_htable_dump(self._rpc("htable.dump", table))
        except StoreError as exc:
            if "No such htable" not in str(exc):
                raise
            if table not in self._missing_logged:
                self._missing_logged.add(table)
                print(f"registrar has no htable {table!r}: reading it as empty", file=sys.stderr)
            return {}

    def options(self, line: str) -> dict[str, str]:
        prefix = f"{line}::"
        return {k[len(prefix) :]: v for k, v in self.dump(OPTS).items() if k.startswith(prefix)}

    def set_option(self, line: str, name: str, value: str) -> None:
        self._rpc("htable.sets", OPTS, f"s:{line}::{name}", f"s:{value}")

    def registrations(self, line: str) -> list[dict[str, str]]:
        return _rows_of(line, self.dump(REGS).items())
