"""--subnet (alias --network): only directly connected private networks; a public or
oversized range is refused with exit 2 and one line, in French or English."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import platform, scope

EXE = str(Path(sys.executable).with_name("phonediag"))


def fake(monkeypatch, *addrs):
    monkeypatch.setattr(
        platform,
        "ipv4_addresses",
        lambda: [platform.Address(i, ip, p, None) for i, ip, p in addrs],
    )


@pytest.mark.parametrize(
    "subnet, widen, message",
    [
        ("8.8.8.0/24", False, "8.8.8.0/24 is not a private network"),
        ("127.0.0.0/24", False, "127.0.0.0/24 is not a private network"),
        ("10.1.0.0/16", False, "10.1.0.0/16 is larger than /22 (use --widen to sweep it)"),
        ("10.0.0.0/8", True, "10.0.0.0/8 is larger than /16, never swept"),
        ("banana", False, "not a network: 'banana'"),
    ],
)
def test_a_range_never_allowed_is_a_usage_error(monkeypatch, subnet, widen, message):
    fake(monkeypatch, ("eth0", "10.1.2.3", 16), ("wan", "8.8.8.8", 24))
    with pytest.raises(scope.ScopeError) as e:
        scope.build([subnet], widen=widen)
    assert e.value.usage and str(e.value) == message


def test_a_good_subnet_narrows_the_scope(monkeypatch):
    fake(monkeypatch, ("eth0", "10.1.2.3", 16))
    nets, refused = scope.build(["10.1.2.0/24"])
    assert [(str(n.network), n.interface, n.local_ip) for n in nets] == [
        ("10.1.2.0/24", "eth0", "10.1.2.3")
    ]
    assert refused == []
    nets, _ = scope.build(["10.1.0.0/16"], widen=True)
    assert nets[0].network == ipaddress.ip_network("10.1.0.0/16")


def test_not_connected_is_nothing_to_diagnose_not_bad_input(monkeypatch):
    fake(monkeypatch, ("eth0", "10.1.2.3", 24))
    with pytest.raises(scope.ScopeError) as e:
        scope.build(["192.168.5.0/24"])
    assert not e.value.usage and "not directly connected" in str(e.value)
    # One of two connected: the other is reported, the run goes on.
    nets, refused = scope.build(["10.1.2.0/25", "192.168.5.0/24"])
    assert [str(n.network) for n in nets] == ["10.1.2.0/25"]
    assert [str(r) for r in refused] == [
        "192.168.5.0/24 is not directly connected to this computer"
    ]


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "PHONEDIAG_CONFIG"}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("option", ["--subnet", "--network"])
@pytest.mark.parametrize(
    "command, lang, subnet, line",
    [
        ("discover", "en", "8.8.8.0/24", "network refused: 8.8.8.0/24 is not a private network"),
        ("diagnose", "fr", "8.8.8.0/24", "réseau refusé : 8.8.8.0/24 n'est pas un réseau privé"),
        (
            "discover",
            "fr",
            "10.0.0.0/16",
            "réseau refusé : 10.0.0.0/16 est plus grand qu'un /22 (--widen pour l'analyser)",
        ),
    ],
)
def test_cli_refuses_with_exit_2_and_one_line(option, command, lang, subnet, line):
    r = run(command, option, subnet, "--lang", lang)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"phonediag: {line}\n"
    assert r.stdout == ""


def test_help_documents_subnet():
    for command in ("discover", "diagnose"):
        out = run(command, "--help").stdout
        assert "--subnet, --network CIDR" in out
