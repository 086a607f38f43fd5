"""The phone's firmware logic around its real SIP UA: the state file drives baresip.

Runs as a thread of the face process (``lab.personalities.server``), or alone with
``python -m lab.personalities.controller --state FILE``. It holds baresip's one ctrl_tcp
connection (see ``ctrlmux``) and:

* DND on, or forward-always set: the account's answermode becomes ``manual`` and every
  incoming call is rejected at once with baresip's ``hangup``, which answers
  ``486 Rejected`` (a forwarded call is logged "forwarded to X": baresip 1.0 cannot send
  a 302). Otherwise answermode is ``auto``, as the phone was started.
* registration(): ``reginfo`` says whether the line is registered; the last REGISTER answer
  (code and reason) comes from the REGISTER_OK/REGISTER_FAIL events, or, for what happened
  before the controller connected, from baresip's own log line.
* incoming calls: every call whose INVITE reached the phone is kept (the first event of
  direction "incoming" of each call id: CALL_INCOMING in manual answermode, CALL_REMOTE_SDP
  in auto answermode, where baresip 1.0 emits no CALL_INCOMING), and the ``lab_incoming``
  command returns them as JSON (time, peer, id, first: that event's type), oldest first.
* boot (``lab_boot``, or a face's reboot page): the line's UA is deleted (baresip
  un-REGISTERs), the phone "boots" for BOOT_S, fetches ``<mac12>.xml`` next to its
  ``provisioning_url`` from the provisioning server and applies it (profile.py; anything but
  a 200 ``<flat-profile>`` keeps the stored settings), then creates the UA again from the
  state (line, registrar, ``sip_password``, answermode): it registers. The face answers 503
  meanwhile. ``lab_drop``: the UA is deleted and stays so until the next boot (a stuck SIP
  stack). A resync (Cisco's ``/admin/resync``) fetches and applies a profile without a boot,
  and re-creates the UA when the line, registrar or password changed.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.personalities import Phone, profile
from lab.personalities.ctrlmux import CtrlMux, Message, log
from lab.services import phone as sip

CLIENT_ADDR = ("127.0.0.1", 4444)  # what lab clients use, as with a bare baresip
BARESIP_ADDR = ("127.0.0.1", 4445)  # baresip's own ctrl_tcp, behind the controller
CACHE_S = 1.0
POLL_S = 0.2
MAX_INCOMING = 200  # incoming calls remembered
# How long a lab phone takes to boot. A real one takes about a minute; the lab keeps the
# shape (un-REGISTER, silence, provisioning, REGISTER) and not the wait.
BOOT_S = 2.0
UA_KEYS = ("line", "registrar", "sip_password")  # a change re-creates the SIP UA

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CODE = re.compile(r"^\s*(\d{3})\s+(.*?)\s*$")
# baresip's log: "1001@sip.ovh.test: {0/UDP/v4} 200 OK (kamailio …) [1 binding]" and
# "reg: sip:1001@sip.ovh.test: 401 Unauthorized (kamailio …)"
UA_ROW = re.compile(r"^[>\s]*(sip:\S+)", re.M)  # an account row of `reginfo`
LOG_LINE = re.compile(
    r"^(?:reg: )?(?:sip:)?(?P<user>[^\s@:]+)@\S+: (?:\{[^}]*\} )?"
    r"(?P<code>[1-6]\d\d) (?P<reason>[^(\[]*?)\s*(?:[(\[].*)?$"
)


def parse_status(text: str) -> tuple[int | None, str | None]:
    """'401 Unauthorized' -> (401, 'Unauthorized'); anything else -> (None, text)."""
    match = CODE.match(text or "")
    if match:
        return int(match.group(1)), match.group(2) or None
    return None, (text or None)


def reginfo_state(data: str, line: str) -> str | None:
    """The state word ``reginfo`` prints for the line's account: OK, ERR or zzz."""
    for row in ANSI.sub("", data).splitlines():
        if f"sip:{line}@" in row:
            parts = row.replace(">", " ").split()
            return parts[1] if len(parts) > 1 else None
    return None


def last_log_status(log_file: Path | None, line: str) -> tuple[int | None, str | None]:
    """The last REGISTER answer baresip logged for ``line`` (None, None if none)."""
    if log_file is None:
        return None, None
    try:
        with log_file.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 65536))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return None, None
    found: tuple[int | None, str | None] = (None, None)
    for row in ANSI.sub("", text).splitlines():
        match = LOG_LINE.match(row.strip())
        if match and match.group("user") == line:
            found = int(match.group("code")), match.group("reason") or None
    return found


class Controller:
    """Applies the phone state to baresip and reports the line's registration."""

    def __init__(
        self,
        state_file: Path,
        sip_log: Path | None = None,
        upstream: tuple[str, int] = BARESIP_ADDR,
        listen: tuple[str, int] = CLIENT_ADDR,
    ) -> None:
        self.state_file, self.sip_log = state_file, sip_log
        self.state: dict[str, Any] = self._read()
        self.line = str(self.state.get("line", ""))
        self.lock = threading.Lock()
        self.applied_mode: str | None = None
        self.stamp: tuple[int, int] | None = None
        self.last: tuple[int | None, str | None] | None = None  # from events
        self.cache: tuple[float, dict[str, Any]] | None = None
        self.incoming: list[dict[str, Any]] = []  # calls that reached the phone, oldest first
        self.jobs = threading.Lock()  # one boot, drop or resync at a time
        self.boots = 0  # boots asked for and not finished: the face answers 503 meanwhile
        self.ua_present = True  # baresip starts with the line's UA (its accounts file)
        self.generation = 0  # + 1 each time the UA is deleted or created
        self.mux = CtrlMux(
            upstream,
            listen,
            on_event=self.on_event,
            on_connect=self.on_connect,
            local={
                "lab_reload": self._cmd_reload,
                "lab_registration": self._cmd_registration,
                "lab_incoming": self._cmd_incoming,
                "lab_boot": self._cmd_boot,
                "lab_drop": self._cmd_drop,
            },
        )

    def start(self) -> None:
        self.mux.start()
        threading.Thread(target=self._watch, name="state-watch", daemon=True).start()

    # -- state -----------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.state_file.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def wanted_mode(self) -> str:
        """answermode for the current state: calls must not be auto-answered when diverted."""
        forward = self.state.get("forward") or {}
        return "manual" if self.state.get("dnd") or forward.get("always") else "auto"

    def reload(self) -> None:
        """Re-read the state file and apply it to baresip now."""
        with self.lock:
            self.stamp = self._stamp()
            try:
                self.state = self._read()
            except (OSError, ValueError) as exc:
                log(f"cannot read {self.state_file}: {exc}")
                return
            mode = self.wanted_mode()
            if mode == self.applied_mode or not self.mux.connected.is_set():
                return
            if not self.ua_present:  # no UA to apply it to: it is created with the state's
                return
            answer = self.mux.request("answermode", mode)
            if answer.get("ok"):
                self.applied_mode = mode
                log(f"answermode {mode} (dnd={self.state.get('dnd')}, forward={self._forward()!r})")

    def _forward(self) -> str:
        return str((self.state.get("forward") or {}).get("always") or "")

    def _watch(self) -> None:
        """Apply changes made to the file by anyone (tests, the face, an editor)."""
        while True:
            time.sleep(POLL_S)
            if self._stamp() != self.stamp:
                try:
                    self.reload()
                except Exception as exc:
                    log(f"reload failed: {exc!r}")

    # -- baresip ---------------------------------------------------------------------------
    def on_connect(self) -> None:
        self.applied_mode = None  # baresip may have been restarted: apply again
        self.reload()

    def on_event(self, event: Message) -> None:
        kind = event.get("type")
        if event.get("direction") == "incoming":
            self._record_incoming(event)
        if kind in ("REGISTER_OK", "REGISTER_FAIL"):
            status, reason = parse_status(str(event.get("param", "")))
            if kind == "REGISTER_OK" and status is None:
                status, reason = 200, "OK"
            with self.lock:
                self.last = (status, reason)
                self.cache = None
            log(f"{kind}: {event.get('param')}")
        elif kind == "CALL_INCOMING":
            self._incoming(str(event.get("peeruri") or event.get("param") or "?"))

    def _record_incoming(self, event: Message) -> None:
        """Remember a call that reached the phone (once per call id)."""
        call_id = str(event.get("id") or "")
        with self.lock:
            if any(c["id"] == call_id for c in self.incoming):
                return
            peer = str(event.get("peeruri") or "?")
            first = event.get("type")
            self.incoming.append({"time": time.time(), "peer": peer, "id": call_id, "first": first})
            del self.incoming[:-MAX_INCOMING]

    def _incoming(self, peer: str) -> None:
        with self.lock:
            dnd, forward = bool(self.state.get("dnd")), self._forward()
        if not dnd and not forward:
            return
        self.mux.request("hangup")
        if dnd:
            log(f"DND: rejected call from {peer} (486)")
        else:
            log(f"call from {peer} forwarded to {forward} (rejected locally: 486)")

    # -- registration ----------------------------------------------------------------------
    def registration(self) -> dict[str, Any]:
        """{registered, status, reason} of the line, cached ~1 s."""
        now = time.monotonic()
        with self.lock:
            if self.cache and now - self.cache[0] < CACHE_S:
                return dict(self.cache[1])
            generation = self.generation
        try:
            answer = self.mux.request("reginfo", timeout=1.0)
            word = reginfo_state(str(answer.get("data", "")), self.line)
        except TimeoutError:
            word = None
        with self.lock:
            last = self.last  # read after reginfo: a UA deleted meanwhile has no status
        if last is None:
            last = last_log_status(self.sip_log, self.line)
        status, reason = last
        registered = word == "OK"
        if registered and status is None:
            status, reason = 200, "OK"
        result = {"registered": registered, "status": status, "reason": reason}
        with self.lock:
            if generation == self.generation:  # no UA deleted or created meanwhile
                self.cache = (now, result)
        return dict(result)

    # -- boot, provisioning, a stuck SIP stack ----------------------------------------------
    @property
    def booting(self) -> bool:
        """True from a boot's request until the phone is up again."""
        with self.lock:
            return self.boots > 0

    def boot_async(self, reason: str) -> None:
        """Boot in a thread (so that an HTTP answer goes out first); ``booting`` at once."""
        with self.lock:
            self.boots += 1
        self._spawn(self.boot, reason)

    def drop_async(self) -> None:
        """The SIP stack gets stuck: the line's UA is deleted until the next boot."""
        self._spawn(self.drop)

    def resync_async(self, url: str | None, reason: str) -> None:
        """``resync`` in a thread."""
        self._spawn(self.resync, url, reason)

    def _spawn(self, job: Callable[..., None], *args: Any) -> None:
        def run() -> None:
            try:
                job(*args)
            except Exception as exc:  # the controller must keep running
                log(f"{job.__name__} failed: {exc!r}")
            finally:
                if job == self.boot:
                    with self.lock:
                        self.boots -= 1

        threading.Thread(target=run, name=job.__name__, daemon=True).start()

    def boot(self, reason: str) -> None:
        """Un-REGISTER, wait BOOT_S, fetch the profile, create the UA again (it registers)."""
        with self.jobs:
            log(f"rebooting ({reason})")
            self._delete_ua()
            time.sleep(BOOT_S)
            state = self._read()
            if state.get("provisioning_url"):
                url = str(state["provisioning_url"])
                self._fetch_and_apply(profile.profile_url(url, str(state.get("mac", ""))))
            self._create_ua()
            log("booted")

    def drop(self) -> None:
        """Delete the line's UA (baresip un-REGISTERs); only a boot creates it again."""
        with self.jobs:
            log("SIP stack stuck: the line is not registered until the next boot")
            self._delete_ua()

    def resync(self, url: str | None, reason: str) -> None:
        """Fetch a profile (``url``, else ``<mac12>.xml`` next to ``provisioning_url``) and
        apply it; the UA is created again if its line settings changed (not after a drop)."""
        with self.jobs:
            log(f"resync ({reason})")
            if url is None:
                state = self._read()
                rule = str(state.get("provisioning_url") or "")
                if not rule:
                    log("resync: no provisioning URL")
                    return
                url = profile.profile_url(rule, str(state.get("mac", "")))
            if self._fetch_and_apply(url) and self.ua_present:
                log("line settings changed: creating the SIP UA again")
                self._delete_ua()
                self._create_ua()

    def _fetch_and_apply(self, url: str) -> bool:
        """Fetch a profile and apply it to the state file; True if the UA's settings changed."""
        server = str(self._read().get("provisioning_server") or "")
        try:
            status, body = profile.fetch(url, server)
        except (OSError, ValueError) as exc:
            log(f"provisioning {url}: {exc}; keeping the stored settings")
            return False
        if status != 200:
            log(f"provisioning {url}: HTTP {status}; keeping the stored settings")
            return False
        phone = Phone(self.state_file)
        before = [phone.state.get(k) for k in UA_KEYS]
        try:
            changed = profile.apply(phone.state, body)
        except profile.ProfileError as exc:
            log(f"provisioning {url}: {exc}; keeping the stored settings")
            return False
        if changed:
            phone.save()
        log(f"provisioning {url}: applied {', '.join(changed) or 'nothing new'}")
        self.reload()
        return [phone.state.get(k) for k in UA_KEYS] != before

    def _ask(self, command: str, params: str = "") -> Message:
        try:
            return self.mux.request(command, params)
        except TimeoutError as exc:
            return {"ok": False, "data": str(exc)}

    def _delete_ua(self) -> None:
        """Delete every UA baresip has (it un-REGISTERs); the face then shows no status.

        Under ``lock``, as ``reload``: no answermode is ever sent to a UA being deleted."""
        with self.lock:
            self.ua_present = False
            listing = ANSI.sub("", str(self._ask("reginfo").get("data", "")))
            for aor in UA_ROW.findall(listing):
                answer = self._ask("uadel", aor)
                log(f"uadel {aor}: {'deleted' if answer.get('ok') else answer.get('data')}")
            self.last, self.cache = (None, None), None  # not the last boot's answer
            self.generation += 1

    def _create_ua(self) -> None:
        """Create the line's UA from the state file (``uanew``): it registers at once."""
        with self.lock:
            self.state = self._read()
            self.line = str(self.state.get("line", ""))
            mode = self.wanted_mode()
            registrar = str(self.state.get("registrar", ""))
            password = str(self.state.get("sip_password", ""))
            account = sip.render_account({"line": self.line}, registrar, password, mode)
            answer = self._ask("uanew", account.strip())  # it echoes the password: not logged
            self.ua_present = bool(answer.get("ok"))
            self.applied_mode = mode if self.ua_present else None
            self.cache = None
            self.generation += 1
        if self.ua_present:
            log(f"UA sip:{self.line}@{registrar} created (answermode {mode})")
        else:
            log(f"uanew sip:{self.line}@{registrar} failed")

    def _cmd_boot(self, params: str) -> str:
        self.boot_async(params or "lab_boot")
        return "booting\n"

    def _cmd_drop(self, _params: str) -> str:
        self.drop_async()
        return "dropping\n"

    def _cmd_reload(self, _params: str) -> str:
        self.reload()
        return f"answermode {self.applied_mode}\n"

    def _cmd_registration(self, _params: str) -> str:
        return json.dumps(self.registration())

    def _cmd_incoming(self, _params: str) -> str:
        with self.lock:
            return json.dumps(self.incoming)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.personalities.controller")
    parser.add_argument("--state", type=Path, required=True, help="phone-state.json")
    parser.add_argument("--sip-log", type=Path, help="baresip's log (REGISTER before we connect)")
    args = parser.parse_args(argv)
    Controller(args.state, args.sip_log).start()
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
