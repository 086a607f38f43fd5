"""The published JSON Schema of the report: real reports pass, broken ones are refused with
a message that says where and why, and the agent refuses to print or store an invalid
report while the tests run (PHONEDIAG_CHECK_SCHEMA=1, exit 70)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from agent import config, history, store
from agent.model import UNKNOWN, Device, Fact, Finding, ProbeError, Report
from agent.report import json as json_report
from agent.report import schema

EXE = str(Path(sys.executable).with_name("phonediag"))
EXPLAIN = [  # real --explain entries: no, unknown, match
    {
        "rule": "forwarding-left-on",
        "device": "10.66.0.11",
        "result": False,
        "trace": ["line.forward.unconditional eq True: False -> false"],
    },
    {
        "rule": "forwarding-left-on",
        "device": "10.66.0.13",
        "result": None,
        "trace": ["phone.forward.always eq True: unknown -> unknown"],
    },
    {"rule": "sip-alg-detected", "device": None, "result": True, "trace": ["nat.sip_alg"]},
]


def test_the_session_checks_every_report():
    assert os.environ.get("PHONEDIAG_CHECK_SCHEMA") == "1" and schema.enabled()


def test_the_schema_is_shipped_valid_and_names_its_version():
    import jsonschema

    doc = json.loads(
        resources.files("agent.report").joinpath("report-v1.schema.json").read_text("utf-8")
    )
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == schema.SCHEMA_ID and "report-v1" in doc["$id"]
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["properties"]["schema_version"] == {
        "description": doc["properties"]["schema_version"]["description"],
        "const": "1",
    }
    # DESIGN §4's top-level keys are required
    assert {"schema_version", "duration_s", "site", "devices", "findings", "errors"} <= set(
        doc["required"]
    )
    assert doc["$defs"]["severity"]["enum"] == ["critical", "warning", "info"]
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"agent.report" = [' in pyproject and "report-v1.schema.json" in pyproject


@pytest.mark.parametrize("name", ["diagnose-sip-alg", "discover"])
def test_real_reports_validate(report_doc, name):
    assert schema.validate(report_doc(name)) == []


def test_an_explained_report_validates(report_doc):
    doc = report_doc("diagnose-sip-alg")
    doc["explain"] = EXPLAIN
    assert schema.validate(doc) == []


def test_a_report_made_by_the_model_validates():
    report = Report(
        duration_s=1.23456,
        scope=["192.168.1.0/24"],
        devices=[
            Device(
                "192.168.1.20",
                "80:5e:c0:00:00:20",
                "yealink",
                "SIP-T46S",
                "66.86.0.15",
                ["sip", "arp"],
                {"sip": {"agent": "Yealink SIP-T46S"}},
                ["sip.agent"],
            ),
            Device("192.168.1.21"),  # seen, not identified: nulls everywhere
        ],
        facts=[
            Fact("site", "nat.sip_alg", True, "alg"),
            Fact("site", "nat.udp_timeout_s", UNKNOWN, "nat-lifetime", "budget 0"),
            Fact("192.168.1.20", "phone.dnd", False, "vendor.yealink"),
            Fact("line:0033972000001", "line.forward.unconditional", {"to": "06"}, "provider"),
        ],
        findings=[
            Finding("sip-alg-detected", None, "critical", "ALG", "x", ["a", "b"], "guide"),
            Finding(
                "dnd-on",
                "192.168.1.20",
                "warning",
                "DND",
                "y",
                [],
                "g",
                {"phone.dnd": True},
                "0033972000001",
            ),
            Finding("line-not-registered", None, "info", "L", "z", [], "g", line="0033972000002"),
        ],
        errors=[ProbeError("probe.stun", "no answer"), ProbeError("probe.device", "401", "x")],
        timings={"probe.stun": 1.5},
    )
    assert schema.validate(json.loads(json_report.render(report))) == []


def test_wrong_severity_missing_key_and_bad_types_are_refused(report_doc):
    doc = report_doc("diagnose-sip-alg")
    doc["findings"][0]["severity"] = "fatal"
    del doc["errors"]
    doc["duration_s"] = "3.2"
    doc["devices"][0]["found_by"] = "arp"
    doc["devices"][1]["mac"] = "00-0E-08-D2-4B-C5"
    doc["devices"][2]["vendor"] = 7
    doc["unexpected"] = 1
    problems = schema.validate(doc)
    assert problems == [
        "/: 'errors' is a required property",
        "/: Additional properties are not allowed ('unexpected' was unexpected)",
        "/devices/0/found_by: 'arp' is not of type 'array'",
        "/devices/1/mac: '00-0E-08-D2-4B-C5' does not match '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$'",
        "/devices/2/vendor: 7 is not of type 'string', 'null'",
        "/duration_s: '3.2' is not of type 'number'",
        "/findings/0/severity: 'fatal' is not one of ['critical', 'warning', 'info']",
    ]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.update(schema_version="2"), "/schema_version"),
        (lambda d: d["findings"][0].pop("title"), "/findings/0"),
        (lambda d: d["findings"][0].update(remedies="reboot"), "/findings/0/remedies"),
        (lambda d: d["findings"][0].update(device="phone"), "/findings/0/device"),
        (lambda d: d["facts"][0].update(unknown=False), "/facts/0/unknown"),
        (lambda d: d["facts"][0].pop("source"), "/facts/0"),
        (lambda d: d["devices"][0].update(evidence={"sip": "x"}), "/devices/0/evidence/sip"),
        (lambda d: d["errors"].append({"step": "x"}), "/errors/0"),
        (lambda d: d["timings"].update(x="slow"), "/timings/x"),
        (lambda d: d.update(scope=["everything"]), "/scope/0"),
        (
            lambda d: d.update(
                explain=[{"rule": "x", "device": None, "result": "yes", "trace": []}]
            ),
            "/explain/0/result",
        ),
    ],
)
def test_each_break_is_located(report_doc, change, where):
    doc = report_doc("diagnose-sip-alg")
    change(doc)
    problems = schema.validate(doc)
    assert problems and all(p.startswith(f"{where}: ") for p in problems), problems


def test_open_ended_parts_stay_open(report_doc):
    doc = report_doc("diagnose-sip-alg")
    doc["site"]["some.future.fact"] = {"nested": [1, 2]}
    doc["facts"][0]["value"] = {"any": ["json", 1, None]}
    doc["devices"][0]["evidence"]["lldp"] = {"chassis": "x", "caps": "telephone"}
    doc["findings"][0]["matched"] = {"x": [1], "y": None}
    assert schema.validate(doc) == []


def test_checking_raises_only_when_enabled(report_doc, monkeypatch):
    doc = report_doc("discover")
    doc["devices"][0]["ip"] = None
    with pytest.raises(schema.SchemaViolation, match=r"/devices/0/ip: None is not of type"):
        schema.check(doc)
    monkeypatch.setenv(schema.ENV, "0")
    schema.check(doc)  # off: nothing checked


def test_rendering_an_invalid_report_fails_while_checking():
    bad = Report(findings=[Finding("x", None, "fatal", "t", "e", [], "g")])
    with pytest.raises(schema.SchemaViolation) as e:
        json_report.render(bad)
    assert e.value.problems == [
        "/findings/0/severity: 'fatal' is not one of ['critical', 'warning', 'info']"
    ]


def test_storing_an_invalid_report_fails_while_checking(history_config, report_doc):
    cfg = config.load(history_config)
    doc = report_doc("discover")
    del doc["timings"]
    with pytest.raises(schema.SchemaViolation, match="'timings' is a required property"):
        history.record(cfg, json.dumps(doc), "discover", "fr", 0)
    assert not store.path_for(cfg.store_path).exists()  # checked before anything is written


def test_the_command_exits_70_on_an_invalid_report(history_config, report_doc):
    """A report in the history that breaks the schema (stored by an older, buggy version)
    is refused when printed: one heading line, then each problem, exit 70."""
    cfg = config.load(history_config)
    doc = report_doc("discover")
    doc["devices"][0]["found_by"] = "arp"
    with history.History(store.path_for(cfg.store_path)) as h:
        h.add(json.dumps(doc), "discover", "fr", 0)  # History.add itself does not check
    env = {**os.environ, "PHONEDIAG_CONFIG": str(history_config)}
    r = subprocess.run([EXE, "report", "show", "1", "--json"], capture_output=True, text=True,
                       env=env, timeout=60)  # fmt: skip
    assert r.returncode == 70, r.stderr
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "phonediag: internal error: the report breaks report-v1.schema.json:",
        "  /devices/0/found_by: 'arp' is not of type 'array'",
    ]
    r = subprocess.run([EXE, "report", "show", "1", "--json"], capture_output=True, text=True,
                       env={**env, "PHONEDIAG_CHECK_SCHEMA": ""}, timeout=60)  # fmt: skip
    assert r.returncode == 0 and json.loads(r.stdout)["devices"][0]["found_by"] == "arp"
