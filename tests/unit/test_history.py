"""The run history: stored in the local store beside the audit log, pruned, never failing
a command, read back exactly; `phonediag report list|show|diff|export` as a technician
uses them after a fix."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import config, history, store
from agent.remedies.audit import Audit
from agent.report import json as json_report
from agent.report import schema

EXE = str(Path(sys.executable).with_name("phonediag"))


def run(cfg_path: Path, *args: str, env: dict[str, str] | None = None):
    e = {**os.environ, "PHONEDIAG_CONFIG": str(cfg_path), **(env or {})}
    r = subprocess.run([EXE, *args], capture_output=True, text=True, env=e, timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def store_of(cfg_path: Path) -> Path:
    return store.path_for(config.load(cfg_path).store_path)


# ------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name", ["diagnose-sip-alg", "discover"])
def test_a_stored_report_comes_back_exactly(report_doc, name):
    doc = report_doc(name)
    report = history.load_report(doc)
    assert report.to_dict() == doc
    assert json.loads(json_report.render(report)) == doc


def test_unknown_values_come_back_unknown(report_doc):
    from agent.model import UNKNOWN

    doc = report_doc("diagnose-sip-alg")
    unknown = [f for f in doc["facts"] if f.get("unknown")]
    assert unknown, "the fixture has unknown facts"
    report = history.load_report(doc)
    back = {(f.subject, f.key): f.value for f in report.facts}
    assert all(back[(f["subject"], f["key"])] is UNKNOWN for f in unknown)


def test_explain_round_trips(report_doc):
    doc = report_doc("diagnose-sip-alg")
    doc["explain"] = [{"rule": "dnd-on", "device": "10.66.0.11", "result": None, "trace": []}]
    assert history.load_report(doc).to_dict() == doc


# ----------------------------------------------------------------------- the store


def test_runs_are_stored_with_their_summary_beside_the_audit_log(tmp_path, report_doc):
    path = tmp_path / "s" / "phonediag.sqlite"
    Audit(path).close()  # the remedies' audit log is already there
    started = datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC)
    text = json.dumps(report_doc("diagnose-sip-alg"), indent=2)
    with history.History(path) as h:
        run_id = h.add(text, "diagnose", "en", 1, started, {"symptom": "no-ring"})
        got = h.get(run_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"remedy_audit", "run_history"} <= tables
    assert got.report_json == text  # exactly what was printed
    assert got.to_dict() == {
        "id": run_id,
        "started": "2026-11-27T09:30:05+00:00",
        "command": "diagnose",
        "options": {"symptom": "no-ring"},
        "scope": ["10.66.0.0/24"],
        "lang": "en",
        "exit_code": 1,
        "duration_s": 5.587,
        "phones": 3,
        "findings": {"critical": 1, "warning": 0, "info": 0},
        "errors": 0,
        "schema_version": "1",
    }


def test_the_newest_runs_are_kept_and_ids_never_come_back(tmp_path, report_doc):
    text = json.dumps(report_doc("discover"))
    with history.History(tmp_path / "h.sqlite") as h:
        ids = [h.add(text, "discover", "fr", 0, keep=3) for _ in range(5)]
        assert [r.id for r in h.list(10)] == ids[:1:-1] == [5, 4, 3]
        assert h.count() == 3 and h.get(1) is None and h.get(2) is None
        assert h.add(text, "discover", "fr", 0, keep=3) == 6  # never 1 again
        assert h.resolve("last").id == 6 and h.resolve("4").id == 4
        assert h.resolve("1") is None and h.resolve("abc") is None and h.resolve("-1") is None


def test_record_uses_the_configured_store_and_keep(tmp_path, report_doc):
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(f'[store]\npath = "{tmp_path / "x.sqlite"}"\n[history]\nkeep = 2\n')
    cfg = config.load(cfg_path)
    assert cfg.history_keep == 2
    text = json.dumps(report_doc("discover"))
    ids = [history.record(cfg, text, "discover", "fr", 0) for _ in range(3)]
    assert ids == [1, 2, 3]
    with history.History(tmp_path / "x.sqlite") as h:
        assert [r.id for r in h.list()] == [3, 2]
    cfg.history_keep = 0  # keep none: nothing stored, what was kept is forgotten
    assert history.record(cfg, text, "discover", "fr", 0) is None
    with history.History(tmp_path / "x.sqlite") as h:
        assert h.count() == 0


def test_keep_defaults_to_1000_and_refuses_nonsense(tmp_path):
    assert config.load(None).history_keep == 1000
    bad = tmp_path / "c.toml"
    bad.write_text("[history]\nkeep = -1\n")
    with pytest.raises(config.ConfigError, match=r"history\.keep must be positive"):
        config.load(bad)
    bad.write_text('[history]\nkeep = "all"\n')
    with pytest.raises(config.ConfigError, match=r"history\.keep must be of type int"):
        config.load(bad)


def test_a_history_that_cannot_be_written_only_warns(tmp_path, report_doc, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = config.Config(store_path=str(blocker / "sub" / "phonediag.sqlite"))
    text = json.dumps(report_doc("discover"))
    assert history.record(cfg, text, "discover", "en", 0) is None
    err = capsys.readouterr().err
    assert err.startswith("phonediag: warning: this run was not stored in the history (")
    assert str(blocker) in err and len(err.splitlines()) == 1
    cfg.store_path = str(tmp_path / "garbage.sqlite")
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database, just bytes" * 100)
    assert history.record(cfg, text, "discover", "fr", 0) is None
    assert "n'a pas été enregistré" in capsys.readouterr().err


def test_no_place_for_the_store_only_warns(report_doc, monkeypatch, capsys):
    """A user without a usable home (a service account, HOME=/nonexistent)."""

    def denied() -> Path:
        raise PermissionError(13, "Permission denied", "/nonexistent/.local/share")

    monkeypatch.setattr(store, "default_path", denied)
    monkeypatch.delenv(store.ENV, raising=False)
    text = json.dumps(report_doc("discover"))
    assert history.record(config.Config(), text, "discover", "en", 0) is None
    assert "not stored in the history ([Errno 13] Permission denied" in capsys.readouterr().err


def test_the_store_is_the_configured_one_then_the_environment_s(monkeypatch, tmp_path):
    assert os.environ[store.ENV]  # the test session's own (tests/conftest.py)
    monkeypatch.setenv(store.ENV, str(tmp_path / "env.sqlite"))
    assert store.path_for(None) == tmp_path / "env.sqlite"
    assert store.path_for(str(tmp_path / "cfg.sqlite")) == tmp_path / "cfg.sqlite"
    monkeypatch.delenv(store.ENV)
    assert store.path_for(None) == store.default_path()


def test_the_default_place_is_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(store.sys, "platform", "linux")
    monkeypatch.setattr(store.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "none"))
    assert store.default_path() == tmp_path / "phonediag" / "phonediag.sqlite"
    monkeypatch.setattr(store.os, "geteuid", lambda: 0)
    assert store.default_path() == Path("/var/lib/phonediag/phonediag.sqlite")
    monkeypatch.setattr(store.os, "geteuid", lambda: 1000)

    def unreadable(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store.Path, "exists", unreadable)
    assert store.default_path() == tmp_path / "phonediag" / "phonediag.sqlite"  # no crash


# ------------------------------------------------------------------------ the diff


def _runs(before: dict, after: dict, a_cmd: str = "diagnose") -> tuple:
    a = history.Run.unsaved(json.dumps(before), a_cmd, "fr", 1, datetime.now(UTC), run_id=1)
    b = history.Run.unsaved(json.dumps(after), "diagnose", "fr", 1, datetime.now(UTC), run_id=2)
    return a, b


def _finding(rule: str, device: str | None, severity: str = "warning", line=None) -> dict:
    return {
        **{"rule": rule, "device": device, "severity": severity, "title": rule.upper()},
        **{"explanation": "", "remedies": [], "guide": "", "matched": {}, "line": line},
    }


def test_diff_phones_appeared_gone_changed(report_doc):
    before = report_doc("diagnose-sip-alg")
    after = report_doc("diagnose-sip-alg")
    gigaset = after["devices"].pop(2)  # .13 unplugged
    after["devices"].append({**gigaset, "ip": "10.66.0.40", "mac": "7c:2f:80:00:00:40"})
    after["devices"][0]["firmware"] = "66.86.0.20"  # .11 upgraded
    after["devices"][1]["ip"] = "10.66.0.30"  # the Cisco got a new address (same MAC)
    d = history.diff(*_runs(before, after))
    assert [x["ip"] for x in d["devices"]["appeared"]] == ["10.66.0.40"]
    assert [x["ip"] for x in d["devices"]["disappeared"]] == ["10.66.0.13"]
    assert [(x["ip"], x["changes"]) for x in d["devices"]["changed"]] == [
        ("10.66.0.11", {"firmware": ["66.86.0.15", "66.86.0.20"]}),
        ("10.66.0.30", {"ip": ["10.66.0.12", "10.66.0.30"]}),
    ]


def test_diff_findings_new_resolved_still_per_phone_line_site(report_doc):
    before = report_doc("diagnose-sip-alg")
    after = report_doc("diagnose-sip-alg")
    before["findings"] += [
        _finding("dnd-on", "10.66.0.12"),
        _finding("line-not-registered", None, "critical", "0033972000009"),
    ]
    after["devices"][1]["ip"] = "10.66.0.30"  # moved: its finding is the same one
    after["findings"] = [
        _finding("dnd-on", "10.66.0.30"),
        _finding("forwarding-left-on", "10.66.0.11", "critical", "0033972000001"),
    ]
    d = history.diff(*_runs(before, after))
    f = d["findings"]
    assert [(e["rule"], e["subject"]) for e in f["new"]] == [("forwarding-left-on", "10.66.0.11")]
    assert [(e["rule"], e["subject"]) for e in f["resolved"]] == [
        ("sip-alg-detected", "site"),
        ("line-not-registered", "line:0033972000009"),
    ]
    assert [(e["rule"], e["subject"]) for e in f["still"]] == [("dnd-on", "10.66.0.30")]
    assert f["new"][0]["device"]["model"] == "SIP-T46S" and f["new"][0]["line"]
    text = history.diff_text(d, "fr")
    assert "Constats : 1 nouveau(x), 2 résolu(s), 1 toujours là" in text
    lines = text.splitlines()
    site = lines.index("  réseau du bureau")
    assert lines[site + 1].split()[:3] == ["RÉSOLU", "CRITIQUE", "sip-alg-detected"]
    phone = lines.index("  téléphone 10.66.0.11, Yealink SIP-T46S")
    assert lines[phone + 1].split()[:3] == ["NOUVEAU", "CRITIQUE", "forwarding-left-on"]
    assert "  ligne 0033972000009, téléphone non trouvé sur ce réseau" in lines
    assert (
        lines.index("  réseau du bureau")
        < phone
        < lines.index("  ligne 0033972000009, téléphone non trouvé sur ce réseau")
    )
    en = history.diff_text(d, "en")
    assert "Findings: 1 new, 2 resolved, 1 still there" in en and "    STILL" in en


def test_a_different_phone_at_the_same_address_is_not_the_same_finding(report_doc):
    before = report_doc("diagnose-sip-alg")
    after = report_doc("diagnose-sip-alg")
    after["devices"][0]["mac"] = "80:5e:c0:00:00:99"  # another phone took .11
    before["findings"] = [_finding("dnd-on", "10.66.0.11")]
    after["findings"] = [_finding("dnd-on", "10.66.0.11")]
    d = history.diff(*_runs(before, after))
    assert len(d["findings"]["new"]) == len(d["findings"]["resolved"]) == 1
    assert d["devices"]["appeared"][0]["mac"] == "80:5e:c0:00:00:99"


def test_no_change_and_discovery_diffs(report_doc):
    doc = report_doc("diagnose-sip-alg")
    d = history.diff(*_runs(doc, doc))
    assert d["devices"] == {"appeared": [], "disappeared": [], "changed": []}
    assert not d["findings"]["new"] and not d["findings"]["resolved"]
    assert len(d["findings"]["still"]) == 1
    d = history.diff(*_runs(report_doc("discover"), doc, a_cmd="discover"))
    assert d["compared_findings"] is False and d["findings"]["new"] == []
    assert "le rapport n° 1 est une découverte" in history.diff_text(d, "fr")


# ------------------------------------------------------------------ the commands


def test_an_empty_history_says_so(history_config):
    r = run(history_config, "report", "list", "--lang", "en")
    assert r.returncode == 0
    assert r.stdout.strip() == "No report stored yet: every 'phonediag diagnose' or" \
        " 'phonediag discover' stores one."  # fmt: skip
    r = run(history_config, "report", "list", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = run(history_config, "report", "show", "last")
    assert r.returncode == 2 and r.stderr.startswith("phonediag: rapport inconnu : last")


def test_report_list(seeded_history):
    r = run(seeded_history, "report", "list", "--lang", "fr")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Rapports enregistrés (les 3 plus récents sur 3)"
    assert lines[2].split() == ["N°", "Date", "Commande", "Téléphones", "Critiques",
                                "Attention", "Info", "Code"]  # fmt: skip
    rows = [line.split() for line in lines[3:]]
    assert [(x[0], x[3], x[4], x[5], x[6], x[7], x[8]) for x in rows] == [
        ("3", "diagnose", "3", "0", "1", "0", "1"),
        ("2", "diagnose", "3", "1", "0", "0", "1"),
        ("1", "discover", "3", "0", "0", "0", "0"),
    ]
    listed = json.loads(run(seeded_history, "report", "list", "--json", "--limit", "2").stdout)
    assert [x["id"] for x in listed] == [3, 2]
    assert listed[0]["started"] == "2026-11-27T09:09:00+00:00"
    assert listed[1]["findings"] == {"critical": 1, "warning": 0, "info": 0}


def test_report_show(seeded_history, report_doc):
    r = run(seeded_history, "report", "show", "2", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == report_doc("diagnose-sip-alg")
    r = run(seeded_history, "report", "show", "2")  # in the run's language: French
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Rapport n° 2 — ")
    assert "phonediag diagnose — code de sortie 1" in r.stdout.splitlines()[0]
    assert "Un routeur modifie les messages SIP (SIP ALG)" in r.stdout
    assert "10.66.0.13" in r.stdout
    r = run(seeded_history, "report", "show", "1", "--lang", "en")
    assert r.returncode == 0 and r.stdout.startswith("Report 1 — ") and "Diagnosis" not in r.stdout


@pytest.mark.parametrize("ref", ["42", "abc", "0"])
def test_a_bad_id_is_one_line_and_exit_2(seeded_history, ref):
    for args in (("show", ref), ("export", ref), ("diff", "1", ref), ("diff", ref, "2")):
        r = run(seeded_history, "report", *args, "--lang", "en")
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.splitlines() == [
            f"phonediag: unknown report: {ref} (a number from 'phonediag report list', or last)"
        ]


def test_report_diff_after_a_fix(seeded_history):
    r = run(seeded_history, "report", "diff", "2", "last", "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("Report 2 (") and "→ report 3 (" in r.stdout
    assert "Phones: 0 appeared, 0 gone, 1 changed" in r.stdout
    assert "  ~ phone 10.66.0.11, Yealink SIP-T46S: firmware 66.86.0.15 → 66.86.0.20" in r.stdout
    assert "Findings: 1 new, 1 resolved, 0 still there" in r.stdout
    d = json.loads(run(seeded_history, "report", "diff", "2", "3", "--json").stdout)
    assert [(e["rule"], e["subject"]) for e in d["findings"]["new"]] == [("dnd-on", "10.66.0.11")]
    assert [e["rule"] for e in d["findings"]["resolved"]] == ["sip-alg-detected"]
    assert d["from"]["id"] == 2 and d["to"]["id"] == 3


def test_report_export(seeded_history, tmp_path, report_doc):
    out = tmp_path / "r.json"
    r = run(seeded_history, "report", "export", "2", "--format", "json", "-o", str(out))
    assert r.returncode == 0 and r.stdout.strip() == f"Rapport n° 2 écrit dans {out} (json)."
    doc = json.loads(out.read_text())
    assert doc == report_doc("diagnose-sip-alg") and schema.validate(doc) == []
    r = run(seeded_history, "report", "export", "3", "--format", "text", "--lang", "en")
    assert r.returncode == 0 and "Phones found (3)" in r.stdout and "dnd-on" not in r.stdout
    html = tmp_path / "r.html"
    r = run(seeded_history, "report", "export", "2", "--format", "html", "-o", str(html))
    assert r.returncode == 0, r.stderr
    page = html.read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "</html>" in page
    assert "SIP ALG" in page
    r = run(seeded_history, "report", "export", "2", "--format", "pdf")
    assert r.returncode == 2
    r = run(seeded_history, "report", "export", "2", "-o", str(tmp_path / "no" / "x.json"))
    assert r.returncode == 2 and "impossible d'écrire" in r.stderr


def test_an_unusable_store_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "file" / "x.sqlite"}"\n')
    for args in (("list",), ("show", "1")):
        r = run(cfg, "report", *args, "--lang", "en")
        assert r.returncode == 2
        assert len(r.stderr.splitlines()) == 1 and "the history cannot be used" in r.stderr


def test_a_run_that_cannot_diagnose_stores_nothing(history_config):
    # The unit tests run in a namespace with only loopback: exit 3, before any report.
    r = run(history_config, "diagnose")
    assert r.returncode == 3
    assert not store_of(history_config).exists()
