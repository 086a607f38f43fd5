"""The office lab itself: real daemons in network namespaces (root only).

Run inside a loopback-only namespace, e.g.
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/lab -x -q'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab, LabError, netns, procs
from lab.netns import NETNS_ETC_DIR, NETNS_RUN_DIR
from lab.services import phone as phone_service

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="the lab needs iproute2's `ip`"),
]

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
PRIVATE_CONTACT = re.compile(r"@10\.66\.0\.\d+:")
ALG_CONTACT = re.compile(r"@100\.64\.66\.2:")

BROWSE = """
import time, zeroconf
zc = zeroconf.Zeroconf(interfaces=["10.66.0.100"])
found = {}
class L:
    def add_service(self, zc, t, name):
        info = zc.get_service_info(t, name, timeout=1500)
        if info:
            found[name] = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
    update_service = add_service
    def remove_service(self, *a): pass
zeroconf.ServiceBrowser(zc, "_http._tcp.local.", L())
time.sleep(2.0)
zc.close()
for name, txt in sorted(found.items()):
    print(name, txt)
"""


def lab_cli(*args: str, instance: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lab ARGS`` for ``instance``."""
    env = {**os.environ, "PHONEDIAG_LAB": instance}
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def traces(lab: Lab) -> tuple[list[str], list[procs.Proc], Path]:
    """What a lab leaves behind if teardown fails: namespaces, processes, state dir."""
    return list(lab.namespaces.values()), list(lab.state.procs), lab.state.dir


def assert_gone(names: list[str], started: list[procs.Proc], state: Path) -> None:
    """No namespace, /etc/netns dir, process (or process-group member) or state dir remains."""
    assert not [n for n in names if (NETNS_RUN_DIR / n).exists()]
    assert not [n for n in names if (NETNS_ETC_DIR / n).exists()]
    assert not [p for p in started if procs.alive(p)]
    assert not [p for p in started if procs._group_alive(p.pid)]
    assert not state.exists()


def sip_server_header(lab: Lab, uri: str) -> str:
    """OPTIONS ``uri`` from the agent with sipsak; return the reply's Server/User-Agent."""
    out = lab.run(["sipsak", "-vv", "-s", uri], timeout=10).stdout
    reply = out.split("message received:", 1)[-1]
    match = re.search(r"^(?:Server|User-Agent):\s*(.+?)\s*$", reply, re.M)
    assert match, out
    return match.group(1)


@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    with Lab.up("healthy") as lab:
        yield lab


def test_healthy_phones_registered_with_private_contacts(healthy: Lab) -> None:
    bindings = {b["aor"]: b for b in healthy.registrations()}
    assert sorted(bindings) == ["1001", "1002", "1003"]
    for ph in healthy.phones:
        binding = bindings[ph["line"]]
        assert PRIVATE_CONTACT.search(binding["address"]), binding
        assert binding["received"].startswith("sip:100.64.66.2:"), binding
        assert binding["user_agent"] == ph["user_agent"]


def test_healthy_call_is_established_through_nat(healthy: Lab) -> None:
    events = healthy.call("phone1", "phone2")
    assert "CALL_ESTABLISHED" in events, events


def test_healthy_options_answer_with_model_user_agent(healthy: Lab) -> None:
    for ph in healthy.phones:
        uri = f"sip:{ph['line']}@{ph['ip']}"
        assert sip_server_header(healthy, uri) == ph["user_agent"]


def test_healthy_registrar_answers_options_on_both_ports(healthy: Lab) -> None:
    for port in (5060, 5962):
        out = healthy.run(["sipsak", "-vv", "-s", f"sip:sip.ovh.test:{port}"], timeout=10)
        assert out.returncode == 0 and "SIP/2.0 200" in out.stdout, out


def test_healthy_snmp_only_where_the_model_offers_it(healthy: Lab) -> None:
    for ph in healthy.phones:
        out = healthy.run(
            ["snmpget", "-v2c", "-c", "public", "-On", "-t", "0.5", "-r", "0", ph["ip"], SYS_DESCR],
            env={"SNMP_PERSISTENT_DIR": str(healthy.state.dir / "agent-snmp")},
            timeout=10,
        )
        if ph["offers"]["snmp"]:
            assert out.returncode == 0, out
            assert ph["model"] in out.stdout and ph["firmware"] in out.stdout, out.stdout
        else:
            assert out.returncode != 0 and "STRING" not in out.stdout, out


def test_healthy_mdns_only_where_the_model_offers_it(healthy: Lab) -> None:
    out = healthy.run([sys.executable, "-c", BROWSE], timeout=20)
    assert out.returncode == 0, out.stderr
    for ph in healthy.phones:
        mine = [line for line in out.stdout.splitlines() if f"'fw': '{ph['firmware']}'" in line]
        assert bool(mine) == ph["offers"]["mdns"], out.stdout


def test_healthy_ground_truth_and_agent_config(healthy: Lab) -> None:
    vendors = [(p["vendor"], p["model"], p["mac"][:8]) for p in healthy.phones]
    assert vendors == [
        ("yealink", "SIP-T46S", "80:5e:c0"),
        ("cisco", "SPA504G", "00:0e:08"),
        ("gigaset", "C530 IP", "7c:2f:80"),
    ]
    link = healthy.exec("phone1", ["ip", "-o", "link", "show", "eth0"]).stdout
    assert healthy.phones[0]["mac"] in link
    out = healthy.run(["sh", "-c", 'cat "$PHONEDIAG_CONFIG"'])
    assert 'registrar = "sip.ovh.test"' in out.stdout
    assert "registrar_ports = [5060, 5962]" in out.stdout


def test_cli_refuses_second_up_and_passes_exit_codes(healthy: Lab) -> None:
    again = lab_cli("up", "--scenario", "healthy", instance=healthy.instance)
    assert again.returncode == 2 and "already up" in again.stderr
    script = 'echo "$PHONEDIAG_CONFIG"; exit 7'
    ran = lab_cli("run", "--", "sh", "-c", script, instance=healthy.instance)
    assert ran.returncode == 7
    assert ran.stdout.strip() == str(healthy.config_path)
    assert healthy.registrations()  # the running lab was not disturbed


def test_cli_usage_errors() -> None:
    unknown = lab_cli("up", "--scenario", "no-such-thing", instance="pytest-usage")
    assert unknown.returncode == 2 and "healthy" in unknown.stderr
    small = lab_cli("up", "--scenario", "fleet", "--phones", "3", instance="pytest-usage")
    assert small.returncode == 2 and "between 7 and 200" in small.stderr
    listed = lab_cli("list", instance="pytest-usage")
    assert listed.returncode == 0 and "port-5060-blocked" in listed.stdout


def test_sip_alg_rewrites_contacts_to_public_address() -> None:
    with Lab.up("sip-alg") as lab:
        bindings = lab.registrations()
        assert len(bindings) == 3
        for binding in bindings:
            assert ALG_CONTACT.search(binding["address"]), binding
        conntrack = lab.exec("rtr", ["conntrack", "-L", "-p", "udp"]).stdout
        assert "helper=sip" in conntrack


def test_port_5060_blocked_phones_cannot_register() -> None:
    with Lab.up("port-5060-blocked", phones=1) as lab:
        assert lab.registrations() == []
        quick = ["sipsak", "--timer-t1=50", "-s"]  # gives up after 64*T1 = 3.2 s
        blocked = lab.run([*quick, "sip:sip.ovh.test:5060"], timeout=15)
        open_port = lab.run([*quick, "sip:sip.ovh.test:5962"], timeout=15)
        assert blocked.returncode != 0 and open_port.returncode == 0


def test_down_removes_everything() -> None:
    lab = Lab.up("healthy", phones=1)
    left = traces(lab)
    assert all((NETNS_RUN_DIR / n).exists() for n in left[0])
    lab.down()
    assert_gone(*left)
    lab.down()  # idempotent


def test_exception_inside_with_still_tears_down() -> None:
    seen: list[tuple[list[str], list[procs.Proc], Path]] = []
    with pytest.raises(RuntimeError, match="boom"), Lab.up("healthy", phones=1) as lab:
        seen.append(traces(lab))
        raise RuntimeError("boom")
    assert_gone(*seen[0])


def test_failure_midway_tears_down(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []
    started: list[procs.Proc] = []
    real_add, real_spawn = netns.add, procs.spawn

    def add(ns: str) -> None:
        created.append(ns)
        real_add(ns)

    def spawn(*args: object, **kwargs: object) -> procs.Proc:
        started.append(real_spawn(*args, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    def broken_phone(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C arrived while the phones start

    monkeypatch.setattr(netns, "add", add)
    monkeypatch.setattr(procs, "spawn", spawn)
    monkeypatch.setattr(phone_service, "start", broken_phone)
    with pytest.raises(KeyboardInterrupt):
        Lab.up("healthy", phones=1, name="pytest-midway")
    assert created and started
    assert_gone(created, started, Path("/run/phonediag-lab/pytest-midway"))
    with pytest.raises(LabError):
        Lab.current("pytest-midway")
