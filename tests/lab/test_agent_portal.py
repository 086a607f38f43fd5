"""Portal mode end to end in the lab office (root only): `phonediag serve` on the agent host,
behind the router's NAT, connected out to the provider's mosquitto (TLS, per-agent ACLs);
the portal's side (`phonediag portal submit`, or crafted jobs published with paho) runs in
the provider's namespace, as OVHcloud's portal would.

One office for the whole file (about two minutes): enrolment, a diagnosis that comes back
signed, a remedy refused then allowed, forged/expired/replayed/out-of-scope jobs refused
with a signed reason, the broker stopped during a job, a broker flapping, the agent
killed during one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import secrets_sweep

from lab import Lab, netns

AGENT = "office-pc"

# The portal's side for crafted jobs: publish the messages read on stdin (a JSON list) on
# the agent's jobs topic, print every verified result received for them (job id -> body).
CRAFTED = r"""
import json, sys, time
from agent.portal import jobs, keys, mqtt, topic
url, ca, user, password_file, agent, timeout = sys.argv[1:7]
host, port = mqtt.parse_url(url)
password = open(password_file).readline().strip()
messages = json.load(sys.stdin)
want = {m["job"]["id"] for m in messages if isinstance(m.get("job"), dict)}
results, key, raws = {}, None, []
with mqtt.Session("lab-crafted", mqtt.Broker(host, port, ca, user, password)) as s:
    s.open(10)
    s.subscribe([topic(agent, "key"), topic(agent, "results", "+")], 10)
    for m in messages:
        s.publish(topic(agent, "jobs"), jobs.encode(m), 10)
    deadline = time.monotonic() + float(timeout)
    while want - set(results) and (msg := s.get(deadline)) is not None:
        if msg.topic == topic(agent, "key"):
            key = keys.parse_public(bytes(msg.payload))
        else:
            raws.append(bytes(msg.payload))
        while key is not None and raws:
            body = jobs.check_result(raws.pop(0), agent_key=key, agent_id=agent)
            results.setdefault(body["job"], body)
print(json.dumps(results))
"""


class Serve:
    """`phonediag serve` on the agent host, its log in a file (appended across restarts)."""

    def __init__(self, lab: Lab, log: Path) -> None:
        self.lab, self.log = lab, log
        self.proc: subprocess.Popen[bytes] | None = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_log(self, needle: str, after: int = 0, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()[after:]
            if needle in text:
                return text
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"serve never logged {needle!r}:\n{self.text()[after:]}")

    def start(self) -> None:
        mark = len(self.text())
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.lab.agent_argv(["phonediag", "serve"]),
                env=self.lab.agent_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_log("connected to", after=mark)

    def stop(self) -> int | None:
        """SIGTERM (a clean stop), SIGKILL if it is not done in 15 s; its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Serve, dict]]:
    """The healthy office, the agent enrolled and `serve` running (stopped at the end)."""
    with Lab.up("healthy") as lab:
        enrolment = lab.portal_enrolment()
        r = lab.run(
            ["phonediag", "portal", "enroll", "--broker", enrolment["broker"],
             "--token", enrolment["token"], "--lang", "en"],
            timeout=30,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "Enrolled: agent office-pc" in r.stdout
        serve = Serve(lab, tmp_path_factory.mktemp("serve") / "serve.log")
        try:
            serve.start()
            yield lab, serve, enrolment
        finally:
            code = serve.stop()
            assert "Traceback" not in serve.text(), serve.text()
            assert code in (0, None)


def submit(lab: Lab, enrolment: dict, *args: str, timeout: float = 120) -> list[str]:
    """argv of `phonediag portal submit` in the provider's namespace (the portal's side)."""
    return netns.exec_argv(
        lab.ns("prov"),
        ["phonediag", "portal", "submit", "--agent", AGENT, "--json",
         "--key", str(enrolment["portal_key"]), "--broker", enrolment["portal_broker"],
         "--ca", str(enrolment["ca_file"]), "--username", enrolment["portal_user"],
         "--password-file", str(enrolment["portal_password_file"]),
         "--timeout", str(timeout), *args],
    )  # fmt: skip


def run_submit(lab: Lab, enrolment: dict, *args: str) -> tuple[int, dict[str, Any]]:
    r = subprocess.run(
        submit(lab, enrolment, *args), env=lab.agent_env(), capture_output=True, text=True,
        timeout=200,
    )  # fmt: skip
    secrets_sweep.output("phonediag portal submit", r.stdout + r.stderr)  # the portal's view
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stdout.strip(), r.stderr
    return r.returncode, json.loads(r.stdout)


def agent_key(lab: Lab) -> Any:
    from agent.portal import keys

    return keys.load_public(lab.state.dir / "portal" / "agent.pub")


def test_a_diagnosis_from_the_portal_comes_back_signed(office):
    from agent.portal import keys

    lab, serve, enrolment = office
    code, message = run_submit(lab, enrolment, "--kind", "diagnose")
    body = message["result"]
    assert keys.verify(agent_key(lab), body, message["sig"])
    assert (body["status"], body["agent"]) == ("done", AGENT)
    assert code == 0
    ips = {d["ip"] for d in body["report"]["devices"]}
    assert {p["ip"] for p in lab.phones} <= ips
    assert body["exit_code"] == 0 and body["run"] >= 1  # also kept in the agent's history
    # the agent reached the broker from behind the NAT: its connection came from the router
    broker_log = (lab.state.dir / "logs" / "mosquitto.log").read_text()
    assert "from 100.64.66.2:" in broker_log and f"as {AGENT} " in broker_log
    assert "result of job" in serve.wait_log(f"result of job {body['job']} delivered")


def test_crafted_jobs_are_refused_with_a_signed_reason(office):
    from datetime import timedelta

    from agent.portal import jobs, keys

    lab, _serve, enrolment = office
    portal = keys.load_private(enrolment["portal_key"])

    def job(kind: str = "report", params: dict | None = None, **kw: Any) -> dict[str, Any]:
        return jobs.make_job(portal, AGENT, kind, params or {"run": "last"}, **kw)

    first = job()
    crafted = {
        "bad-signature": jobs.make_job(keys.generate(), AGENT, "report", {"run": "last"}),
        "expired": job(now=jobs.now_utc() - timedelta(minutes=20), ttl=timedelta(minutes=10)),
        "replayed": job(nonce=first["job"]["nonce"]),  # a new id with an old nonce
        "out-of-scope": job("diagnose", {"subnets": ["10.0.0.0/8"]}),
        "unsigned": {"job": job()["job"], "sig": ""},
    }
    public = job("discover", {"subnets": ["8.8.8.0/24"]})  # a public range: never swept
    messages = [first, *crafted.values(), public]
    login = [enrolment["portal_user"], str(enrolment["portal_password_file"])]
    argv = [sys.executable, "-c", CRAFTED, enrolment["portal_broker"], str(enrolment["ca_file"])]
    argv += [*login, AGENT, "60"]
    r = lab.exec("prov", argv, input=json.dumps(messages), timeout=90)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    for reason, message in [*crafted.items(), ("out-of-scope", public)]:
        body = results.get(message["job"]["id"])
        assert body is not None, f"no result for the {reason} job: {results}"
        assert (body["status"], body["reason"]) == ("rejected", reason), body
        assert body["message"]
    assert results[first["job"]["id"]]["status"] == "done"  # the genuine one ran


def test_a_remedy_runs_only_once_allow_listed(office):
    lab, serve, enrolment = office
    phone1 = next(p for p in lab.phones if p["role"] == "phone1")
    lab.set_phone_state("phone1", dnd=True)
    args = ("--kind", "remedy", "--remedy", "disable-phone-dnd", "--device", phone1["ip"])
    code, message = run_submit(lab, enrolment, *args)
    assert code == 1
    assert (message["result"]["status"], message["result"]["reason"]) == (
        "rejected",
        "remedy-not-allowed",
    )
    assert lab.phone_state("phone1")["dnd"] is True  # nothing was done
    config = lab.config_path.read_text()
    lab.config_path.write_text(config + '\n[remedies]\nportal_allowed = ["disable-phone-dnd"]\n')
    assert serve.stop() == 0
    serve.start()  # the new policy
    code, message = run_submit(lab, enrolment, *args)
    body = message["result"]
    assert (code, body["status"]) == (0, "done"), body
    assert body["remedy"] and body["exit_code"] == 0
    assert lab.phone_state("phone1")["dnd"] is False


def _slow_diagnoses(lab: Lab, serve: Serve, budget: int) -> None:
    """Diagnoses that last: the NAT lifetime test given ``budget`` seconds; serve restarted."""
    text = lab.config_path.read_text()
    lab.config_path.write_text(text.replace("budget = 0", f"budget = {budget}", 1))
    assert serve.stop() == 0
    serve.start()


def test_a_result_made_while_the_broker_is_down_arrives_after_it_is_back(office):
    lab, serve, enrolment = office
    _slow_diagnoses(lab, serve, 10)
    mark = len(serve.text())
    proc = subprocess.Popen(
        submit(lab, enrolment, "--kind", "diagnose"), env=lab.agent_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        running = serve.wait_log(" running", after=mark)
        job_id = running.split("portal job ", 1)[1].split()[0]
        time.sleep(1)
        lab.broker_stop()
        assert not lab.broker_running()
        serve.wait_log("lost", after=mark)
        serve.wait_log(f"portal job {job_id}: done", after=mark, timeout=60)
        time.sleep(2)  # the agent keeps trying; the result waits in its outbox
        lab.broker_start()
        out, err = proc.communicate(timeout=120)
        secrets_sweep.output("phonediag portal submit", out + err)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not lab.broker_running():
            lab.broker_start()
    assert "Traceback" not in err, err
    message = json.loads(out)
    assert (proc.returncode, message["result"]["status"]) == (0, "done"), err
    assert message["result"]["job"] == job_id
    serve.wait_log(f"result of job {job_id} delivered", after=mark)


def test_a_flapping_broker_costs_no_job_and_no_crash(office):
    """The broker goes down and comes back three times in a row (a flaky box, a line that
    drops): the agent says each loss, reconnects after each outage with its back-off (a
    bounded number of attempts, not a busy loop), keeps running, and the next job is
    answered once."""
    lab, serve, enrolment = office
    mark = len(serve.text())
    try:
        for _ in range(3):
            lab.broker_stop()
            time.sleep(3)
            lab.broker_start()
            time.sleep(1)
    finally:
        if not lab.broker_running():
            lab.broker_start()
    code, message = run_submit(lab, enrolment, "--kind", "discover")
    assert (code, message["result"]["status"]) == (0, "done")
    serve.wait_log(f"result of job {message['result']['job']} delivered", after=mark)
    log = serve.text()[mark:]
    assert "Traceback" not in log, log
    assert serve.proc is not None and serve.proc.poll() is None  # still serving
    assert 1 <= log.count("lost (") <= 3, log  # each outage noticed at most once
    assert 1 <= log.count("connected to") <= 4, log
    # 4 s of outage each time, a back-off of at least a second: a handful of attempts
    assert log.count("cannot connect") <= 15, log


def test_an_agent_killed_mid_job_reports_it_interrupted_after_restart(office):
    lab, serve, enrolment = office
    mark = len(serve.text())
    proc = subprocess.Popen(
        submit(lab, enrolment, "--kind", "diagnose"), env=lab.agent_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        running = serve.wait_log(" running", after=mark)
        job_id = running.split("portal job ", 1)[1].split()[0]
        time.sleep(1)
        serve.kill()  # SIGKILL: no goodbye; the broker publishes the last will
        serve.start()
        out, err = proc.communicate(timeout=60)
        secrets_sweep.output("phonediag portal submit", out + err)
    finally:
        if proc.poll() is None:
            proc.kill()
    message = json.loads(out)
    body = message["result"]
    assert (proc.returncode, body["status"], body["job"]) == (1, "interrupted", job_id), err
    assert "stopped while running" in body["message"]
