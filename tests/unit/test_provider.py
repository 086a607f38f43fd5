"""The provider side without a server: where the API keys come from, how lines are joined
to LAN phones, and which facts a line's API records give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import keyring
import pytest
from keyring.backend import KeyringBackend

from agent.config import Config
from agent.judge import fill
from agent.model import UNKNOWN, Device
from agent.provider import join, observe
from agent.provider.api import ProviderError, endpoint_name
from agent.provider.credentials import MissingKeys, resolve
from agent.provider.lines import LineView

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
UA = "Yealink SIP-T46S 66.86.0.15"


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


class DictKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        super().__init__()
        self.values = values

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.values.pop((service, username), None)


@pytest.fixture
def no_ovh_env(monkeypatch, tmp_path):
    for name in ("ENDPOINT", "APPLICATION_KEY", "APPLICATION_SECRET", "CONSUMER_KEY"):
        monkeypatch.delenv(f"OVH_{name}", raising=False)
    monkeypatch.setattr("ovh.config.CONFIG_PATH", [str(tmp_path / "none.conf")])
    previous = keyring.get_keyring()
    keyring.set_keyring(DictKeyring({}))
    yield
    keyring.set_keyring(previous)


# ---------------------------------------------------------------- credentials
def test_keys_come_from_config_first(no_ovh_env, monkeypatch):
    monkeypatch.setenv("OVH_CONSUMER_KEY", "env-ck")
    cfg = Config(
        provider_application_key="ak",
        provider_application_secret="as-secret",
        provider_consumer_key="cfg-ck",
    )
    keys = resolve(cfg)
    assert (keys.endpoint, keys.consumer_key) == ("ovh-eu", "cfg-ck")
    assert keys.origin["consumer_key"] == "config"
    assert "as-secret" not in repr(keys) and "cfg-ck" not in repr(keys)


def test_keys_from_environment_and_keyring(no_ovh_env, monkeypatch):
    monkeypatch.setenv("OVH_APPLICATION_KEY", "env-ak")
    monkeypatch.setenv("OVH_APPLICATION_SECRET", "env-as")
    keyring.set_keyring(DictKeyring({("phonediag", "ovh-consumer-key"): "ring-ck"}))
    keys = resolve(Config())
    assert (keys.application_key, keys.application_secret) == ("env-ak", "env-as")
    assert keys.consumer_key == "ring-ck"
    assert keys.origin["consumer_key"] == "keyring"


def test_missing_keys_are_named(no_ovh_env):
    with pytest.raises(MissingKeys) as err:
        resolve(Config(provider_application_key="ak"))
    assert err.value.missing == ["application_secret", "consumer_key"]


def test_secrets_are_scrubbed_from_messages(no_ovh_env):
    keys = resolve(
        Config(
            provider_application_key="ak",
            provider_application_secret="s3cret",
            provider_consumer_key="ck123",
        )
    )
    assert keys.scrub("sig s3cret for ck123") == "sig *** for ***"


def test_endpoint_must_be_a_region_or_https():
    assert endpoint_name("ovh-eu") == "ovh-eu"
    assert endpoint_name("https://api.example.test/1.0") == "https://api.example.test/1.0"
    for bad in ("http://api.example.test/1.0", "eu", "ftp://x"):
        with pytest.raises(ProviderError) as err:
            endpoint_name(bad)
        assert "https://" in str(err.value)


# ---------------------------------------------------------------- joins
def phone(ip: str, mac: str | None, agent: str | None = None) -> Device:
    d = Device(ip=ip, mac=mac)
    if agent:
        d.evidence["sip"] = {"agent": agent}
    return d


def line(sn: str, mac: str | None = None, regs: list[dict] | None = None) -> LineView:
    v = LineView("ovhtel-1", sn, registrations=regs or [])
    if mac:
        v.phone = {"macAddress": mac}
    return v


def test_lines_join_phones_by_mac_then_agent_then_account():
    devices = [
        phone("10.0.0.11", "80:5E:C0:01:02:03"),
        phone("10.0.0.12", None, UA),
        phone("10.0.0.13", None),
    ]
    lines = [
        line("1001", mac="80-5e-c0-01-02-03"),
        line("1002", regs=[{"localIp": "10.0.0.12", "userAgent": UA, "ip": "198.51.100.7"}]),
        line("1003"),
        line("1004", regs=[{"localIp": "10.0.0.12", "userAgent": "other", "ip": "x"}]),
    ]
    found = join.match(lines, devices, {"10.0.0.13": "1003@sip.ovh.net"})
    assert found == {
        "1001": ("10.0.0.11", "mac"),
        "1002": ("10.0.0.12", "user-agent+local-ip"),
        "1003": ("10.0.0.13", "sip-account"),
    }
    assert join.office_ips(lines, devices) == {"198.51.100.7"}


def test_a_registration_without_user_agent_does_not_join_a_phone_without_one():
    lines = [line("1001", regs=[{"localIp": "10.0.0.12", "userAgent": None, "ip": "x"}])]
    assert join.match(lines, [phone("10.0.0.12", None)], {}) == {}
    assert join.office_ips(lines, [phone("10.0.0.12", None)]) == set()


# ---------------------------------------------------------------- facts of a line
def facts_of(view: LineView, device: Device | None = None, office=frozenset()) -> dict:
    subject = device.ip if device else f"line:{view.service_name}"
    got = observe.line_facts(view, subject, device, set(office), NOW)
    assert {f.subject for f in got} == {subject}
    return {f.key: f.value for f in got}


def test_forward_left_on_names_its_destination_and_backup_is_not_left_on():
    view = line("1001")
    view.options = {
        "forwardUnconditional": True,
        "forwardUnconditionalNumber": "0033612345678",
        "forwardUnconditionalNature": "number",
        "forwardBusy": False,
        "forwardNoReply": False,
        "forwardBackup": True,
        "forwardBackupNumber": "0033100000000",
        "doNotDisturb": False,
        "ipRestrictions": [],
    }
    got = facts_of(view)
    assert got["line.forward.unconditional"] is True
    assert got["line.forward.unconditional_number"] == "0033612345678"
    assert got["line.forward.backup"] is True
    assert got["line.forward.to_voicemail"] is False
    assert got["line.dnd"] is False
    assert got["line.ip_restricted"] is False
    assert (got["line.number"], got["line.billing_account"]) == ("1001", "ovhtel-1")


def test_a_stored_number_without_the_forward_on_is_not_a_destination():
    view = line("1001")
    view.options = {"forwardUnconditional": False, "forwardUnconditionalNumber": "0612345678"}
    assert "line.forward.unconditional_number" not in facts_of(view)


def test_voicemail_forward_and_ip_restriction_need_the_office_ip():
    view = line("1001")
    view.options = {
        "forwardUnconditional": False,
        "forwardBusy": True,
        "forwardBusyNature": "voicemail",
        "forwardNoReply": False,
        "ipRestrictions": ["203.0.113.0/24"],
    }
    assert facts_of(view)["line.forward.to_voicemail"] is True
    assert "line.ip_restricted" not in facts_of(view)  # office IP unknown: unknown
    assert facts_of(view, office={"198.51.100.7"})["line.ip_restricted"] is True
    assert facts_of(view, office={"203.0.113.9"})["line.ip_restricted"] is False


def test_registrations_give_age_devices_and_origin():
    regs = [
        {"datetime": at(5), "ip": "198.51.100.7", "userAgent": UA, "localIp": "10.0.0.11"},
        {"datetime": at(20), "ip": "198.51.100.7", "userAgent": "Cisco/SPA504G-7.6.2c"},
        {"datetime": at(600), "ip": "192.0.2.1", "userAgent": "Zoiper"},
        {"datetime": "garbage", "ip": "192.0.2.2"},
    ]
    lan = phone("10.0.0.11", None)
    got = facts_of(line("1001", regs=regs), lan, office={"198.51.100.7"})
    assert got["line.registration_age_s"] == 300.0
    assert got["line.registration_user_agents"] == 2  # Zoiper was 10 hours ago
    assert got["line.registration_ip"] == "198.51.100.7"
    assert got["line.registered_from_other_ip"] is False
    assert facts_of(line("1001", regs=regs), lan, office={"203.0.113.9"})[
        "line.registered_from_other_ip"
    ]
    remote = facts_of(line("1001", regs=regs), office={"203.0.113.9"})
    assert remote["line.registered"] is True  # no LAN phone: the provider's view
    assert "line.registered_from_other_ip" not in remote  # elsewhere is normal for it


def test_a_lan_phone_line_leaves_registered_to_the_live_test():
    regs = [{"datetime": at(300), "ip": "198.51.100.7", "userAgent": UA}]
    got = facts_of(line("1001", regs=regs), phone("10.0.0.11", None))
    assert got["line.registration_age_s"] == 18000.0
    assert "line.registered" not in got
    stale = facts_of(line("1001", regs=regs))
    assert stale["line.registered"] is False


def test_mac_matches_compares_the_control_panel_with_the_phone():
    view = line("1001", mac="80:5e:c0:aa:bb:cc")
    assert facts_of(view, phone("10.0.0.11", "80:5E:C0:AA:BB:CC"))["line.mac_matches"] is True
    other = facts_of(view, phone("10.0.0.11", "80:5e:c0:00:00:01"))
    assert (other["line.mac_matches"], other["line.phone_mac"]) == (False, "80:5e:c0:aa:bb:cc")
    assert "line.mac_matches" not in facts_of(view, phone("10.0.0.11", None))


def test_unreadable_parts_stay_unknown():
    view = LineView("ovhtel-1", "1001")  # nothing could be read
    assert set(facts_of(view)) == {"line.number", "line.billing_account"}


# ---------------------------------------------------------------- optional text
def test_optional_segments_show_only_with_all_their_facts():
    text = "Forward[ of line {line.number}] on.[ To {line.forward.unconditional_number}.]"
    assert fill(text, {"line.number": "1001"}) == "Forward of line 1001 on."
    assert fill(text, {"line.forward.unconditional_number": "06"}) == "Forward on. To 06."
    assert fill(text, {"line.number": UNKNOWN}) == "Forward on."
    assert fill("{a} b", {}) == "? b"
