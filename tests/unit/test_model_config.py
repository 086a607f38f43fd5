import json

import pytest

from agent import config
from agent.model import UNKNOWN, Device, Fact, Finding, Report, Sighting


def test_unknown_is_not_false():
    assert UNKNOWN is type(UNKNOWN)()
    with pytest.raises(TypeError):
        bool(UNKNOWN)
    assert Fact("site", "k", UNKNOWN, "p").to_dict() == {
        "subject": "site",
        "key": "k",
        "value": None,
        "source": "p",
        "unknown": True,
    }


def test_device_merges_sightings():
    d = Device("10.0.0.5")
    d.add(Sighting("snmp", "10.0.0.5", attrs={"sysDescr": "x"}))
    d.add(Sighting("arp", "10.0.0.5", mac="80:5e:c0:00:00:01"))
    d.add(Sighting("sip", "10.0.0.5", attrs={"agent": "y"}))
    assert d.to_dict()["found_by"] == ["arp", "sip", "snmp"]
    assert d.mac == "80:5e:c0:00:00:01"
    assert d.evidence["snmp"] == {"sysDescr": "x"}


def test_report_json_shape():
    r = Report(duration_s=1.23456, scope=["10.0.0.0/24"], devices=[Device("10.0.0.5")])
    r.facts.append(Fact("site", "dns.registrar.resolves", True, "registrar"))
    r.findings.append(Finding("dns-failure", None, "critical", "t", "e", ["s"], "g"))
    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema_version"] == "1" and d["duration_s"] == 1.235
    assert d["site"] == {"dns.registrar.resolves": True}
    assert d["devices"][0]["ip"] == "10.0.0.5"
    assert set(d["findings"][0]) >= {
        "rule",
        "device",
        "severity",
        "title",
        "explanation",
        "remedies",
        "guide",
    }
    assert d["errors"] == []


def test_config_defaults_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("PHONEDIAG_CONFIG", raising=False)
    assert config.load().registrar_ports == [5060, 5962]
    f = tmp_path / "c.toml"
    f.write_text('[site]\nregistrar = "sip.example.test"\n[discovery]\ntimeout = 2\n')
    monkeypatch.setenv("PHONEDIAG_CONFIG", str(f))
    cfg = config.load()
    assert cfg.registrar == "sip.example.test" and cfg.timeout == 2.0 and cfg.source == str(f)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[site]\nregistrar = 5\n", "site.registrar must be of type str"),
        ("[site]\nbogus = 1\n", "unknown setting site.bogus"),
        ("[site\n", "invalid TOML"),
        ("[discovery]\ntimeout = -1\n", "must be positive"),
        ("[site]\nregistrar_ports = [5060, 70000]\n", "must list port numbers"),
        ("site = 3\n", "[site] must be a table"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(f)
    assert str(f) in str(e.value) and message in str(e.value)


def test_config_missing_file(tmp_path):
    with pytest.raises(config.ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_credentials_most_specific_first_and_never_printed(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        "[vendors]\ndefault_logins = true\n"
        '[[credentials]]\nusername = "site"\npassword = "s3cret-site"\n'
        '[[credentials]]\nvendor = "yealink"\nusername = "yl"\npassword = "s3cret-yl"\n'
        '[[credentials]]\ndevice = "10.0.0.5"\nusername = "dev"\npassword = "s3cret-dev"\n'
    )
    cfg = config.load(f)
    assert cfg.default_logins is True
    assert [c.username for c in cfg.logins_for("yealink", "10.0.0.5")] == ["dev", "yl", "site"]
    assert [c.username for c in cfg.logins_for("cisco", "10.0.0.6")] == ["site"]
    assert "s3cret" not in repr(cfg)


def test_bad_credentials_refused(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[[credentials]]\nuser = "x"\n')
    with pytest.raises(config.ConfigError, match="credentials #1"):
        config.load(f)


def test_the_readme_configuration_example_is_valid(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("### Configuration", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    f = tmp_path / "readme.toml"
    f.write_text(block)
    cfg = config.load(f)
    assert cfg.reflector and cfg.credentials[0].vendor == "yealink"
