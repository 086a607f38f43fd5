"""The suite-wide secrets sweep (DESIGN §7: secrets never appear in reports, logs or
bundles). Registered by tests/conftest.py; tests/lab/conftest.py hands it each lab.

What it collects while the tests run:

- the secrets of every lab brought up (``Lab.up``): the lines' SIP passwords, the phones'
  web admin passwords, the OVHcloud API stand-in's application secret and consumer key, the
  MQTT broker's passwords, the SNMP communities and v3 keys of the agent's configuration
  (the lab's only community is the default ``public``: not a secret), the SIP password each
  phone holds (the wrong-password scenario's phone holds a wrong one), the portal's private
  signing key; then, when the lab goes down, the passwords tests set on the phones
  (``Lab.set_phone_state``) and the agent's own portal key (``portal enroll`` made it);
- what the agent produced: the standard output and error of every ``phonediag`` command run
  through ``Lab.run`` or ``Lab.exec``; before each ``Lab.down``, the lab's agent store (its
  run history, remedies audit log and portal state: read as bytes, ``-wal`` included, and
  table by table, compressed reports and results decompressed); at the end, every file the
  tests wrote under pytest's basetemp and in the session's store folder (tests/conftest.py),
  zips member by member.

At the end of the session every collected output is searched for every collected secret,
as is and base64-encoded (a ``Basic`` authorization, an enrolment token); one line sums it
up (``PHONEDIAG_SECRETS_REPORT=FILE`` also writes the figures as JSON) and any hit fails the
session, naming the secret's kind and the output, never the value.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import re
import sqlite3
import tempfile
import tomllib
import zipfile
import zlib
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PLUGIN_NAME = "phonediag-secrets-sweep"
REPORT_ENV = "PHONEDIAG_SECRETS_REPORT"

# Values shorter than this are not searched for: a Gigaset's 4-digit web PIN, or a password
# a test sets on purpose ("lost"), would match by chance in any report (ports, durations,
# phone numbers, timestamps). The agent masks short secrets as whole words, and
# tests/lab/test_agent_history.py checks the PINs that way in the support bundle.
MIN_LEN = 6
# SNMP's well-known default communities are not secrets ("public" is also a word of the
# reports: lan.public_ip), whatever their length.
DEFAULT_COMMUNITIES = frozenset({"public", "private"})
# A secret this long is also searched for base64-encoded (its core at each of the three
# alignments): long enough that a chance match is out of the question.
ENCODED_MIN_LEN = 12
# Files under basetemp that are inputs or key material, not outputs: TOML files are the
# configurations tests hand the agent (tests/lab/test_agent_provider.py writes the lab's
# agent.toml, with its real API keys, for the agent to read), or the agent's own portal
# identity (portal/agent.toml holds its MQTT password by design); keys and certificates are
# what TLS and the portal's signatures are made of. A bundle's config.toml is checked: it is
# a zip member, not a file here.
NOT_OUTPUTS = frozenset({".toml", ".key", ".pem", ".pub", ".crt"})
MAX_FILE = 256 * 1024 * 1024  # bytes: a bigger file is reported, not read
MAX_DEPTH = 4  # zips in zips, compressed blobs in a store in a zip...

_SQLITE = b"SQLite format 3\x00"
_ZIP = b"PK\x03\x04"
# Every secret the lab makes (hex, URL-safe base64, alphanumeric) and every base64 core is
# written with these characters, so an occurrence lies within one run of them.
_WORD = rb"A-Za-z0-9_+/=-"
_RUN = re.compile(rb"[%s]{%d,}" % (_WORD, MIN_LEN))
_ALL_WORD = re.compile(rb"[%s]+" % _WORD)
_SUBCOMMAND = re.compile(r"[a-z]+(?:-[a-z]+)*")


@dataclass(frozen=True)
class Hit:
    """A secret found in an output (its kind and lab, never its value)."""

    kind: str
    lab: str
    output: str

    def __str__(self) -> str:
        return f"{self.kind} of lab {self.lab} in {self.output}"


@dataclass
class Result:
    """The figures of one sweep."""

    labs: int
    secrets: int
    skipped_short: int
    outputs: int
    pieces: int
    bytes: int
    hits: list[Hit] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary printed at the end of the session."""
        return (
            f"secrets sweep: {self.secrets} secrets of {self.labs} labs checked in "
            f"{self.outputs} outputs ({self.bytes / 1e6:.1f} MB): {len(self.hits)} found"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "labs": self.labs,
            "secrets": self.secrets,
            "skipped_short": self.skipped_short,
            "min_length": MIN_LEN,
            "outputs": self.outputs,
            "sources": dict(self.sources),
            "pieces": self.pieces,
            "bytes": self.bytes,
            "found": len(self.hits),
            "hits": [{"kind": h.kind, "lab": h.lab, "output": h.output} for h in self.hits],
            "errors": list(self.errors),
        }


def base64_cores(raw: bytes) -> set[bytes]:
    """What base64 (standard and URL-safe) makes of ``raw`` wherever it sits in the encoded
    data: for each of the three alignments, the characters that depend on ``raw`` only."""
    cores: set[bytes] = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw + b"\0\0")
        first = -(-8 * pad // 6)  # the first character made of raw's bits only
        last = (8 * (pad + len(raw)) - 6) // 6  # the last one
        core = encoded[first : last + 1]
        cores.add(core)
        cores.add(core.translate(bytes.maketrans(b"+/", b"-_")))
    return cores


def pem_body(text: str) -> str:
    """The base64 of a PEM file, on one line (what a leaked key would show)."""
    return "".join(x.strip() for x in text.splitlines() if x.strip() and "-----" not in x)


def agent_command(argv: Sequence[Any], secrets: Container[str] = ()) -> str | None:
    """``phonediag report show`` for an argv that runs phonediag (also through sudo, setpriv or
    a path such as /usr/bin/phonediag), else None. Only its subcommand's words (two at most,
    lowercase letters and hyphens), never an option or a value: ``portal enroll --token T``
    and ``portal submit ... --password-file F`` carry secrets, and so could a test's
    positional argument (a word in ``secrets`` ends the name): the name of an output is
    printed."""
    words = [str(a) for a in argv]
    for i, word in enumerate(words):
        if Path(word).name == "phonediag":
            rest = []
            for w in words[i + 1 : i + 3]:
                if not _SUBCOMMAND.fullmatch(w) or w in secrets:
                    break
                rest.append(w)
            return " ".join(["phonediag", *rest])
    return None


def _current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]


class Sweep:
    """The secrets and outputs collected during a session, and the search."""

    def __init__(self) -> None:
        self._secrets: dict[str, tuple[str, str, bool]] = {}  # value -> kind, lab, encoded
        self._short: set[str] = set()
        self.labs: list[str] = []
        self._pieces: list[tuple[str, bytes]] = []  # (output's name, bytes to search)
        self.outputs = 0
        self.sources: dict[str, int] = {}
        self.errors: list[str] = []
        self._stored: set[str] = set()  # stores already read (a lab's down may run twice)

    # -- secrets ---------------------------------------------------------------------------
    def add_secret(self, kind: str, value: Any, lab: str, encoded: bool = True) -> None:
        """Remember a secret (the first kind given for a value is the one reported)."""
        if not isinstance(value, str) or not value.strip():
            return
        if len(value) < MIN_LEN:
            self._short.add(value)
            return
        self._secrets.setdefault(value, (kind, lab, encoded))

    @property
    def secrets(self) -> int:
        return len(self._secrets)

    def add_lab(self, name: str) -> None:
        if name not in self.labs:
            self.labs.append(name)

    # -- outputs ---------------------------------------------------------------------------
    def add_output(self, name: str, data: bytes | str | None, source: str) -> None:
        """One output (a command's stream, a file, a store): searched as it is and, when it
        is a zip, a SQLite store or compressed, in what it holds."""
        if not data:
            return
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
        self.outputs += 1
        self.sources[source] = self.sources.get(source, 0) + 1
        self._expand(name, raw, None, 0)

    def add_store(self, name: str, db: bytes, wal: bytes | None, source: str) -> None:
        """A SQLite store (and its write-ahead log): its bytes, then every table."""
        self.outputs += 1
        self.sources[source] = self.sources.get(source, 0) + 1
        self._expand(name, db, wal, 0)

    def _expand(self, name: str, data: bytes, wal: bytes | None, depth: int) -> None:
        self._pieces.append((name, data))
        if wal:
            self._pieces.append((f"{name}-wal", wal))
        if depth >= MAX_DEPTH:
            return
        if data.startswith(_ZIP):
            self._zip(name, data, depth)
        elif data.startswith(_SQLITE):
            self._sqlite(name, data, wal, depth)
        else:
            inflated = _inflate(data)
            if inflated is not None:
                self._expand(f"{name} (decompressed)", inflated, None, depth + 1)

    def _zip(self, name: str, data: bytes, depth: int) -> None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for member in z.infolist():
                    if not member.is_dir():
                        self._expand(f"{name}!{member.filename}", z.read(member), None, depth + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError) as e:
            self.errors.append(f"{name}: not a readable zip ({e})")

    def _sqlite(self, name: str, data: bytes, wal: bytes | None, depth: int) -> None:
        """Every table's text and blob columns (a blob decompressed when it is zlib: the run
        history's reports, the portal's outbox), read from a copy (the lab's files are not
        touched; SQLite replays the copied log)."""
        with tempfile.TemporaryDirectory(prefix="secrets-sweep-") as tmp:
            path = Path(tmp) / "store.sqlite"
            path.write_bytes(data)
            if wal:
                path.with_name(path.name + "-wal").write_bytes(wal)
            try:
                db = sqlite3.connect(path)
                try:
                    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master"
                                                       " WHERE type = 'table'")]  # fmt: skip
                    for table in tables:
                        self._table(db, f"{name} table {table}", table, depth)
                finally:
                    db.close()
            except sqlite3.Error as e:
                self.errors.append(f"{name}: tables not readable ({e})")

    def _table(self, db: sqlite3.Connection, label: str, table: str, depth: int) -> None:
        """One table: its text and blob cells, searched together; a compressed blob (or a zip
        or a store kept in one) also in what it holds."""
        quoted = '"' + table.replace('"', '""') + '"'
        cursor = db.execute(f"SELECT * FROM {quoted}")
        columns = [d[0] for d in cursor.description or ()]
        cells: list[bytes] = []
        for number, row in enumerate(cursor, 1):
            for column, value in zip(columns, row, strict=True):
                if isinstance(value, str):
                    cells.append(value.encode("utf-8", "surrogateescape"))
                elif isinstance(value, bytes):
                    cells.append(value)
                    where = f"{label} row {number} {column}"
                    inflated = _inflate(value)
                    if inflated is not None:
                        self._expand(f"{where} (decompressed)", inflated, None, depth + 1)
                    elif value.startswith((_ZIP, _SQLITE)):
                        self._expand(where, value, None, depth + 1)
        self._pieces.append((label, b"\n".join(cells)))

    def add_tree(self, root: Path, source: str) -> None:
        """Every file under ``root``, but inputs and key material (:data:`NOT_OUTPUTS`) and
        the Python environments pip installed there (a folder holding ``pyvenv.cfg``: the
        packaging tests' pipx or venv, not written by a test or the agent)."""
        if not root.is_dir():
            return
        for folder, dirs, files in os.walk(root):
            base = Path(folder)
            dirs[:] = sorted(d for d in dirs if not (base / d / "pyvenv.cfg").is_file())
            names = set(files)
            for file in sorted(files):
                path = base / file
                if path.is_symlink() or path.suffix.lower() in NOT_OUTPUTS:
                    continue
                if path == root / ".lock":
                    continue  # pytest's own lock of its numbered basetemp (a PID)
                if file.endswith(("-wal", "-shm")) and file[:-4] in names:
                    continue  # read with its database
                try:
                    size = path.stat().st_size
                    if size > MAX_FILE:
                        self.errors.append(f"{path}: {size} bytes, not read")
                        continue
                    data = path.read_bytes()
                    wal_path = path.with_name(file + "-wal")
                    wal = wal_path.read_bytes() if wal_path.is_file() else None
                except OSError as e:
                    self.errors.append(f"{path}: {e.strerror or e}")
                    continue
                shown = str(path.relative_to(root))
                if data.startswith(_SQLITE):
                    self.add_store(shown, data, wal, source)
                else:
                    self.add_output(shown, data, source)
                    if wal:
                        self.add_output(shown + "-wal", wal, source)

    # -- the search ------------------------------------------------------------------------
    def _needles(self) -> list[tuple[bytes, str, str]]:
        needles = []
        for value, (kind, lab, encoded) in self._secrets.items():
            raw = value.encode("utf-8")
            needles.append((raw, kind, lab))
            if encoded and len(raw) >= ENCODED_MIN_LEN:
                needles += [(c, f"{kind} (base64)", lab) for c in base64_cores(raw)]
        return needles

    def check(self) -> Result:
        """Search every output for every secret."""
        needles = self._needles()
        by_prefix: dict[bytes, list[tuple[bytes, str, str]]] = {}
        others = []
        for needle in needles:
            if _ALL_WORD.fullmatch(needle[0]):
                by_prefix.setdefault(needle[0][:MIN_LEN], []).append(needle)
            else:
                others.append(needle)
        hits: dict[Hit, None] = {}
        size = 0
        for name, data in self._pieces:
            size += len(data)
            for _value, kind, lab in _find(data, by_prefix, others):
                hits.setdefault(Hit(kind, lab, name))
        return Result(
            labs=len(self.labs),
            secrets=len(self._secrets),
            skipped_short=len(self._short - set(self._secrets)),
            outputs=self.outputs,
            pieces=len(self._pieces),
            bytes=size,
            hits=[Hit(h.kind, h.lab, self.mask(h.output)) for h in hits],
            sources=dict(self.sources),
            errors=[self.mask(e) for e in self.errors],
        )

    def mask(self, text: str) -> str:
        """``text`` with every known secret as ``***``: what is printed (an output's name, why
        something could not be read) never shows one either."""
        for value in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    # -- a lab's life ----------------------------------------------------------------------
    def lab_up(self, lab: Any) -> None:
        """Record a lab that came up and its secrets."""
        state, name = lab.state, lab.state.instance
        self.add_lab(name)
        for secret in state.passwords.values():
            self.add_secret("SIP line password", secret, name)
        for secret in state.admin_passwords.values():
            self.add_secret("phone web admin password", secret, name)
        api = state.api or {}
        for cred in api.get("credentials", []):
            self.add_secret("OVHcloud API application secret", cred.get("application_secret"), name)
            self.add_secret("OVHcloud API consumer key", cred.get("consumer_key"), name)
        for account in (api.get("billing_accounts") or {}).values():
            for line in (account.get("lines") or {}).values():
                self.add_secret("SIP line password", line.get("sip_password"), name)
        for user, secret in (state.mqtt or {}).items():
            self.add_secret(f"MQTT password ({user})", secret, name)
        self._config_secrets(lab, name)
        self._phone_secrets(lab, name)
        try:
            from lab.services import mosquitto

            key = mosquitto.portal_key(state.dir)
            if key.is_file():
                body = pem_body(key.read_text())
                self.add_secret("portal private key", body, name, encoded=False)
        except (ImportError, OSError) as e:
            self.errors.append(f"lab {name}: portal key not read ({e})")

    def _config_secrets(self, lab: Any, name: str) -> None:
        """The secrets the agent's configuration holds (its communities: the default ones
        are not secrets, see :data:`DEFAULT_COMMUNITIES`)."""
        try:
            cfg = tomllib.loads(Path(lab.config_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            self.errors.append(f"lab {name}: agent config not read ({e})")
            return
        snmp = cfg.get("snmp", {})
        for community in snmp.get("communities", []):
            if community not in DEFAULT_COMMUNITIES:
                self.add_secret("SNMP community", community, name)
        self.add_secret("SNMP v3 auth key", snmp.get("v3_auth_key"), name)
        self.add_secret("SNMP v3 privacy key", snmp.get("v3_priv_key"), name)
        provider = cfg.get("provider", {})
        self.add_secret("OVHcloud API application secret", provider.get("application_secret"), name)
        self.add_secret("OVHcloud API consumer key", provider.get("consumer_key"), name)
        for cred in cfg.get("credentials", []):
            self.add_secret("phone web admin password", cred.get("password"), name)

    def _phone_secrets(self, lab: Any, name: str) -> None:
        """What each phone holds: its web login and its line's SIP password."""
        roles = [p["role"] for p in [*lab.state.phones, *lab.state.extra_uas]]
        for role in roles:
            try:
                settings = _phone_settings(lab, role)
            except (OSError, ValueError, LookupError) as e:
                self.errors.append(f"lab {name}: {role}'s settings not read ({e})")
                continue
            self.phone_changes(name, settings)

    def phone_changes(self, lab: str, changes: Mapping[str, Any]) -> None:
        """The passwords in a phone's settings (or in changes made to them)."""
        admin = changes.get("admin")
        if isinstance(admin, Mapping):
            self.add_secret("phone web admin password", admin.get("password"), lab)
        self.add_secret("SIP password held by a phone", changes.get("sip_password"), lab)

    def lab_run(self, lab: Any, argv: Sequence[Any], result: Any, how: str) -> None:
        """A command run on one of the lab's hosts: its output, if it is phonediag's."""
        command = agent_command(argv, self._secrets)
        if command is None or result is None:
            return
        test = _current_test()
        for stream in ("stdout", "stderr"):
            name = f"lab {lab.state.instance} `{command}` on the {how}: {stream}"
            name += f" [{test}]" if test else ""
            self.add_output(name, getattr(result, stream, None), "agent runs")

    def lab_down(self, lab: Any) -> None:
        """Before a lab goes: the passwords its phones now hold, the agent's portal key and
        its store (history, remedies audit log, portal state)."""
        state, name = lab.state, lab.state.instance
        if not Path(state.dir).is_dir():
            return  # already down (down is idempotent), or it never came up
        self.add_lab(name)
        self._phone_secrets(lab, name)
        cfg: dict[str, Any] = {}
        try:
            cfg = tomllib.loads(Path(lab.config_path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            self.errors.append(f"lab {name}: agent config not read ({e})")
        store = Path(cfg.get("store", {}).get("path") or Path(state.dir) / "phonediag.sqlite")
        portal = Path(cfg.get("portal", {}).get("dir") or store.parent / "portal")
        key = portal / "agent.key"
        try:
            if key.is_file():
                body = pem_body(key.read_text())
                self.add_secret("agent portal private key", body, name, encoded=False)
        except OSError as e:
            self.errors.append(f"lab {name}: agent key not read ({e})")
        if str(store) in self._stored or not store.is_file():
            return
        self._stored.add(str(store))
        try:
            db = store.read_bytes()
            wal_path = store.with_name(store.name + "-wal")
            wal = wal_path.read_bytes() if wal_path.is_file() else None
        except OSError as e:
            self.errors.append(f"lab {name}: store not read ({e.strerror or e})")
            return
        self.add_store(f"lab {name} store {store.name}", db, wal, "lab stores")

    def instrument(self, mp: pytest.MonkeyPatch, lab_class: type) -> None:
        """Wrap ``lab_class``'s up, run, exec, set_phone_state and down (undone with ``mp``).
        Collecting never breaks a test: what cannot be read is reported, not raised."""
        up = lab_class.__dict__["up"].__func__
        run, execute = lab_class.run, lab_class.exec
        down, set_state = lab_class.down, lab_class.set_phone_state
        guard = self._guard

        @functools.wraps(up)
        def up_(cls: type, *args: Any, **kwargs: Any) -> Any:
            lab = up(cls, *args, **kwargs)
            guard(self.lab_up, lab)
            return lab

        @functools.wraps(run)
        def run_(lab: Any, argv: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
            result = run(lab, argv, *args, **kwargs)
            guard(self.lab_run, lab, argv, result, "agent host")
            return result

        @functools.wraps(execute)
        def exec_(lab: Any, role: str, argv: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
            result = execute(lab, role, argv, *args, **kwargs)
            guard(self.lab_run, lab, argv, result, f"{role} host")
            return result

        @functools.wraps(set_state)
        def set_state_(lab: Any, role: str, **changes: Any) -> Any:
            guard(self.phone_changes, lab.state.instance, changes)
            return set_state(lab, role, **changes)

        @functools.wraps(down)
        def down_(lab: Any) -> None:
            guard(self.lab_down, lab)
            down(lab)

        mp.setattr(lab_class, "up", classmethod(up_))
        mp.setattr(lab_class, "run", run_)
        mp.setattr(lab_class, "exec", exec_)
        mp.setattr(lab_class, "set_phone_state", set_state_)
        mp.setattr(lab_class, "down", down_)

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # the sweep reports it; the test goes on
            self.errors.append(f"{fn.__name__}: {type(e).__name__}: {e}")


def _phone_settings(lab: Any, role: str) -> Mapping[str, Any]:
    """A phone's (or an extra SIP UA's) settings file, as the lab keeps it."""
    if any(p["role"] == role for p in lab.state.phones):
        return lab.phone_state(role)
    from lab.services import face

    return face.read_state(face.state_file(lab.state.dir, role))


def _inflate(data: bytes) -> bytes | None:
    """``data`` decompressed when it is a whole zlib or gzip stream, else None."""
    if len(data) < 8 or not (data[:1] == b"\x78" or data.startswith(b"\x1f\x8b")):
        return None
    try:
        d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header
        out = d.decompress(data, MAX_FILE)
    except zlib.error:
        return None
    return out if d.eof else None


def _find(
    data: bytes,
    by_prefix: Mapping[bytes, list[tuple[bytes, str, str]]],
    others: Iterable[tuple[bytes, str, str]],
) -> list[tuple[bytes, str, str]]:
    """The needles in ``data``: each candidate run of word characters is looked at once,
    window by window (much faster than searching the whole data for each needle)."""
    found = []
    if by_prefix:
        seen: set[bytes] = set()
        for run in set(_RUN.findall(data)):
            for i in range(len(run) - MIN_LEN + 1):
                for needle in by_prefix.get(run[i : i + MIN_LEN], ()):
                    if needle[0] not in seen and run.startswith(needle[0], i):
                        seen.add(needle[0])
                        found.append(needle)
    found += [n for n in others if n[0] in data]
    return found


_ACTIVE: list[Sweep] = []  # the session's sweep, for :func:`output`


def output(name: str, data: bytes | str | None) -> None:
    """Hand the sweep what an agent command started outside ``Lab.run`` printed (on a
    terminal, in tmux, from the portal's side); nothing when no sweep is active."""
    for sweep in _ACTIVE[-1:]:
        sweep.add_output(name, data, "agent runs")


class SweepPlugin:
    """The pytest side: the sweep at session end (before tests/conftest.py removes the
    session's store folder: ``tryfirst``), its line in the terminal summary."""

    def __init__(self, store_dir: Path | None = None) -> None:
        self.sweep = Sweep()
        _ACTIVE.append(self.sweep)
        self.dirs: dict[Path, str] = {}
        if store_dir is not None:
            self.dirs[Path(store_dir)] = "session store"
        self.result: Result | None = None
        self.instrumented = False  # lab tests ran: tests/lab/conftest.py called :meth:`labs`

    def watch(self, folder: Path, source: str) -> None:
        """Read every file under ``folder`` at the end."""
        self.dirs.setdefault(Path(folder), source)

    def labs(self, mp: pytest.MonkeyPatch, lab_class: type, basetemp: Path) -> None:
        """Watch the labs of this session (``lab_class``'s methods wrapped, undone with
        ``mp``) and, at the end, the files under pytest's ``basetemp``."""
        self.instrumented = True
        self.watch(basetemp, "basetemp files")
        self.sweep.instrument(mp, lab_class)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.sweep.labs:
            self._write({"labs": 0, "secrets": 0, "outputs": 0, "found": 0})
            return
        for folder, source in self.dirs.items():
            self.sweep.add_tree(folder, source)
        self.result = self.sweep.check()
        self._write(self.result.to_dict())
        if self.result.hits:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _write(self, doc: dict[str, Any]) -> None:
        out = os.environ.get(REPORT_ENV)
        if out:
            Path(out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.result
        if result is None:  # no lab came up; said only when lab tests ran (unit tests: silent)
            if self.instrumented:
                terminalreporter.write_line("secrets sweep: no lab came up, nothing to check")
            return
        line = result.line()
        if result.skipped_short:
            line += f" ({result.skipped_short} shorter than {MIN_LEN} characters not searched)"
        terminalreporter.write_line(line, red=bool(result.hits), bold=bool(result.hits))
        for hit in result.hits:
            terminalreporter.write_line(f"  secret found: {hit}", red=True)
        for error in result.errors:
            terminalreporter.write_line(f"  not swept: {error}", yellow=True)
