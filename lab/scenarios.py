"""The lab's scenarios: the healthy office, and the healthy office plus exactly one fault."""

from __future__ import annotations

from dataclasses import dataclass

# nftables rulesets loaded in the router namespace.
NAT_RULES = """
table ip nat {
  chain post { type nat hook postrouting priority srcnat; oifname "wan0" masquerade; }
}
"""

# The kernel's real SIP ALG (nf_conntrack_sip + nf_nat_sip): loaded before the phones register,
# because the helper is attached to new conntracks only.
SIP_ALG_RULES = """
table ip alg {
  ct helper sip5060 { type "sip" protocol udp; l3proto ip; }
  chain pre {
    type filter hook prerouting priority filter;
    iifname "lan0" udp dport 5060 ct helper set "sip5060";
  }
}
"""

# An ISP that drops SIP's well-known port towards the internet; 5962 stays open.
BLOCK_5060_RULES = """
table ip isp {
  chain block_sip { type filter hook forward priority filter; oifname "wan0" udp dport 5060 drop; }
}
"""


@dataclass(frozen=True)
class Scenario:
    """One office set-up."""

    name: str
    description: str
    available: bool = True
    router_rules: str = ""  # extra nftables ruleset for the router, on top of NAT_RULES
    phones_register: bool = True  # whether `up` waits for the phones' registrations


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "a working office: the provider handles NAT, every phone registered"),
        Scenario(
            "sip-alg",
            "the router's SIP ALG (kernel conntrack helper) rewrites the phones' SIP messages",
            router_rules=SIP_ALG_RULES,
        ),
        Scenario(
            "port-5060-blocked",
            "the ISP drops outgoing UDP to port 5060 (5962 open): phones cannot register",
            router_rules=BLOCK_5060_RULES,
            phones_register=False,
        ),
        Scenario("forwarding-left-on", "a line forwards every call away", available=False),
        Scenario("dnd-on", "do-not-disturb is on for a line", available=False),
        Scenario("wrong-password", "a phone has a wrong SIP password", available=False),
        Scenario("short-nat-timeout", "the router forgets UDP mappings quickly", available=False),
        Scenario("outdated-firmware", "a phone runs an old firmware", available=False),
        Scenario("dns-broken", "the LAN's DNS does not resolve the registrar", available=False),
        Scenario("duplicate-registration", "one line registered by two phones", available=False),
        Scenario("fleet", "hundreds of lightweight phones (--phones N)", available=False),
    )
}


class ScenarioError(ValueError):
    """Unknown or not-yet-available scenario."""


def get(name: str) -> Scenario:
    """Return the scenario ``name`` or raise ScenarioError with a one-line reason."""
    ready = ", ".join(s.name for s in SCENARIOS.values() if s.available)
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ScenarioError(f"unknown scenario {name!r}; valid: {ready}")
    if not scenario.available:
        raise ScenarioError(f"scenario {name!r} is not available yet; available: {ready}")
    return scenario
