"""The suite-wide secrets sweep (tests/secrets_sweep.py) can fail: a secret planted in a
command's output, a bundle's member, a store's row, a compressed history report or a
write-ahead log is found (by kind, never shown); clean outputs give 0; short values and
the default SNMP community are not searched; a hit fails the session."""

from __future__ import annotations

import base64
import json
import sqlite3
import zlib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from secrets_sweep import (
    MIN_LEN,
    PLUGIN_NAME,
    Sweep,
    SweepPlugin,
    agent_command,
    base64_cores,
)

from agent import bundle, history

LAB = "py-5ec12e"
SIP = "9f3c2a71d04be865"  # like the lab's: secrets.token_hex(8)
API = "Zk2m9QpR4tWx7yB1nC5vD8fG3hJ6kL0a"  # like the stand-in's application secret
CLEAN = "Phones found (3)\n10.66.0.11  yealink T46U  66.86.0.15  registered\n"


def sweep_with(*secrets: tuple[str, str]) -> Sweep:
    sweep = Sweep()
    sweep.add_lab(LAB)
    for kind, value in secrets:
        sweep.add_secret(kind, value, LAB)
    return sweep


def found(sweep: Sweep) -> list[tuple[str, str]]:
    return [(h.kind, h.output) for h in sweep.check().hits]


def test_a_secret_in_a_report_text_is_found_by_kind_never_shown() -> None:
    sweep = sweep_with(("SIP line password", SIP), ("OVHcloud API application secret", API))
    sweep.add_output("diagnose stdout", CLEAN, "agent runs")
    sweep.add_output("diagnose stderr", f"phonediag: REGISTER refused (auth {SIP})\n", "agent runs")
    result = sweep.check()
    assert [(h.kind, h.lab, h.output) for h in result.hits] == [
        ("SIP line password", LAB, "diagnose stderr")
    ]
    assert SIP not in str(result.hits[0]) and SIP not in json.dumps(result.to_dict())
    sweep.errors.append(f"/tmp/{SIP}.json: Permission denied")  # what is printed is masked
    sweep.add_output(f"file {API}.txt", API, "basetemp files")
    shown = json.dumps(sweep.check().to_dict())
    assert SIP not in shown and API not in shown and "file ***.txt" in shown
    assert result.line().endswith(": 1 found")
    assert (result.secrets, result.labs, result.outputs) == (2, 1, 2)


def test_clean_outputs_give_zero() -> None:
    sweep = sweep_with(("SIP line password", SIP), ("OVHcloud API consumer key", API))
    sweep.add_output("discover stdout", CLEAN, "agent runs")
    sweep.add_output("empty stderr", "", "agent runs")  # nothing to count
    sweep.add_output("a binary", bytes(range(256)) * 40, "basetemp files")
    result = sweep.check()
    assert result.hits == []
    assert result.line() == (
        "secrets sweep: 2 secrets of 1 labs checked in 2 outputs (0.0 MB): 0 found"
    )


def test_short_values_and_the_default_community_are_not_searched(tmp_path: Path) -> None:
    sweep = sweep_with(("phone web admin password", "4821"), ("SIP password", "lost"))
    config = tmp_path / "agent.toml"
    config.write_text('[snmp]\ncommunities = ["public", "0ffice-Rw-77"]\n')
    sweep._config_secrets(SimpleNamespace(config_path=config), LAB)
    sweep.add_output("report", "PIN 4821, lost, lan.public_ip 0ffice-Rw-77", "agent runs")
    result = sweep.check()
    assert len("public") >= MIN_LEN  # skipped as a default, not for its length
    assert (result.secrets, result.skipped_short) == (1, 2)
    assert [h.kind for h in result.hits] == ["SNMP community"]


def test_a_secret_in_a_bundle_member_is_found(tmp_path: Path) -> None:
    sweep = sweep_with(("phone web admin password", SIP))
    bundle.write(tmp_path / "ticket.zip", {"README.txt": "hello", "report.txt": f"pw={SIP}"})
    bundle.write(tmp_path / "clean.zip", {"README.txt": "hello", "report.txt": CLEAN})
    sweep.add_tree(tmp_path, "basetemp files")
    assert found(sweep) == [("phone web admin password", "ticket.zip!report.txt")]
    assert sweep.check().outputs == 2


def test_a_zip_inside_a_zip_and_a_gzip_log(tmp_path: Path) -> None:
    import gzip
    import io
    import zipfile

    sweep = sweep_with(("SIP line password", SIP))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("evidence.json", json.dumps({"x": SIP}))
    with zipfile.ZipFile(tmp_path / "outer.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.zip", inner.getvalue())
    (tmp_path / "serve.log.gz").write_bytes(gzip.compress(f"job done {SIP}\n".encode()))
    sweep.add_tree(tmp_path, "basetemp files")
    assert sorted(found(sweep)) == [
        ("SIP line password", "outer.zip!inner.zip!evidence.json"),
        ("SIP line password", "serve.log.gz (decompressed)"),
    ]


def test_a_secret_in_a_store_row_is_found(tmp_path: Path) -> None:
    sweep = sweep_with(("OVHcloud API consumer key", API))
    db = sqlite3.connect(tmp_path / "phonediag.sqlite")
    db.execute("CREATE TABLE remedy_audit (id INTEGER PRIMARY KEY, before TEXT, after TEXT)")
    row = ("{}", json.dumps({"k": API}))
    db.execute("INSERT INTO remedy_audit (before, after) VALUES (?, ?)", row)
    db.commit()
    db.close()
    sweep.add_tree(tmp_path, "basetemp files")
    assert ("OVHcloud API consumer key", "phonediag.sqlite table remedy_audit") in found(sweep)


def test_a_secret_in_a_compressed_history_report_is_found(tmp_path: Path, report_doc: Any) -> None:
    """The run history keeps each report zlib-compressed: not in the file's bytes, but
    found in the table once decompressed, as agent/history.py reads it."""
    doc = report_doc("diagnose-sip-alg")
    doc["findings"][0]["explanation"] = f"the phone's password is {SIP}"
    path = tmp_path / "store" / "phonediag.sqlite"
    with history.History(path) as h:
        h.add(json.dumps(doc), "diagnose", "en", 1, datetime(2026, 1, 1, tzinfo=UTC), {})
    assert SIP.encode() not in path.read_bytes()  # compressed: a plain grep misses it
    sweep = sweep_with(("SIP line password", SIP))
    sweep.add_tree(tmp_path, "basetemp files")
    where = "store/phonediag.sqlite table run_history row 1 report (decompressed)"
    assert found(sweep) == [("SIP line password", where)]
    clean = sweep_with(("SIP line password", "0123456789abcdef"))
    clean.add_tree(tmp_path, "basetemp files")
    assert clean.check().hits == [] and clean.check().pieces > 3


def test_a_row_still_in_the_write_ahead_log_is_found(tmp_path: Path) -> None:
    """A store in WAL mode (the portal's state) whose last rows are only in the -wal file:
    read with it, from a copy."""
    path = tmp_path / "phonediag.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE portal_outbox (seq INTEGER PRIMARY KEY, message BLOB)")
    db.commit()
    db.execute("INSERT INTO portal_outbox (message) VALUES (?)", (zlib.compress(SIP.encode()),))
    db.commit()
    try:
        assert (tmp_path / "phonediag.sqlite-wal").stat().st_size > 0
        sweep = sweep_with(("MQTT password (office-pc)", SIP))
        sweep.add_tree(tmp_path, "basetemp files")
        where = "phonediag.sqlite table portal_outbox row 1 message (decompressed)"
        assert found(sweep) == [("MQTT password (office-pc)", where)]
        assert sweep.check().outputs == 1  # the store and its log: one output
    finally:
        db.close()


def test_a_base64_encoded_secret_is_found() -> None:
    """An HTTP Basic authorization (the phones' web logins), whatever precedes it."""
    sweep = sweep_with(("phone web admin password", SIP))
    for user in ("admin", "root", "a"):
        basic = base64.b64encode(f"{user}:{SIP}".encode()).decode()
        sweep.add_output(f"evidence {user}", f"Authorization: Basic {basic}\n", "agent runs")
    kinds = {h.kind for h in sweep.check().hits}
    assert kinds == {"phone web admin password (base64)"}
    assert len(sweep.check().hits) == 3
    assert all(len(core) >= 14 for core in base64_cores(SIP.encode()))


def test_only_phonediag_commands_count_and_never_with_their_options() -> None:
    assert agent_command(["phonediag", "report", "show", "12", "--json"]) == (
        "phonediag report show"
    )
    assert agent_command(["phonediag", "portal", "submit", "hunter2-secret"]) == (
        "phonediag portal submit"
    )
    assert agent_command(["phonediag", "diagnose", "9f3c2a71d04be865"]) == "phonediag diagnose"
    assert agent_command(["phonediag", "changed-meanwhile"], {"changed-meanwhile"}) == "phonediag"
    token = ["phonediag", "portal", "enroll", "--token", "eyJhZ2VudCI6"]
    assert agent_command(token) == "phonediag portal enroll"
    assert agent_command(["setpriv", "--reuid=nobody", "/usr/bin/phonediag", "discover"]) == (
        "phonediag discover"
    )
    assert agent_command(["sh", "-c", 'cat "$PHONEDIAG_CONFIG"']) is None
    assert agent_command(["sipsak", "-vv", "-s", "sip:sip.ovh.test"]) is None


class FakeLab:
    """The parts of lab.Lab the sweep wraps and reads."""

    def __init__(self, base: Path) -> None:
        (base / "state").mkdir()
        self.state = SimpleNamespace(
            instance=LAB,
            dir=base / "state",
            passwords={"0033972000001": SIP},
            admin_passwords={"phone1": "1234", "phone2": "adm1n-Secret-77"},
            api={"credentials": [{"application_secret": API, "consumer_key": API[::-1]}]},
            mqtt={"office-pc": "mqttPw_agent_0001", "portal": "mqttPw_portal_0001"},
            phones=[{"role": "phone1"}],
            extra_uas=[],
        )
        self.config_path = base / "state" / "agent.toml"
        store = base / "state" / "phonediag.sqlite"
        self.config_path.write_text(f'[store]\npath = "{store}"\n[snmp]\ncommunities = ["public"]')
        self.settings = {"admin": {"password": "1234"}, "sip_password": "wrong" + SIP[::-1]}

    @classmethod
    def up(cls, base: Path) -> FakeLab:
        return cls(base)

    def run(self, argv: list[str], **kwargs: Any) -> Any:
        return SimpleNamespace(stdout=" ".join(argv) + f" {self.config_path.read_text()}")

    def exec(self, role: str, argv: list[str], **kwargs: Any) -> Any:
        return SimpleNamespace(stdout="", stderr=f"{role}: {argv[-1]}")

    def phone_state(self, role: str) -> dict[str, Any]:
        return self.settings

    def set_phone_state(self, role: str, **changes: Any) -> dict[str, Any]:
        self.settings = {**self.settings, **changes}
        return self.settings

    def down(self) -> None:
        if not self.state.dir.is_dir():
            return
        for path in sorted(self.state.dir.iterdir()):
            path.unlink()
        self.state.dir.rmdir()


def test_the_labs_are_watched_up_run_and_down(tmp_path: Path) -> None:
    sweep = Sweep()
    originals = dict(FakeLab.__dict__)
    with pytest.MonkeyPatch.context() as mp:
        sweep.instrument(mp, FakeLab)
        assert FakeLab.__dict__["run"] is not originals["run"]
        lab = FakeLab.up(tmp_path)
        # six secrets from the state (a 4-digit PIN skipped), one from the phone's settings
        assert (sweep.labs, sweep.secrets) == ([LAB], 7)
        lab.run(["sh", "-c", "cat agent.toml"])  # not the agent: not an output
        lab.run(["phonediag", "diagnose", "--json"])  # the agent: its streams are
        lab.exec("prov", ["phonediag", "portal", "submit", "mqttPw_portal_0001"])
        lab.set_phone_state("phone1", admin={"password": "changed-meanwhile"})
        with history.History(lab.state.dir / "phonediag.sqlite") as h:
            doc = {"schema_version": "1", "devices": [], "findings": [], "errors": []}
            doc["site"] = {"note": "changed-meanwhile"}
            h.add(json.dumps(doc), "diagnose", "en", 0)
        lab.down()
        lab.down()  # idempotent: nothing read twice
    for method in ("up", "run", "exec", "set_phone_state", "down"):  # as they were
        assert FakeLab.__dict__[method] is originals[method]
    result = sweep.check()
    assert result.errors == []
    assert result.sources == {"agent runs": 2, "lab stores": 1}
    submitted = f"lab {LAB} `phonediag portal submit` on the prov host: stderr"
    stored = f"lab {LAB} store phonediag.sqlite table run_history row 1 report (decompressed)"
    assert sorted((h.kind, h.output.split(" [")[0]) for h in result.hits) == [
        ("MQTT password (portal)", submitted),
        ("phone web admin password", stored),
    ]


def test_a_hit_fails_the_session_and_the_figures_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "secrets.json"
    monkeypatch.setenv("PHONEDIAG_SECRETS_REPORT", str(report))
    lines: list[str] = []
    terminal = SimpleNamespace(write_line=lambda text, **kw: lines.append(text))

    outputs = tmp_path / "basetemp"
    outputs.mkdir()
    (outputs / "report.html").write_text(f"<p>{API}</p>")
    (outputs / "agent.toml").write_text(f'application_secret = "{API}"\n')  # an input
    plugin = SweepPlugin(tmp_path / "no-such-store")
    plugin.watch(outputs, "basetemp files")
    plugin.sweep.add_lab(LAB)
    plugin.sweep.add_secret("OVHcloud API application secret", API, LAB)
    plugin.sweep.add_secret("phone web admin password", "4821", LAB)  # a PIN: not searched
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session, 0)  # type: ignore[arg-type]
    plugin.pytest_terminal_summary(terminal)
    assert session.exitstatus == pytest.ExitCode.TESTS_FAILED
    assert lines[0] == (
        "secrets sweep: 1 secrets of 1 labs checked in 1 outputs (0.0 MB): 1 found"
        " (1 shorter than 6 characters not searched)"
    )
    assert lines[1] == (
        f"  secret found: OVHcloud API application secret of lab {LAB} in report.html"
    )
    doc = json.loads(report.read_text())
    assert (doc["found"], doc["labs"], doc["outputs"]) == (1, 1, 1)
    assert API not in report.read_text() and all(API not in x for x in lines)

    (outputs / "report.html").write_text("<p>***</p>")
    plugin = SweepPlugin()
    plugin.watch(outputs, "basetemp files")
    plugin.sweep.add_lab(LAB)
    plugin.sweep.add_secret("OVHcloud API application secret", API, LAB)
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session, 0)  # type: ignore[arg-type]
    assert session.exitstatus == pytest.ExitCode.OK
    assert json.loads(report.read_text())["found"] == 0


def test_no_lab_no_sweep(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines: list[str] = []
    terminal = SimpleNamespace(write_line=lambda text, **kw: lines.append(text))
    plugin = SweepPlugin(tmp_path)
    session = SimpleNamespace(exitstatus=pytest.ExitCode.OK)
    plugin.pytest_sessionfinish(session, 0)  # type: ignore[arg-type]
    plugin.pytest_terminal_summary(terminal)
    assert lines == [] and session.exitstatus == pytest.ExitCode.OK  # unit tests: silent
    plugin.instrumented = True
    plugin.pytest_terminal_summary(terminal)
    assert lines == ["secrets sweep: no lab came up, nothing to check"]


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert isinstance(pytestconfig.pluginmanager.get_plugin(PLUGIN_NAME), SweepPlugin)


def test_the_sweep_reads_the_session_store_before_it_is_removed(
    pytestconfig: pytest.Config,
) -> None:
    """tests/conftest.py removes the session's store folder when the session ends: the
    sweep's hook must run before (pluggy calls the implementations last to first)."""
    impls = pytestconfig.pluginmanager.hook.pytest_sessionfinish.get_hookimpls()
    sweep = pytestconfig.pluginmanager.get_plugin(PLUGIN_NAME)
    order = [i.plugin for i in reversed(impls)]
    removal = next(i.plugin for i in impls if getattr(i.plugin, "_STORE_DIR", None))
    assert order.index(sweep) < order.index(removal)


def test_output_from_runs_outside_lab_run_reaches_the_session_s_sweep() -> None:
    """On a terminal, in tmux, from the portal's side: tests hand what they read over."""
    import secrets_sweep

    plugin = SweepPlugin()  # the newest plugin's sweep is the active one
    try:
        plugin.sweep.add_lab(LAB)
        plugin.sweep.add_secret("SIP line password", SIP, LAB)
        secrets_sweep.output("phonediag troubleshoot in tmux", f"Résumé… mot de passe {SIP}")
        assert [(h.kind, h.output) for h in plugin.sweep.check().hits] == [
            ("SIP line password", "phonediag troubleshoot in tmux")
        ]
    finally:
        secrets_sweep._ACTIVE.remove(plugin.sweep)  # the session's sweep is active again
