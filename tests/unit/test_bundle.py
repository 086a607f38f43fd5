"""`phonediag bundle`: the zip for a support ticket holds the report, the evidence, the
versions and the configuration, and not one secret of a configuration full of them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from agent import __version__, bundle, config, history, store
from agent.report import schema

EXE = str(Path(sys.executable).with_name("phonediag"))
FILES = [
    "README.txt",
    "report.html",
    "report.json",
    "report.txt",
    "evidence.json",
    "versions.txt",
    "config.toml",
]
# Every kind of secret a configuration holds, each unlike anything else in a report.
SECRETS = {
    "community": "c0mmunity-Zq81",
    "community2": "wr1te-Kx",
    "v3_auth": "v3authkey-Pl0q",
    "v3_priv": "v3privkey-Mn7e",
    "app_key": "AppKeyRt5y77",
    "app_secret": "AppSecretW2e9xx",
    "consumer": "ConsumerKeyQ4r8",
    "web": "yealinkPw-93jd",
    "sip": "SipLinePw-1f0a",
    "pin": "4821",  # a Gigaset PIN: short, masked as a whole word
}
CONFIG = f"""[site]
registrar = "sip.ovh.net"
[snmp]
communities = ["{SECRETS["community"]}", "{SECRETS["community2"]}"]
v3_user = "monitor"
v3_auth_key = "{SECRETS["v3_auth"]}"
v3_priv_key = "{SECRETS["v3_priv"]}"
[provider]
application_key = "{SECRETS["app_key"]}"
application_secret = "{SECRETS["app_secret"]}"
consumer_key = "{SECRETS["consumer"]}"
[[credentials]]
vendor = "yealink"
username = "admin"
password = "{SECRETS["web"]}"
[[credentials]]
device = "10.66.0.12"
username = "sipuser"
password = "{SECRETS["sip"]}"
[[credentials]]
vendor = "gigaset"
username = "admin"
password = "{SECRETS["pin"]}"
"""


def run(cfg_path: Path, *args: str, cwd: Path | None = None):
    env = {**os.environ, "PHONEDIAG_CONFIG": str(cfg_path)}
    r = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture
def secret_config(tmp_path: Path, report_doc) -> Path:
    """A configuration with every kind of secret, and a stored diagnosis whose evidence
    carries some of them (as a buggy probe or a chatty phone might)."""
    path = tmp_path / "secret.toml"
    path.write_text(CONFIG + f'[store]\npath = "{tmp_path / "s.sqlite"}"\n')
    doc = report_doc("diagnose-sip-alg")
    dev = doc["devices"][0]
    dev["evidence"]["snmp"]["community"] = SECRETS["community"]
    dev["evidence"]["http"] = {
        "url": f"http://admin:{SECRETS['web']}@10.66.0.11/servlet?p=status",
        "query": f"user=admin&password={SECRETS['web']}&lang=fr",
        "pin": SECRETS["pin"],
    }
    doc["facts"].append(
        {"subject": "10.66.0.12", "key": "phone.sip.auth_password", "value": SECRETS["sip"],
         "source": "vendor.cisco", "evidence": f"read with {SECRETS['sip']}"}
    )  # fmt: skip
    why = f"403 for X-Ovh-Application: {SECRETS['app_key']} (secret {SECRETS['app_secret']})"
    doc["errors"].append({"step": "provider", "subject": None, "reason": why})
    doc["findings"][0]["remedies"].append(f"PIN {SECRETS['pin']} on the handset")
    assert schema.validate(doc) == []
    with history.History(tmp_path / "s.sqlite") as h:
        h.add(json.dumps(doc, indent=2), "diagnose", "fr", 1)
    return path


def members(zip_path: Path) -> dict[str, str]:
    with zipfile.ZipFile(zip_path) as z:
        return {name: z.read(name).decode("utf-8") for name in z.namelist()}


def test_the_bundle_holds_everything_and_no_secret(secret_config, tmp_path):
    out = tmp_path / "ticket.zip"
    r = run(secret_config, "bundle", "-o", str(out), "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Support bundle: {out} (report 1). Inside: README.txt,")
    files = members(out)
    assert list(files) == FILES
    raw = out.read_bytes()
    for name, value in SECRETS.items():
        for member, text in files.items():
            if len(value) >= 8:
                assert value not in text, (name, member)
            else:  # a short secret: never as a word of its own (4821 in a number is not it)
                assert not re.search(rf"(?<![A-Za-z0-9_]){value}(?![A-Za-z0-9_])", text), (
                    name,
                    member,
                )
        assert value.encode() not in raw, name  # not in the zip's own names or comments
    assert "***" in files["evidence.json"] and "***" in files["config.toml"]


def test_the_bundled_report_is_the_stored_one_masked(secret_config, tmp_path):
    out = tmp_path / "b.zip"
    assert run(secret_config, "bundle", "-o", str(out), "--run", "1").returncode == 0
    files = members(out)
    doc = json.loads(files["report.json"])
    assert schema.validate(doc) == []
    dev = doc["devices"][0]
    assert dev["evidence"]["snmp"]["community"] == "***"
    assert dev["evidence"]["http"]["pin"] == "***"
    assert dev["evidence"]["http"]["url"] == "http://admin:***@10.66.0.11/servlet?p=status"
    assert dev["evidence"]["snmp"]["sysDescr"] == "Yealink SIP-T46S 66.86.0.15"  # kept
    assert "lan.public_ip" in doc["site"] and doc["site"]["lan.public_ip"] == "100.64.66.2"
    fact = next(f for f in doc["facts"] if f["key"] == "phone.sip.auth_password")
    assert fact["value"] == "***" and fact["evidence"] == "read with ***"
    assert [d["ip"] for d in doc["devices"]] == ["10.66.0.11", "10.66.0.12", "10.66.0.13"]
    evidence = json.loads(files["evidence.json"])
    assert evidence["run"]["id"] == 1 and evidence["run"]["command"] == "diagnose"
    assert [d["ip"] for d in evidence["devices"]] == ["10.66.0.11", "10.66.0.12", "10.66.0.13"]
    assert evidence["devices"][1]["evidence"]["sip"]["agent"].startswith("Cisco/SPA504G")
    assert any(e["step"] == "provider" for e in evidence["errors"])
    assert files["report.html"].lstrip().lower().startswith("<!doctype html")
    assert "Un routeur modifie les messages SIP" in files["report.txt"]


def test_the_configuration_is_the_effective_one_with_secrets_masked(secret_config, tmp_path):
    out = tmp_path / "b.zip"
    assert run(secret_config, "bundle", "-o", str(out)).returncode == 0
    text = members(out)["config.toml"]
    cfg = tomllib.loads(text)
    assert cfg["site"]["registrar"] == "sip.ovh.net"
    assert cfg["site"]["registrar_ports"] == [5060, 5962]  # a default, shown
    assert cfg["snmp"]["communities"] == ["***", "***"]
    assert cfg["snmp"]["v3_user"] == "monitor" and cfg["snmp"]["v3_auth_protocol"] == "SHA"
    assert cfg["snmp"]["v3_auth_key"] == cfg["snmp"]["v3_priv_key"] == "***"
    keys = ("application_key", "application_secret", "consumer_key")
    assert {k: cfg["provider"][k] for k in keys} == dict.fromkeys(keys, "***")
    logins = [(c.get("vendor"), c.get("device"), c["username"]) for c in cfg["credentials"]]
    assert logins == [
        ("yealink", None, "admin"),
        (None, "10.66.0.12", "sipuser"),
        ("gigaset", None, "admin"),
    ]
    assert all(c["password"] == "***" for c in cfg["credentials"])
    assert f"# Read from: {secret_config}" in text
    assert "# stun_server = (not set)" in text


def test_readme_versions_and_a_chosen_run(secret_config, tmp_path, report_doc):
    with history.History(tmp_path / "s.sqlite") as h:
        h.add(json.dumps(report_doc("discover")), "discover", "en", 0)
    out = tmp_path / "b.zip"
    r = run(secret_config, "bundle", "-o", str(out), "--run", "2")
    assert r.returncode == 0 and "(rapport n° 2)" in r.stdout
    files = members(out)
    readme = files["README.txt"]
    assert "Dossier de diagnostic phonediag" in readme and "phonediag diagnosis bundle" in readme
    assert readme.index("Contenu :") < readme.index("Inside:")
    for name in FILES[1:]:
        assert readme.count(name) == 2, name
    assert "phonediag discover" in readme
    versions = files["versions.txt"].splitlines()
    assert versions[0] == f"phonediag {__version__}"
    assert versions[1].startswith(f"Python {sys.version_info.major}.{sys.version_info.minor}")
    assert versions[2].startswith("OS ") and any(v.startswith("click ") for v in versions)
    assert "Diagnostic" not in files["report.txt"]  # a discovery: the phones only


def test_default_name_and_bad_run(secret_config, tmp_path):
    r = run(secret_config, "bundle", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    made = list(tmp_path.glob("phonediag-bundle-1-*.zip"))
    assert len(made) == 1 and (made[0].stat().st_mode & 0o077) == 0
    r = run(secret_config, "bundle", "--run", "9", "--lang", "en")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "phonediag: unknown report: 9 (a number from 'phonediag report list', or last)"
    ]
    r = run(secret_config, "bundle", "-o", str(tmp_path / "no" / "b.zip"))
    assert r.returncode == 2 and "impossible d'écrire" in r.stderr


def test_without_a_stored_run_it_diagnoses_first(history_config, tmp_path):
    # Only loopback here: the diagnosis it runs cannot be made (exit 3), and no zip is left.
    r = run(history_config, "bundle", "-o", str(tmp_path / "b.zip"), "--lang", "en")
    assert r.returncode == 3
    assert r.stderr.splitlines()[0] == "No stored report: running a diagnosis for the bundle…"
    assert "Cannot diagnose" in r.stderr and not (tmp_path / "b.zip").exists()


def test_scrubber_whole_words_for_short_secrets():
    scrub = bundle.Scrubber(["public", "4821", "LongSecretValue"])
    assert scrub("community public, lan.public_ip, publique") == (
        "community ***, lan.public_ip, publique"
    )
    assert scrub("PIN 4821; 148210; x4821") == "PIN ***; 148210; x4821"
    assert scrub("aLongSecretValueb") == "a***b"  # a long one anywhere
    assert scrub.json({"4821": [4821, "4821"], "k": "LongSecretValue"}) == {
        "***": [4821, "***"],
        "k": "***",
    }


def test_config_without_secrets_or_file(tmp_path):
    text = bundle.config_toml(config.load(None))
    cfg = tomllib.loads(text)
    assert cfg["snmp"]["communities"] == ["***"]  # even the default "public"
    assert "credentials" not in cfg and "(no file: every value is a default)" in text
    assert cfg["history"]["keep"] == 1000
    assert store.path_for(None).name == "phonediag.sqlite"
