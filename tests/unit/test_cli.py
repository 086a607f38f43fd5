"""The command line as a user meets it: help, one-line errors, contract exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("phonediag"))


def run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k != "PHONEDIAG_CONFIG"}
    e.update(env or {})
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=e, timeout=60)


def test_help_lists_only_working_commands():
    r = run("--help")
    assert r.returncode == 0
    commands = r.stdout.split("Commands:")[1].split()
    assert {"discover", "diagnose", "rules"} <= set(commands)
    for cmd in (("discover",), ("diagnose",), ("rules", "list"), ("rules", "show")):
        h = run(*cmd, "--help")
        assert h.returncode == 0 and "--json" in h.stdout and "Usage:" in h.stdout
    for cmd in ("discover", "diagnose"):
        assert "--lang" in run(cmd, "--help").stdout and "--config" in run(cmd, "--help").stdout


@pytest.mark.parametrize(
    "args",
    [("--bogus",), ("discover", "--nope"), ("diagnose", "--lang", "de"), ("frobnicate",)],
)
def test_bad_usage_exits_2_with_one_line(args):
    r = run(*args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("phonediag: ")
    assert "Traceback" not in r.stderr


def test_no_network_exits_3_with_a_clear_message():
    # The test session runs in a namespace with only loopback: nothing to diagnose.
    r = run("diagnose", "--lang", "en")
    assert r.returncode == 3
    assert "Cannot diagnose" in r.stderr and "Traceback" not in r.stderr
    r = run("discover", "--lang", "fr")
    assert r.returncode == 3 and "Impossible de diagnostiquer" in r.stderr
    assert "aucune interface réseau" in r.stderr


def test_broken_config_exits_2(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[site\n")
    r = run("diagnose", env={"PHONEDIAG_CONFIG": str(bad)})
    assert r.returncode == 2 and "c.toml" in r.stderr and "invalid TOML" in r.stderr
    r = run("diagnose", "--config", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "file not found" in r.stderr


def test_rules_lists_and_checks(tmp_path):
    r = run("rules", "list", "--json", "--lang", "en")
    assert r.returncode == 0
    ids = {x["id"] for x in json.loads(r.stdout)}
    assert {"dns-failure", "sip-port-blocked"} <= ids
    bad = tmp_path / "r.toml"
    bad.write_text('[[rule]]\nid = "x"\nseverity = "bad"\n')
    r = run("rules", "test", str(bad))
    assert r.returncode == 2 and "r.toml:2: severity must be one of" in r.stderr
    shipped = run("rules", "test", "--lang", "en")
    assert shipped.returncode == 0, shipped.stderr
    assert "valid rules" in shipped.stdout and "test cases pass" in shipped.stdout


def test_rules_show():
    r = run("rules", "show", "sip-port-blocked", "--lang", "en")
    assert r.returncode == 0
    assert "SIP port 5060 is blocked" in r.stdout and "1. " in r.stdout
    r = run("rules", "show", "no-such-rule")
    assert r.returncode == 2 and "no-such-rule" in r.stderr


def test_language_from_locale():
    fr = run("rules", "list", env={"LANG": "fr_FR.UTF-8", "LC_ALL": ""})
    en = run("rules", "list", env={"LANG": "en_GB.UTF-8", "LC_ALL": ""})
    assert "Le port SIP 5060" in fr.stdout and "SIP port 5060 is blocked" in en.stdout
