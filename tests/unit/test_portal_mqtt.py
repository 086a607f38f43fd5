"""Portal mode's transport (agent/portal/mqtt.py, enroll.py, serve.py, submit.py) against a
real mosquitto on loopback, configured as the lab's broker is (TLS, passwords, per-agent
ACLs, persistence: lab/services/mosquitto.py). Run under ``unshare -n`` like every test.

The jobs here do not touch the network: a ``report`` job, or a stand-in for the job runner
(``execute.run_job``) that only waits, to have a job last while the broker goes away or the
agent dies. The real jobs end to end: tests/lab/test_agent_portal.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import config
from agent.portal import enroll, execute, jobs, keys, mqtt, serve, submit, topic
from lab.services import mosquitto

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None, reason="mosquitto missing: run `make test` (installs it)"
)

AGENT = mosquitto.AGENT_ID
HOST, PORT = "127.0.0.1", 18883
URL = f"mqtts://{HOST}:{PORT}"


# ------------------------------------------------------------------ URLs and tokens


def test_broker_urls_are_tls_only_with_8883_by_default():
    assert mqtt.parse_url("mqtts://mqtt.ovh.test") == ("mqtt.ovh.test", 8883)
    assert mqtt.parse_url("mqtts://10.0.0.1:1884/") == ("10.0.0.1", 1884)
    assert mqtt.same_broker("mqtts://MQTT.ovh.test", "mqtts://mqtt.ovh.test:8883")
    assert not mqtt.same_broker("mqtts://mqtt.ovh.test", "mqtts://mqtt.ovh.test:8884")
    for bad in ("mqtt://mqtt.ovh.test", "https://x", "mqtts://", "mqtts://h/path", "mqtts://h:x"):
        with pytest.raises(mqtt.BrokerError):
            mqtt.parse_url(bad)
    assert mqtt.url_of("::1", 8883) == "mqtts://[::1]:8883"
    login = mqtt.Broker("h", 8883, None, "office-pc", "s3cret-pw")
    assert "s3cret-pw" not in repr(login)


def _token(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()  # with padding


@pytest.fixture
def portal_key() -> Any:
    return keys.generate()


def _doc(portal_key: Any, **changes: Any) -> dict[str, Any]:
    doc = {
        "agent": AGENT,
        "broker": URL,
        "username": AGENT,
        "password": "pw-123",
        "ca_pem": None,
        "portal_key_pem": keys.public_pem(portal_key).decode(),
    }
    return {**doc, **changes}


def test_enrolment_writes_the_identity_owner_only(tmp_path: Path, portal_key: Any):
    where = tmp_path / "portal"
    identity = enroll.enroll(where, URL, _token(_doc(portal_key)))
    assert (identity.agent, identity.broker, identity.username) == (AGENT, URL, AGENT)
    assert "pw-123" not in repr(identity)
    for name, mode in (("agent.key", 0o600), ("agent.toml", 0o600), ("agent.pub", 0o644)):
        assert (where / name).stat().st_mode & 0o777 == mode, name
    assert keys.public_raw(keys.load_public(where / "portal.pub")) == keys.public_raw(portal_key)
    again = enroll.load(where)
    assert again == identity and again.password == "pw-123" and again.ca_file is None
    # enrolling again keeps this agent's key pair, unless asked for a new one
    first = (where / "agent.pub").read_bytes()
    enroll.enroll(where, URL, _token(_doc(portal_key, password="pw-456")))
    assert (where / "agent.pub").read_bytes() == first
    assert enroll.load(where).password == "pw-456"
    enroll.enroll(where, URL, _token(_doc(portal_key)), new_key=True)
    assert (where / "agent.pub").read_bytes() != first


def test_a_token_for_another_broker_or_broken_is_refused(tmp_path: Path, portal_key: Any):
    where = tmp_path / "portal"
    cases = {
        "for the broker": _token(_doc(portal_key, broker="mqtts://elsewhere:8883")),
        "not an enrolment token": "not-a-token!",
        "lacks password": _token({k: v for k, v in _doc(portal_key).items() if k != "password"}),
        "agent id": _token(_doc(portal_key, agent="Office PC")),
        "portal key": _token(_doc(portal_key, portal_key_pem="garbage")),
        "CA certificate": _token(_doc(portal_key, ca_pem="-----BEGIN CERTIFICATE-----\nxx")),
        "only mqtts": _token(_doc(portal_key, broker="mqtt://h:1883")),
    }
    for expected, token in cases.items():
        with pytest.raises(enroll.EnrolError, match=expected):
            enroll.enroll(where, URL, token)
    assert not (where / "agent.toml").exists()
    with pytest.raises(enroll.EnrolError, match="not enrolled"):
        enroll.load(where)


def test_submit_params_follow_the_kind():
    assert submit.params_for("diagnose", symptom="no-ring", subnets=("10.66.0.0/24",)) == {
        "symptom": "no-ring",
        "subnets": ["10.66.0.0/24"],
    }
    assert submit.params_for("report", run="12") == {"run": 12}
    assert submit.params_for("report", run="last") == {"run": "last"}
    with pytest.raises(ValueError, match="--device"):
        submit.params_for("remedy", remedy="disable-phone-dnd")
    with pytest.raises(ValueError, match="takes no --remedy"):
        submit.params_for("diagnose", remedy="x")


# ------------------------------------------------------------------ a real broker


class Broker:
    """mosquitto on loopback, as the lab configures it; ``stop``/``start`` keep its store."""

    def __init__(self, base: Path) -> None:
        self.base = base
        (base / "logs").mkdir(parents=True, exist_ok=True)
        self.users = mosquitto.new_users()
        self.conf = mosquitto.configure(base, HOST, self.users, port=PORT)
        self.ca = str(mosquitto.ca_file(base))
        self.portal_key = keys.load_private(mosquitto.portal_key(base))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # its log: mosquitto.log_file(base)
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex((HOST, PORT)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None

    def login(self, user: str) -> mqtt.Broker:
        return mqtt.Broker(HOST, PORT, self.ca, user, self.users[user])

    def token(self) -> str:
        return mosquitto.enrolment_token(self.base, AGENT, URL, self.users[AGENT])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker")
    try:
        b.start()
        yield b
    finally:
        b.stop()


@pytest.fixture
def agent_cfg(tmp_path: Path, broker: Broker) -> config.Config:
    """An enrolled agent: its store and portal folder in tmp_path."""
    cfg = config.Config(store_path=str(tmp_path / "store" / "phonediag.sqlite"))
    enroll.enroll(keys.directory(cfg), URL, broker.token())
    return cfg


class Portal:
    """The portal's side in a test: one session on every topic of the agent."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.session = mqtt.Session("portal-test", broker.login("portal"))
        self.session.open(5)
        self.session.subscribe([f"{topic(AGENT, 'status')}", f"{topic(AGENT, 'key')}"], 5)
        self.session.subscribe([topic(AGENT, "results", "+")], 5)
        self.agent_key: Any = None
        self.status: list[str] = []
        self.results: dict[str, list[dict[str, Any]]] = {}

    def send(self, message: dict[str, Any] | bytes) -> None:
        raw = message if isinstance(message, bytes) else jobs.encode(message)
        self.session.publish(topic(AGENT, "jobs"), raw, 5)

    def job(self, kind: str = "report", params: dict[str, Any] | None = None, **kw: Any):
        run = {"run": "last"} if params is None else params
        return jobs.make_job(self.broker.portal_key, AGENT, kind, run, **kw)

    def pump(self, until: float) -> None:
        msg = self.session.get(until)
        if msg is None:
            return
        if msg.topic == topic(AGENT, "key"):
            self.agent_key = keys.parse_public(bytes(msg.payload))
        elif msg.topic == topic(AGENT, "status"):
            self.status.append(json.loads(msg.payload)["state"])
        else:
            body = jobs.check_result(bytes(msg.payload), agent_key=self.agent_key, agent_id=AGENT)
            self.results.setdefault(body["job"], []).append(body)

    def result(self, job_id: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.results.get(job_id) and time.monotonic() < deadline:
            self.pump(deadline)
        assert self.results.get(job_id), f"no result for {job_id}"
        return self.results[job_id][-1]

    def wait_status(self, state: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (not self.status or self.status[-1] != state) and time.monotonic() < deadline:
            self.pump(deadline)
        assert self.status and self.status[-1] == state, self.status

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def portal(broker: Broker) -> Iterator[Portal]:
    p = Portal(broker)
    try:
        yield p
    finally:
        p.close()


class Running:
    """``serve``'s Agent in a thread of its own (its own event loop), stoppable, or dropped
    as a killed process would be (no offline status, no clean disconnect)."""

    def __init__(self, cfg: config.Config) -> None:
        identity, self.worker, private = serve.prepare(cfg)
        self.agent = serve.Agent(identity, self.worker, private)
        self.worker.notify = self.agent.notify
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.code: int | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        async def main() -> int:
            self.stop_event = asyncio.Event()
            return await self.agent.run(self.stop_event)

        with contextlib.suppress(asyncio.CancelledError, RuntimeError):  # killed
            self.code = self.loop.run_until_complete(main())

    def stop(self) -> None:
        assert self.stop_event is not None
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        self.loop.close()

    def kill(self) -> None:
        """Like SIGKILL: paho's thread stopped, the socket closed without DISCONNECT, the
        job left as it was in the store."""
        c = self.agent.client
        network = c._thread
        c._thread_terminate = True  # paho's thread ends without sending anything more
        network.join(5)
        c._sock_close()

        def cancel_all() -> None:
            for task in asyncio.all_tasks():
                task.cancel()

        self.loop.call_soon_threadsafe(cancel_all)
        self.thread.join(10)
        self.loop.close()
        self.worker.state.close()


def test_a_job_round_trip_the_key_online_and_offline(agent_cfg, portal):
    run = Running(agent_cfg)
    try:
        portal.wait_status("online")
        message = portal.job()
        portal.send(message)
        body = portal.result(message["job"]["id"])
        assert portal.agent_key is not None  # the result was verified with the published key
        assert body["status"] == "failed" and body["message"] == "no stored run last"
    finally:
        run.stop()
    assert run.code == 0
    portal.wait_status("offline")  # published on a clean stop


def test_bad_jobs_are_refused_with_a_signed_reason(agent_cfg, portal, broker):
    run = Running(agent_cfg)
    try:
        portal.wait_status("online")
        forged = jobs.make_job(keys.generate(), AGENT, "report", {"run": "last"})
        expired = jobs.make_job(
            broker.portal_key, AGENT, "report", {"run": "last"},
            now=jobs.now_utc() - timedelta(seconds=120), ttl=timedelta(seconds=60),
        )  # fmt: skip
        scope = portal.job("diagnose", {"subnets": ["10.0.0.0/8"]})
        remedy = portal.job("remedy", {"remedy": "disable-phone-dnd", "device": "10.66.0.11"})
        first = portal.job()
        reused = portal.job(nonce=first["job"]["nonce"])  # a new id, an old nonce
        unsigned = {"job": portal.job()["job"], "sig": ""}
        for message in (forged, expired, scope, remedy, first, reused, unsigned):
            portal.send(message)
        expect = [
            (forged, "bad-signature"), (expired, "expired"), (scope, "out-of-scope"),
            (remedy, "remedy-not-allowed"), (reused, "replayed"), (unsigned, "unsigned"),
        ]  # fmt: skip
        for message, reason in expect:
            body = portal.result(message["job"]["id"])
            assert (body["status"], body["reason"]) == ("rejected", reason), body
        assert portal.result(first["job"]["id"])["status"] == "failed"  # it ran
        portal.send(first)  # the very same job again: not run again, its result again
        deadline = time.monotonic() + 5
        while len(portal.results[first["job"]["id"]]) < 2 and time.monotonic() < deadline:
            portal.pump(deadline)
        again = portal.results[first["job"]["id"]]
        assert len(again) == 2 and again[0] == again[1]
        assert run.worker.state.job(first["job"]["id"]).state == "done"
    finally:
        run.stop()


def _slow_job(seconds: float):
    """A stand-in for execute.run_job: waits, then says done."""

    async def run_job(job, cfg, progress=None):
        started = jobs.now_utc()
        if progress:
            progress("start", "job.wait")
        await asyncio.sleep(seconds)
        if progress:
            progress("done", "job.wait")
        return jobs.result_body(
            job.id, job.agent, "done", started_at=started, finished_at=jobs.now_utc(),
            exit_code=0, message=f"waited {seconds} s",
        )  # fmt: skip

    return run_job


def test_a_result_made_while_the_broker_is_away_arrives_when_it_is_back(
    agent_cfg, broker, monkeypatch
):
    monkeypatch.setattr(execute, "run_job", _slow_job(3))
    run = Running(agent_cfg)
    try:
        p = Portal(broker)
        p.wait_status("online")
        message = p.job("diagnose", {})
        p.send(message)
        time.sleep(0.5)  # the job runs
        broker.stop()
        assert run.worker.state.job(message["job"]["id"]).state == "running"
        time.sleep(3.5)  # the job ends, broker away: the result waits in the outbox
        assert run.worker.state.pending() == 1
        broker.start()
        body = p.result(message["job"]["id"], timeout=20)  # back-off: 1, 2, 4 s...
        assert body["status"] == "done"
        deadline = time.monotonic() + 5
        while run.worker.state.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run.worker.state.pending() == 0  # marked delivered on the PUBACK
        p.close()
    finally:
        run.stop()


def test_an_agent_killed_mid_job_reports_it_interrupted_after_restart(
    agent_cfg, portal, monkeypatch
):
    monkeypatch.setattr(execute, "run_job", _slow_job(30))
    run = Running(agent_cfg)
    portal.wait_status("online")
    message = portal.job("diagnose", {})
    portal.send(message)
    deadline = time.monotonic() + 5
    while run.worker.state.job(message["job"]["id"]) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    run.kill()
    portal.wait_status("offline")  # the broker's last will
    again = Running(agent_cfg)
    try:
        body = portal.result(message["job"]["id"])
        assert body["status"] == "interrupted"
        assert "stopped while running" in body["message"]
    finally:
        again.stop()


def test_serve_as_a_command_stops_cleanly_on_sigterm(agent_cfg, portal, tmp_path):
    cfg_file = tmp_path / "phonediag.toml"
    cfg_file.write_text(f'[store]\npath = "{agent_cfg.store_path}"\n')
    env = {**os.environ, "PHONEDIAG_CONFIG": str(cfg_file)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        portal.wait_status("online")
        message = portal.job()
        portal.send(message)
        assert portal.result(message["job"]["id"])["status"] == "failed"
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "connected to" in err
    portal.wait_status("offline")


def test_serve_without_enrolment_says_so(tmp_path):
    cfg_file = tmp_path / "phonediag.toml"
    cfg_file.write_text(f'[store]\npath = "{tmp_path / "s" / "phonediag.sqlite"}"\n')
    env = {**os.environ, "PHONEDIAG_CONFIG": str(cfg_file)}
    r = subprocess.run(
        [sys.executable, "-m", "agent.cli", "serve", "--lang", "en"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "not enrolled" in r.stderr and "Traceback" not in r.stderr


def test_the_acls_keep_each_agent_to_its_own_topics(broker, portal):
    with mqtt.Session(AGENT, broker.login(AGENT)) as s:
        s.open(5)
        with pytest.raises(mqtt.BrokerError, match="Not authorized"):
            s.publish(topic("other-pc", "results", "x"), b"{}", 5)
        with pytest.raises(mqtt.BrokerError, match="Not authorized"):
            s.publish(topic(AGENT, "jobs"), b"{}", 5)  # only the portal writes jobs
    with pytest.raises(mqtt.BrokerError, match="Not authorized"):
        portal.session.publish(topic(AGENT, "results", "x"), b"{}", 5)
    wrong = mqtt.Broker(HOST, PORT, broker.ca, AGENT, "wrong")
    with pytest.raises(mqtt.BrokerError, match="Not authorized"):
        mqtt.Session("x-pc", wrong).open(5)
    untrusted = mqtt.Broker(HOST, PORT, None, AGENT, broker.users[AGENT])  # the system's CAs
    with pytest.raises(mqtt.BrokerError, match="certificate"):
        mqtt.Session("y-pc", untrusted).open(5)


def test_submit_waits_for_the_verified_result(agent_cfg, broker, portal):
    run = Running(agent_cfg)
    try:
        # the agent's first connection creates its session: a job sent before it would
        # have no one to be kept for (a real portal only sends to enrolled, seen agents)
        portal.wait_status("online", timeout=30)
        seen: list[dict[str, Any]] = []
        answer = submit.submit(
            broker.login("portal"), broker.portal_key, AGENT, "report", {"run": "last"},
            timeout=20, on_progress=seen.append,
        )  # fmt: skip
        assert answer.result is not None and answer.result["status"] == "failed"
        assert answer.message["result"] == answer.result and not answer.ignored
        # progress is best effort (the result is what is guaranteed): what arrives is in order
        events = [p["event"] for p in seen]
        assert events in (["start", "failed"], ["failed"], ["start"], []), events
        text = submit.render(answer, "en", as_json=False)
        assert "failed" in text and "no stored run last" in text
        quiet = submit.submit(
            broker.login("portal"), broker.portal_key, "absent-pc", "report", {"run": "last"},
            timeout=1,
        )  # fmt: skip
        assert quiet.result is None
    finally:
        run.stop()


# ------------------------------------------------------------------ the commands


def phonediag(*args: str, env: dict[str, str] | None = None, stdin: str = ""):
    r = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_keygen_then_enroll_from_stdin(tmp_path: Path, portal_key: Any):
    r = phonediag("portal", "keygen", "--out", str(tmp_path / "k"), "--lang", "en")
    assert r.returncode == 0 and "fingerprint SHA256:" in r.stdout
    assert (tmp_path / "k" / "portal.key").stat().st_mode & 0o777 == 0o600
    keys.load_private(tmp_path / "k" / "portal.key")
    again = phonediag("portal", "keygen", "--out", str(tmp_path / "k"), "--lang", "en")
    assert again.returncode == 2 and "already exists" in again.stderr  # never silently
    cfg = tmp_path / "phonediag.toml"
    cfg.write_text(f'[portal]\ndir = "{tmp_path / "id"}"\n')
    env = {"PHONEDIAG_CONFIG": str(cfg)}
    token = _token(_doc(portal_key))
    r = phonediag("portal", "enroll", "--broker", URL, "--token", "-", "--lang", "en",
                  env=env, stdin=token + "\n")  # fmt: skip
    assert r.returncode == 0 and "Enrolled: agent office-pc" in r.stdout, r.stderr
    assert enroll.load(tmp_path / "id").password == "pw-123"
    r = phonediag("portal", "enroll", "--broker", "mqtts://other:8883", "--token", token,
                  "--lang", "en", env=env)  # fmt: skip
    assert r.returncode == 2 and "this token is for the broker" in r.stderr


def test_submit_usage_errors_and_no_broker(tmp_path: Path):
    key = keys.generate()
    keys.save_private(key, tmp_path / "portal.key")
    (tmp_path / "pw").write_text("secret\n")
    base = ["portal", "submit", "--agent", AGENT, "--key", str(tmp_path / "portal.key"),
            "--username", "portal", "--password-file", str(tmp_path / "pw"), "--lang", "en",
            "--timeout", "2"]  # fmt: skip
    r = phonediag(*base, "--broker", URL, "--kind", "remedy", "--remedy", "disable-phone-dnd")
    assert r.returncode == 2 and "needs --device" in r.stderr
    r = phonediag(*base, "--broker", "mqtt://127.0.0.1:1")
    assert r.returncode == 2 and "only mqtts://" in r.stderr
    r = phonediag(*base, "--broker", URL, "--subnet", "10.0.0.0/33")
    assert r.returncode == 2 and "job not sent" in r.stderr
    r = phonediag(*base, "--broker", "mqtts://127.0.0.1:1")  # nothing listens there
    assert r.returncode == 3 and "connection refused" in r.stderr
