"""The Lab object: bring an office up, use it, tear it down (CLI and tests share it)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lab import fleet, hostile, netns, procs, ready, scenarios, startup, topology
from lab.phones import admin_secret, make_extra_ua, make_phones
from lab.services import face, kamailio, mosquitto, ovhapi, phone
from lab.state import ROOT, Proc, State, check_instance, instance_from_env, state_dir

# A signed call to the API stand-in, run on the agent host (OVHcloud's signature: "$1$" +
# SHA1(AS+CK+METHOD+URL+BODY+TS)); prints "STATUS BODY".
_API_CALL = """
import hashlib, ssl, sys, time, urllib.error, urllib.request
ak, as_, ck, ca, method, url, body = sys.argv[1:8]
ts = str(int(time.time()))
sig = "$1$" + hashlib.sha1("+".join([as_, ck, method, url, body, ts]).encode()).hexdigest()
req = urllib.request.Request(url, data=body.encode() or None, method=method, headers={
    "X-Ovh-Application": ak, "X-Ovh-Consumer": ck, "X-Ovh-Timestamp": ts,
    "X-Ovh-Signature": sig, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca), timeout=5) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"""

KEEP_LOGS_ENV = "PHONEDIAG_LAB_KEEP_LOGS"
DEFAULT_PHONES = 3


class LabError(RuntimeError):
    """A lab operation failed (one-line message)."""


class AlreadyUp(LabError):
    """The instance is already up."""


class NotUp(LabError):
    """The instance is not up."""


def _quiet(_msg: str) -> None:
    """Default progress callback: say nothing."""


class Lab:
    """A running office lab, described by its state.json."""

    def __init__(self, state: State) -> None:
        self.state = state

    # -- life cycle ------------------------------------------------------------------------
    @classmethod
    def up(
        cls,
        scenario: str = "healthy",
        *,
        phones: int | None = None,
        name: str | None = None,
        timeout: float = 20.0,
        progress: Callable[[str], None] = _quiet,
    ) -> Lab:
        """Bring up ``scenario`` and return when it is ready; on any failure (or Ctrl-C)
        everything created so far is torn down and the error re-raised.

        ``name`` is the instance; by default a unique one (``py-<hex>``) so tests never collide
        with a lab started from the CLI. ``phones``: 3 by default (1..20); for ``fleet``, 50 by
        default (7..200), and they are ``fleet_hosts``, not ``phones``. ``hostile`` adds its
        neighbours (``hostile_hosts``) to the office's phones.
        """
        chosen = scenarios.get(scenario)
        hosts: list[dict[str, Any]] = []
        if chosen.fleet:
            hosts = fleet.plan(fleet.DEFAULT_PHONES if phones is None else phones)
            truth: list[dict[str, Any]] = []
            fault = 0
        else:
            count = DEFAULT_PHONES if phones is None else phones
            fault = chosen.fault_index(count)
            truth = make_phones(count, {fault: chosen.model} if chosen.model else None)
            if chosen.hostile:  # served by the fleet process, in the fleet namespace
                hosts = hostile.plan(truth)
        instance = check_instance(name or f"py-{secrets.token_hex(3)}")
        _make_state_dir(instance)
        state = State(
            instance=instance, scenario=scenario, prefix=_free_prefix(), created=time.time()
        )
        state.phones = truth
        state.fleet = hosts
        if chosen.duplicate_ua:
            state.extra_uas = [make_extra_ua(truth[fault - 1]["line"], chosen.duplicate_ua)]
        roles = topology.roles(truth, state.extra_uas, bool(hosts))
        state.namespaces = {r: f"{state.prefix}-{r}" for r in roles}
        state.passwords = {p["line"]: secrets.token_hex(8) for p in truth}
        state.admin_passwords = {p["role"]: admin_secret(p) for p in [*truth, *state.extra_uas]}
        state.api = startup.api_account(truth, state.passwords)
        state.mqtt = mosquitto.new_users()
        state.save()
        lab = cls(state)
        try:
            startup.start(state, chosen, timeout, progress)
        except Exception as exc:
            kept = lab._keep_logs()
            lab.down()
            where = f" (logs kept in {kept})" if kept else ""
            raise LabError(f"lab {instance!r} failed to come up: {exc}{where}") from exc
        except BaseException:  # Ctrl-C, SystemExit: clean up, say nothing more
            lab.down()
            raise
        state.status = "up"
        state.save()
        return lab

    @classmethod
    def current(cls, instance: str | None = None) -> Lab:
        """Load a lab that is up (``PHONEDIAG_LAB`` or ``default`` when ``instance`` is None)."""
        instance = check_instance(instance or instance_from_env())
        try:
            return cls(State.load(instance))
        except FileNotFoundError:
            raise NotUp(f"lab {instance!r} is not up") from None

    def down(self) -> None:
        """Kill every process by PID, delete namespaces, /etc/netns dirs and the state dir.

        Idempotent; Ctrl-C is ignored meanwhile (main thread only) so the cleanup completes.
        """
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            survivors = procs.stop_all(self.state.procs)
            left = topology.destroy(list(self.state.namespaces.values()))
            if survivors or left:
                names = [f"{p.name}({p.pid})" for p in survivors] + left
                raise LabError(f"could not remove: {', '.join(names)}")
            shutil.rmtree(self.state.dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                ROOT.rmdir()  # only when no other instance is left
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)

    def _keep_logs(self) -> Path | None:
        """If PHONEDIAG_LAB_KEEP_LOGS is set, copy a failed start-up's logs to /tmp."""
        if not os.environ.get(KEEP_LOGS_ENV):
            return None
        logs = self.state.dir / "logs"
        dest = Path("/tmp") / f"phonediag-lab-{self.instance}-logs"
        try:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(logs, dest)
        except OSError:
            return None
        return dest

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- facts -----------------------------------------------------------------------------
    @property
    def instance(self) -> str:
        """Instance name."""
        return self.state.instance

    @property
    def scenario(self) -> str:
        """Scenario name."""
        return self.state.scenario

    @property
    def namespaces(self) -> dict[str, str]:
        """Role -> namespace name."""
        return dict(self.state.namespaces)

    @property
    def phones(self) -> list[dict[str, Any]]:
        """Ground truth of the phones (role, ip, mac, vendor, model, firmware, line, offers…)."""
        keys = ("role", "ip", "mac", "vendor", "model", "firmware", "line", "user_agent", "offers")
        return [{k: p[k] for k in keys} for p in self.state.phones]

    @property
    def fleet_hosts(self) -> list[dict[str, Any]]:
        """The fleet scenario's hosts, by address (empty in other scenarios): dicts with name,
        kind (phone, pc, printer, switch), ip, mac, vendor, vendor_name, model, firmware,
        methods (arp, sip-udp, sip-tcp, snmp, mdns, lldp, pnp, http), single_method (the one
        method a single-method phone is seen by, else None), and what the host answers with:
        user_agent, snmp, mdns, lldp (see lab/fleet.py)."""
        return [copy.deepcopy(h) for h in self.state.fleet if not h.get("behaviour")]

    @property
    def hostile_hosts(self) -> list[dict[str, Any]]:
        """The hostile scenario's neighbours (empty in other scenarios): dicts with name,
        kind ("hostile"), behaviour (silent, slow, garbage, huge, reset, outscope,
        mdns-flood), ip, mac (a phone vendor's OUI), vendor, model, firmware, user_agent,
        and the behaviour's settings (see lab/hostile.py)."""
        return [copy.deepcopy(h) for h in self.state.fleet if h.get("behaviour")]

    @property
    def extra_uas(self) -> list[dict[str, Any]]:
        """SIP UAs on the LAN that are not office phones (role, ip, mac, line, user_agent…)."""
        return [dict(u) for u in self.state.extra_uas]

    @property
    def api_account(self) -> str:
        """The billing account of the office's lines at the OVHcloud API stand-in."""
        return next(iter(self.state.api["billing_accounts"]))

    @property
    def api_credentials(self) -> dict[str, str]:
        """The API credential the agent is configured with: application_key,
        application_secret, consumer_key (and the rules it was granted)."""
        return dict(self.state.api["credentials"][0])

    @property
    def api_endpoint(self) -> str:
        """The API stand-in's endpoint, as the agent's config names it."""
        return ovhapi.ENDPOINT

    @property
    def api_ca_file(self) -> Path:
        """The CA that signed the API stand-in's certificate (the agent's ``ca_file``)."""
        return ovhapi.ca_file(self.state.dir)

    @property
    def config_path(self) -> Path:
        """The agent configuration file (PHONEDIAG_CONFIG)."""
        return self.state.dir / "agent.toml"

    def ns(self, role: str) -> str:
        """Namespace of ``role`` (prov, rtr, sw, agent, phone1…)."""
        try:
            return self.state.namespaces[role]
        except KeyError:
            raise LabError(f"no role {role!r}; roles: {', '.join(self.state.namespaces)}") from None

    # -- use -------------------------------------------------------------------------------
    def agent_env(self) -> dict[str, str]:
        """Environment for commands on the agent host: config path, venv first on PATH."""
        env = dict(os.environ)
        env["PHONEDIAG_CONFIG"] = str(self.config_path)
        env["PHONEDIAG_LAB"] = self.instance
        env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
        return env

    def agent_argv(self, argv: Sequence[str]) -> list[str]:
        """argv that runs ``argv`` on the agent host."""
        return netns.exec_argv(self.ns("agent"), argv)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on the agent host with PHONEDIAG_CONFIG set (``env`` adds variables);
        output is captured as text unless told otherwise."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        full_env = {**self.agent_env(), **(env or {})}
        return subprocess.run(
            self.agent_argv(argv), env=full_env, timeout=timeout, check=False, **kwargs
        )

    def exec(
        self, role: str, argv: Sequence[str], *, timeout: float | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in any role's namespace (output captured as text unless told otherwise)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(
            netns.exec_argv(self.ns(role), argv), timeout=timeout, check=False, **kwargs
        )

    def registrations(self) -> list[dict[str, Any]]:
        """The registrar's bindings: dicts with aor, address (Contact), received, user_agent."""
        return kamailio.registrations(self.state.dir)

    def phone_state(self, role: str) -> dict[str, Any]:
        """The phone's settings (its phone-state.json): dnd, forward, admin, firmware…"""
        self._phone(role)
        return face.read_state(face.state_file(self.state.dir, role))

    def set_phone_state(self, role: str, **changes: Any) -> dict[str, Any]:
        """Change the phone's settings (a dict value updates that dict, e.g.
        ``forward={"always": "0612345678"}``); its face and SIP UA follow at once."""
        path = face.state_file(self.state.dir, self._phone(role)["role"])
        new = face.merge(face.read_state(path), changes)
        face.write_state(path, new)
        face.reload(self.ns(role))  # the controller also polls the file, as a fallback
        return new

    def power_cycle(self, role: str) -> None:
        """Unplug and plug ``role`` back: it un-REGISTERs, boots (about 2 s, the controller's
        BOOT_S), fetches its profile from the provisioning server and registers again.
        Returns once the phone took the command; its face answers 503 while it boots."""
        self._phone_or_extra(role)
        if face.command(self.ns(role), "lab_boot", "power cycle") is None:
            raise LabError(f"{role}'s controller did not take the power cycle")

    def drop_registration(self, role: str) -> None:
        """``role``'s SIP stack gets stuck: it un-REGISTERs and stays unregistered (its faces
        say so) until it boots again. Returns once the phone took the command."""
        self._phone_or_extra(role)
        if face.command(self.ns(role), "lab_drop") is None:
            raise LabError(f"{role}'s controller did not take the command")

    def provisioning_fetches(self) -> list[dict[str, Any]]:
        """The profile requests the provisioning server answered, oldest first: dicts with
        time (epoch s), mac (12 hex digits, "-" if the path had none), ip (the source
        address: the office's public IP for phones behind the NAT), status (200, 403, 404)
        and path."""
        try:
            text = ovhapi.provisioning_log(self.state.dir).read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def phone_registration(self, role: str) -> dict[str, Any] | None:
        """What the phone itself says of its line: {registered, status, reason} (the face's
        ``Phone.registration()``); None if its controller did not answer."""
        self._phone(role)
        return face.registration(self.ns(role))

    def _phone(self, role: str) -> dict[str, Any]:
        found = next((p for p in self.state.phones if p["role"] == role), None)
        if found is None:
            raise LabError(f"no phone {role!r}")
        return found

    def call(self, caller: str, callee: str, timeout: float = 10.0) -> list[str]:
        """Dial ``callee``'s line from ``caller``; return the caller's baresip event types."""
        line = next((p["line"] for p in self.state.phones if p["role"] == callee), None)
        if line is None:
            raise LabError(f"no phone {callee!r}")
        return phone.call(self.ns(caller), f"sip:{line}@{kamailio.DOMAIN}", timeout=timeout)

    def dial(self, role: str, digits: str, timeout: float = 10.0) -> list[str]:
        """Dial ``digits`` (a number or a feature code such as ``*21*0612345678#``) from
        ``role``'s real SIP UA, as its user would; return its baresip event types."""
        return [str(e.get("type")) for e in self.dial_events(role, digits, timeout)]

    def dial_events(self, role: str, digits: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Like ``dial``, with baresip's whole events: CALL_CLOSED's ``param`` is the final
        answer, e.g. "603 Renvoi immediat active vers 0612345678" for a feature code.

        baresip sends the digits as they are in the R-URI user (``sip:*21*0612345678#@…``, the
        '#' unescaped); write ``%23`` for the escaped form most desk phones send. The
        registrar accepts both."""
        return phone.call_events(self.ns(role), f"sip:{digits}@{kamailio.DOMAIN}", timeout)

    def incoming_calls(self, role: str) -> list[dict[str, Any]]:
        """The calls whose INVITE reached ``role``'s SIP UA since its controller started, oldest
        first: dicts with time, peer (the caller's URI), id (baresip's call id) and first (the
        call's first baresip event). A call diverted at the provider is not there."""
        self._phone_or_extra(role)
        found = face.incoming_calls(self.ns(role))
        if found is None:
            raise LabError(f"{role}'s controller did not answer")
        return found

    def pstn_calls(self) -> list[dict[str, Any]]:
        """The calls that reached the PSTN gateway (from its SIP trace), oldest first: dicts
        with called_number, from, to (the line called first), diversion, call_id, status
        (its final answer, 200 once it picked up; None while ringing)."""
        log = phone.log_path(self.state.dir, phone.PSTN_ROLE)
        try:
            text = log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return phone.incoming_invites(text)

    def line_options(self, line: str) -> dict[str, str]:
        """The line's options at the provider (the registrar's ``opts``, shared with the API
        stand-in): LineOptions field -> "true"/"false"/value; absent fields are defaults."""
        return kamailio.line_options(self.state.dir, line)

    def set_line_option(self, line: str, name: str, value: str | bool) -> None:
        """Set one of the line's options at the provider, as the OVHcloud API does."""
        kamailio.set_line_option(self.state.dir, line, name, value)

    def last_registrations(self, line: str) -> list[dict[str, str]]:
        """The registrar's record of the line's REGISTERs (htable ``regs``), oldest first."""
        return kamailio.last_registrations(self.state.dir, line)

    def api_call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A call to the API stand-in from the agent host, signed as OVHcloud's clients sign
        them, with the lab's credential: (HTTP status, decoded JSON body or None)."""
        cred = self.api_credentials
        data = "" if body is None else json.dumps(body)
        argv = [sys.executable, "-c", _API_CALL, cred["application_key"]]
        argv += [cred["application_secret"], cred["consumer_key"], str(self.api_ca_file)]
        argv += [method, f"{self.api_endpoint}{path}", data]
        out = self.run(argv, timeout=30)
        if out.returncode != 0:
            raise LabError(f"API call {method} {path} failed: {out.stderr.strip()}")
        status, _, text = out.stdout.strip().partition(" ")
        return int(status), json.loads(text) if text.strip() else None

    # -- the portal's MQTT broker (lab/services/mosquitto.py) --------------------------------
    @property
    def broker_url(self) -> str:
        """The broker as the agent host names it (through the LAN's DNS and the NAT)."""
        return mosquitto.url(mosquitto.NAME)

    @property
    def portal_broker_url(self) -> str:
        """The broker as the portal's side names it: by address (the provider has no DNS)."""
        return mosquitto.url(topology.BROKER_IP)

    @property
    def broker_ca_file(self) -> Path:
        """The lab CA that signed the broker's certificate."""
        return mosquitto.ca_file(self.state.dir)

    def portal_enrolment(self, agent: str = mosquitto.AGENT_ID) -> dict[str, Any]:
        """What enrolling the lab's agent takes, and the portal's side: ``agent`` (its id and
        MQTT user), ``token`` (for ``phonediag portal enroll --broker URL --token T``),
        ``broker`` (the agent's URL), ``portal_broker`` (the portal's URL), ``ca_file``,
        ``portal_key`` and ``portal_pub`` (the portal's Ed25519 key pair, PEM), ``portal_user``
        and ``portal_password_file`` (its MQTT login)."""
        password = self.state.mqtt.get(agent)
        if password is None:
            raise LabError(f"no MQTT user {agent!r} at the lab's broker")
        base = self.state.dir
        return {
            "agent": agent,
            "token": mosquitto.enrolment_token(base, agent, self.broker_url, password),
            "broker": self.broker_url,
            "portal_broker": self.portal_broker_url,
            "ca_file": mosquitto.ca_file(base),
            "portal_key": mosquitto.portal_key(base),
            "portal_pub": mosquitto.portal_pub(base),
            "portal_user": mosquitto.PORTAL_USER,
            "portal_password_file": mosquitto.portal_password_file(base),
        }

    def _broker(self) -> Proc | None:
        return next((p for p in self.state.procs if p.name == mosquitto.PROC_NAME), None)

    def broker_running(self) -> bool:
        """Whether the broker's process runs."""
        proc = self._broker()
        return proc is not None and procs.alive(proc)

    def broker_stop(self) -> None:
        """Stop the broker (TERM: it saves its store, so queued QoS 1 messages survive; KILL
        after 3 s). Every client's connection drops."""
        proc = self._broker()
        if proc is not None and procs.stop_all([proc]):
            raise LabError(f"the broker ({proc.pid}) would not stop")

    def broker_start(self, timeout: float = 10.0) -> None:
        """Start the broker again, same configuration and store; returns once it accepts
        connections from the agent host."""
        if self.broker_running():
            return
        old = self._broker()
        proc = mosquitto.spawn(self.ns("prov"), self.state.dir)
        self.state.procs = [p for p in self.state.procs if p is not old] + [proc]
        self.state.save()
        try:
            check = startup.broker_check(self.ns("agent"))
            ready.wait([("mosquitto", check)], [proc], time.monotonic() + timeout)
        except ready.NotReady as e:
            raise LabError(str(e)) from None

    # -- the router's SSH face (lab/services/sshd.py) ---------------------------------------
    def router_host_key_change(self, timeout: float = 10.0) -> str:
        """The router answers SSH with a new host key, as after a reset or a replacement (or
        as a machine in the middle would): a new key is made and sshd restarted with it.
        Returns its SHA256 fingerprint once sshd accepts connections again."""
        from lab.services import sshd

        old = next((p for p in self.state.procs if p.name == sshd.PROC_NAME), None)
        if old is None:
            raise LabError("this lab's router has no sshd")
        if procs.stop_all([old]):
            raise LabError(f"the router's sshd ({old.pid}) would not stop")
        fingerprint = sshd.new_host_key(self.state.dir)
        proc = sshd.spawn(self.ns(sshd.ROLE), self.state.dir)
        self.state.procs = [p for p in self.state.procs if p is not old] + [proc]
        self.state.save()
        check = sshd.reachable(self.ns("agent"), topology.ROUTER_LAN_IP)
        try:
            ready.wait([("sshd", check)], [proc], time.monotonic() + timeout)
        except ready.NotReady as e:
            raise LabError(str(e)) from None
        return fingerprint

    def _phone_or_extra(self, role: str) -> dict[str, Any]:
        found = next((u for u in self.state.extra_uas if u["role"] == role), None)
        return found if found is not None else self._phone(role)


def _make_state_dir(instance: str) -> None:
    """Create the instance's state dir (owner-only); AlreadyUp if it exists."""
    for _ in range(3):  # another lab's `down` may remove an empty ROOT in between
        ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            state_dir(instance).mkdir(mode=0o700)
            return
        except FileExistsError:
            raise AlreadyUp(
                f"lab {instance!r} is already up (python -m lab down to remove it)"
            ) from None
        except FileNotFoundError:
            continue
    raise LabError(f"could not create {state_dir(instance)}")


def _free_prefix() -> str:
    """A namespace prefix ``pd<4 hex>`` that no existing namespace uses."""
    while True:
        prefix = f"pd{secrets.token_hex(2)}"
        if not any(n.startswith(prefix + "-") for n in _all_namespaces()):
            return prefix


def _all_namespaces() -> list[str]:
    """Names under /run/netns."""
    try:
        return [p.name for p in netns.NETNS_RUN_DIR.iterdir()]
    except FileNotFoundError:
        return []
