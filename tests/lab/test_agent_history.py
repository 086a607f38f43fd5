"""The run history in the lab office (root only): two diagnoses on either side of a change
on a phone, then what a technician does with them — list, show, diff, export — and the
support bundle, which must not hold one of the lab's secrets."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from agent.report import schema
from lab import Lab


def phonediag(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    r = lab.run(["phonediag", *args], timeout=240)
    assert "Traceback" not in r.stderr, r.stderr
    assert "not stored in the history" not in r.stderr and "pas été enregistré" not in r.stderr
    return r


def lab_secrets(lab: Lab) -> dict[str, str]:
    """Every secret of the lab the agent knows: each phone's admin password (a Gigaset's is
    a 4-digit PIN), the SNMP community, the OVHcloud API's secret and consumer key."""
    cfg = tomllib.loads(lab.config_path.read_text())
    found = {f"admin:{p['role']}": lab.phone_state(p["role"])["admin"]["password"]
             for p in lab.phones}  # fmt: skip
    found |= {f"community:{i}": c for i, c in enumerate(cfg["snmp"]["communities"])}
    found |= {f"login:{c['device']}": c["password"] for c in cfg.get("credentials", [])}
    found["api-secret"] = cfg["provider"]["application_secret"]
    found["consumer-key"] = cfg["provider"]["consumer_key"]
    return {k: v for k, v in found.items() if v}


def leaks(files: dict[str, str], secrets: dict[str, str]) -> list[tuple[str, str]]:
    """(secret's name, file) for each secret found in a file: anywhere for a long one, as a
    word of its own for a short one ("public", a PIN) — in JSON, in its strings only (a
    number that happens to have a PIN's digits is not the PIN)."""
    found = []
    for name, value in secrets.items():
        word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])")
        for member, text in files.items():
            texts = _strings(json.loads(text)) if member.endswith(".json") else [text]
            hit = any(value in x if len(value) >= 8 else word.search(x) for x in texts)
            if hit:
                found.append((name, member))
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_two_diagnoses_listed_shown_compared_exported_and_bundled(tmp_path: Path) -> None:
    with Lab.up("healthy") as lab:
        p1 = next(p for p in lab.phones if p["role"] == "phone1")
        first = phonediag(lab, "diagnose", "--json")
        assert first.returncode in (0, 1), first.stderr
        assert "dnd-on" not in {f["rule"] for f in json.loads(first.stdout)["findings"]}

        lab.set_phone_state("phone1", dnd=True)
        second = phonediag(lab, "diagnose", "--lang", "en")  # the text report, this time
        assert second.returncode == 1, second.stderr

        listed = json.loads(phonediag(lab, "report", "list", "--json").stdout)
        assert [r["command"] for r in listed] == ["diagnose", "diagnose"]
        new_id, old_id = listed[0]["id"], listed[1]["id"]
        assert new_id > old_id and listed[0]["lang"] == "en" and listed[0]["exit_code"] == 1
        assert listed[0]["phones"] == len(lab.phones) and listed[0]["findings"]["warning"] >= 1
        text = phonediag(lab, "report", "list", "--lang", "en").stdout
        assert [line.split()[0] for line in text.splitlines()[3:]] == [str(new_id), str(old_id)]

        shown = json.loads(phonediag(lab, "report", "show", str(new_id), "--json").stdout)
        assert schema.validate(shown) == []
        dnd = [f for f in shown["findings"] if f["rule"] == "dnd-on"]
        assert [f["device"] for f in dnd] == [p1["ip"]]
        r = phonediag(lab, "report", "show", "last")
        assert r.returncode == 0 and r.stdout.startswith(f"Report {new_id} — ")
        assert dnd[0]["title"] in r.stdout and p1["ip"] in r.stdout

        d = json.loads(phonediag(lab, "report", "diff", str(old_id), str(new_id), "--json").stdout)
        assert [(e["rule"], e["subject"]) for e in d["findings"]["new"]] == [("dnd-on", p1["ip"])]
        assert d["findings"]["resolved"] == []
        assert d["devices"] == {"appeared": [], "disappeared": [], "changed": []}
        r = phonediag(lab, "report", "diff", str(old_id), str(new_id), "--lang", "en")
        assert "Findings: 1 new, 0 resolved" in r.stdout
        new_line = next(x for x in r.stdout.splitlines() if "dnd-on" in x)
        assert new_line.split()[:2] == ["NEW", "WARNING"]

        exported = tmp_path / "second.json"
        r = phonediag(lab, "report", "export", str(new_id), "--format", "json", "-o", str(exported))
        assert r.returncode == 0, r.stderr
        assert json.loads(exported.read_text()) == shown
        assert schema.validate(json.loads(exported.read_text())) == []
        page = tmp_path / "second.html"
        r = phonediag(lab, "report", "export", str(new_id), "--format", "html", "-o", str(page))
        assert r.returncode == 0, r.stderr
        html = page.read_text()
        assert html.lstrip().lower().startswith("<!doctype html") and p1["ip"] in html

        zipped = tmp_path / "ticket.zip"
        r = phonediag(lab, "bundle", "-o", str(zipped))
        assert r.returncode == 0, r.stderr
        with zipfile.ZipFile(zipped) as z:
            files = {n: z.read(n).decode("utf-8") for n in z.namelist()}
        assert set(files) == {"README.txt", "report.html", "report.json", "report.txt",
                              "evidence.json", "versions.txt", "config.toml"}  # fmt: skip
        bundled = json.loads(files["report.json"])
        assert schema.validate(bundled) == []
        assert [f["rule"] for f in bundled["findings"]] == [f["rule"] for f in shown["findings"]]
        secrets = lab_secrets(lab)
        assert len(secrets) >= len(lab.phones) + 3
        assert leaks(files, secrets) == []
        masked = tomllib.loads(files["config.toml"])
        assert masked["provider"]["application_secret"] == "***"
        assert all(c["password"] == "***" for c in masked["credentials"])
