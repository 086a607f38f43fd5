"""`phonediag remedy` as a user meets it without a network: help, one-line errors with the
contract's exit codes, the audit log's commands (the lab tests do the rest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.remedies.audit import Audit

EXE = str(Path(sys.executable).with_name("phonediag"))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "store.sqlite"}"\n')
    return path


def run(*args: str, stdin: str = ""):
    env = {k: v for k, v in os.environ.items() if k != "PHONEDIAG_CONFIG"}
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60
    )


def one_line_error(r, code: int, words: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("phonediag: ") and len(r.stderr.strip().splitlines()) == 1
    assert words in r.stderr and "Traceback" not in r.stderr


def test_help():
    r = run("remedy", "--help")
    assert r.returncode == 0
    assert {"list", "apply", "undo", "log"} <= set(r.stdout.split("Commands:")[1].split())
    for cmd in ("list", "apply", "undo", "log"):
        h = run("remedy", cmd, "--help")
        assert h.returncode == 0 and "--lang" in h.stdout and "--config" in h.stdout
    assert "--yes" in run("remedy", "apply", "--help").stdout


def test_usage_errors_exit_2(cfg):
    one_line_error(run("remedy", "apply", "no-such", "--device", "10.0.0.1"), 2, "inconnue")
    one_line_error(
        run("remedy", "apply", "disable-line-dnd", "--lang", "en", "--config", str(cfg)),
        2,
        "give --device",
    )
    one_line_error(run("remedy", "undo", "abc", "--config", str(cfg)), 2, "abc")
    one_line_error(
        run("remedy", "undo", "42", "--lang", "en", "--config", str(cfg)), 2, "no operation 42"
    )
    one_line_error(run("remedy", "undo", "42", "--config", str(cfg)), 2, "aucune opération n° 42")


def test_no_network_exits_3(cfg):
    r = run("remedy", "list", "--lang", "en", "--config", str(cfg))
    assert r.returncode == 3 and "Cannot diagnose" in r.stderr


def test_the_log_and_an_unusable_store(cfg, tmp_path):
    r = run("remedy", "log", "--config", str(cfg))
    assert (r.returncode, r.stdout.strip()) == (0, "Journal vide.")
    audit = Audit(tmp_path / "store.sqlite")
    run_id = audit.add(None, "planned", "disable-line-dnd", "10.66.0.11", line="1001",
                       before={"doNotDisturb": True}, after={"doNotDisturb": False})  # fmt: skip
    audit.add(run_id, "consent", "disable-line-dnd", "10.66.0.11", outcome="no",
              message="answered 'non'")  # fmt: skip
    r = run("remedy", "log", "--config", str(cfg), "--json")
    rows = json.loads(r.stdout)
    assert [(x["step"], x["run"]) for x in rows] == [("planned", run_id), ("consent", run_id)]
    text = run("remedy", "log", "--config", str(cfg)).stdout
    assert "doNotDisturb = true -> doNotDisturb = false" in text and "answered 'non'" in text
    # an operation that changed nothing cannot be undone
    one_line_error(run("remedy", "undo", str(run_id), "--lang", "en", "--config", str(cfg)), 2,
                   "changed nothing")  # fmt: skip
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[store]\npath = "{cfg}/x.sqlite"\n')  # its folder is a file
    one_line_error(run("remedy", "log", "--lang", "en", "--config", str(bad)), 2, "audit log")
