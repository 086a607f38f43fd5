"""The DNS probe with an injected resolver (no real DNS) and the DNS-server helper."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from agent import catalog
from agent.config import Config
from agent.model import UNKNOWN
from agent.probes import Context, dns

SERVERS = ["192.168.1.1"]


def fake_resolver(answers: dict[str, object], asked: list[str] | None = None):
    """host -> (addresses, ms), or an exception to raise; unknown hosts do not exist."""

    async def resolve(host: str, timeout: float) -> tuple[list[str], float]:
        if asked is not None:
            asked.append(host)
        answer = answers.get(host, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]

    return resolve


def all_resolve(ms: float = 12.0) -> dict[str, object]:
    hosts = ["sip.ovh.net", *dns.PROVISIONING_HOSTS]
    return {h: (["91.121.129.20"], ms) for h in hosts}


def default_config() -> Config:
    """Config() with the probe's default hosts (whether or not Config has the setting yet)."""
    cfg = Config()
    cfg.provisioning_hosts = list(dns.PROVISIONING_HOSTS)  # type: ignore[attr-defined]
    return cfg


def ctx(config=None) -> Context:
    return Context(config=config or default_config(), networks=[], devices=[])


async def run(answers, config=None, servers=lambda: SERVERS, asked=None):
    facts = await dns.probe(ctx(config), resolver=fake_resolver(answers, asked), servers=servers)
    return {f.key: f for f in facts}


async def test_every_host_resolves():
    facts = await run(all_resolve())
    f = facts["dns.provisioning.resolves"]
    assert f.value is True
    assert f.evidence.startswith("6/6 resolved")
    assert "gigaset.prov.voip.ovh.net 12 ms" in f.evidence and "pb.voip.ovh.net" in f.evidence
    assert facts["dns.registrar.ms"].value == 12.0
    assert facts["dns.servers"].value == SERVERS


async def test_failures_are_named_with_their_reason():
    answers = all_resolve()
    del answers["lk.prov.voip.ovh.net"]
    answers["th.prov.voip.ovh.net"] = TimeoutError()
    f = (await run(answers))["dns.provisioning.resolves"]
    assert f.value is False
    assert f.evidence.startswith("4/6 resolved; failed: ")
    assert "lk.prov.voip.ovh.net: Name or service not known" in f.evidence
    assert "th.prov.voip.ovh.net: no answer within 3 s" in f.evidence
    assert "cisco.prov.voip.ovh.net 12 ms" in f.evidence


async def test_empty_answer_is_a_failure():
    answers = all_resolve()
    answers["pb.voip.ovh.net"] = ([], 3.0)
    f = (await run(answers))["dns.provisioning.resolves"]
    assert f.value is False and "pb.voip.ovh.net: no address" in f.evidence


async def test_provisioning_is_tested_when_the_registrar_does_not_resolve():
    answers = all_resolve()
    del answers["sip.ovh.net"]
    asked: list[str] = []
    facts = await run(answers, asked=asked)
    assert set(dns.PROVISIONING_HOSTS) <= set(asked)
    assert facts["dns.provisioning.resolves"].value is True
    reg = facts["dns.registrar.ms"]
    assert reg.value is UNKNOWN and reg.evidence == "sip.ovh.net: Name or service not known"


async def test_configured_hosts_replace_the_default():
    asked: list[str] = []
    cfg = Config(registrar="sip.example.test")
    cfg.provisioning_hosts = ["prov.example.test", " prov.example.test ", ""]  # type: ignore[attr-defined]
    answers = {"sip.example.test": (["192.0.2.1"], 40.04), "prov.example.test": (["192.0.2.2"], 5)}
    facts = await run(answers, config=cfg, asked=asked)
    assert sorted(asked) == ["prov.example.test", "sip.example.test"]
    assert facts["dns.provisioning.resolves"].value is True
    assert facts["dns.registrar.ms"].value == 40.0


async def test_default_hosts_when_the_config_has_no_setting():
    asked: list[str] = []
    cfg = SimpleNamespace(registrar="sip.ovh.net", timeout=1.0)
    await run(all_resolve(), config=cfg, asked=asked)
    assert sorted(asked) == sorted(["sip.ovh.net", *dns.PROVISIONING_HOSTS])


async def test_no_provisioning_hosts_is_unknown():
    cfg = Config()
    cfg.provisioning_hosts = []  # type: ignore[attr-defined]
    f = (await run(all_resolve(), config=cfg))["dns.provisioning.resolves"]
    assert f.value is UNKNOWN and f.evidence == "no provisioning hosts set"


async def test_unreadable_dns_servers_are_unknown():
    f = (await run(all_resolve(), servers=list))["dns.servers"]
    assert f.value is UNKNOWN and "not readable" in f.evidence


async def test_facts_are_in_the_catalogue_with_their_types():
    types = {"bool": bool, "float": float, "list": list}
    for f in (await run(all_resolve())).values():
        spec = catalog.lookup(f.key)
        assert spec is not None and spec.subject == "site", f.key
        assert isinstance(f.value, types[spec.type]), f.key


def test_parse_resolv_conf():
    text = (
        "# generated\nsearch lan\nnameserver 192.168.1.1\n  nameserver fe80::1%eth0\n"
        "; nameserver 10.0.0.1\nnameserver 192.168.1.1\noptions edns0\nnameserver\n"
    )
    assert dns.parse_resolv_conf(text) == ["192.168.1.1", "fe80::1"]


def test_dns_servers_from_resolv_conf(tmp_path, monkeypatch):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.1.1.1\nnameserver 10.1.1.2\n")
    assert dns.dns_servers("linux", conf) == ["10.1.1.1", "10.1.1.2"]
    assert dns.dns_servers("darwin", conf) == ["10.1.1.1", "10.1.1.2"]
    assert dns.dns_servers("linux", tmp_path / "missing") == []


def test_dns_servers_behind_systemd_resolved(tmp_path, monkeypatch):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstream = tmp_path / "upstream.conf"
    monkeypatch.setattr(dns, "_SYSTEMD_UPSTREAM", upstream)
    assert dns.dns_servers("linux", conf) == ["127.0.0.53"]  # no upstream file: the stub
    upstream.write_text("nameserver 192.168.1.254\n")
    assert dns.dns_servers("linux", conf) == ["192.168.1.254"]


def test_dns_servers_on_windows_without_winreg_is_empty():
    assert dns.dns_servers("win32") == []
