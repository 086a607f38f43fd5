from agent.model import UNKNOWN, Fact
from agent.probes.device import lan_shared


def test_lan_shared_counts_other_devices_with_the_same_account():
    facts = [
        Fact("10.0.0.11", "sip.account", "1001@sip.ovh.test", "vendor.yealink"),
        Fact("10.0.0.50", "sip.account", "1001@SIP.OVH.TEST", "vendor.cisco"),
        Fact("10.0.0.12", "sip.account", "1002@sip.ovh.test", "vendor.cisco"),
        Fact("10.0.0.13", "sip.account", UNKNOWN, "vendor.gigaset"),
    ]
    got = {f.subject: (f.value, f.evidence) for f in lan_shared(facts)}
    assert got["10.0.0.11"] == (1, "1001@sip.ovh.test also on 10.0.0.50")
    assert got["10.0.0.50"][0] == 1
    assert got["10.0.0.12"] == (0, "1002@sip.ovh.test on this device only")
    assert "10.0.0.13" not in got  # unknown account: no verdict
