import ipaddress

import pytest

from agent import platform, scope


def fake(monkeypatch, *addrs):
    monkeypatch.setattr(
        platform,
        "ipv4_addresses",
        lambda: [platform.Address(i, ip, p, None) for i, ip, p in addrs],
    )


def test_directly_connected_private_subnets(monkeypatch):
    fake(monkeypatch, ("lo", "127.0.0.1", 8), ("eth0", "10.66.0.100", 24))
    nets, refused = scope.build()
    assert [str(n.network) for n in nets] == ["10.66.0.0/24"]
    assert "10.66.0.100" not in nets[0].hosts() and len(nets[0].hosts()) == 253
    assert refused == []


def test_public_range_refused(monkeypatch):
    fake(monkeypatch, ("eth0", "10.66.0.100", 24), ("wan", "203.0.113.5", 24))
    nets, refused = scope.build()
    assert [str(n.network) for n in nets] == ["10.66.0.0/24"]
    assert [str(r) for r in refused] == ["203.0.113.0/24 is not a private network"]
    assert refused[0].text("fr") == "203.0.113.0/24 n'est pas un réseau privé"


def test_large_network_needs_widen(monkeypatch):
    fake(monkeypatch, ("eth0", "10.1.2.3", 16))
    with pytest.raises(scope.ScopeError, match="larger than /22"):
        scope.build()
    nets, _ = scope.build(widen=True)
    assert nets[0].network == ipaddress.ip_network("10.1.0.0/16")


def test_loopback_only_is_no_scope(monkeypatch):
    fake(monkeypatch, ("lo", "127.0.0.1", 8))
    with pytest.raises(scope.ScopeError, match="no network interface"):
        scope.build()


def test_explicit_network_must_be_connected(monkeypatch):
    fake(monkeypatch, ("eth0", "192.168.1.20", 24))
    nets, _ = scope.build(["192.168.1.0/26"])
    assert str(nets[0].network) == "192.168.1.0/26"
    with pytest.raises(scope.ScopeError, match="not directly connected"):
        scope.build(["172.16.0.0/24"])
    with pytest.raises(scope.ScopeError, match="not a network"):
        scope.build(["banana"])


def test_shared_address_space_is_private():
    assert scope.is_allowed(ipaddress.ip_network("100.64.66.0/24"))
    assert not scope.is_allowed(ipaddress.ip_network("8.8.8.0/24"))
    assert not scope.is_allowed(ipaddress.ip_network("169.254.0.0/16"))


def test_mac_normalisation():
    assert platform.normalise_mac("0:E:8:a1:B2:c3") == "00:0e:08:a1:b2:c3"
    assert platform.normalise_mac("80-5E-C0-01-02-03") == "80:5e:c0:01:02:03"
    assert platform.normalise_mac("805ec0010203") == "80:5e:c0:01:02:03"
    with pytest.raises(ValueError):
        platform.normalise_mac("not a mac")
