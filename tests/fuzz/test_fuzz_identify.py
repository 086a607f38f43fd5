"""Identification (agent/identify.py, agent/probes/firmware.py): the evidence discovery
gathered is text any device chose (User-Agents, sysDescr, TXT records, LLDP). Matching
it against the vendor files' patterns gives a vendor or none, quickly (no pattern may
backtrack for long on a hostile string), and firmware versions always compare."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent import identify
from agent.model import Device
from agent.probes import firmware
from tests.fuzz.strategies import bounded, hostile_text, mutated_text

FIELDS = sorted(
    {m.field for v in identify.vendors() for m in v.matchers}
    | {m.field for m in identify.exclusions()}
    | set(identify.GENERIC_MODEL + identify.GENERIC_FIRMWARE)
    | {"pnp.vendor", "sip.agent", "pnp.agent"}
)
AGENTS = (
    "Yealink SIP-T46S 66.86.0.15", "Cisco/SPA504G-7.6.2c", "Gigaset C530 IP/42.245.00.000",
    "PolycomVVX-VVX_450-UA/6.4.0.1", "Grandstream HT802 1.0.43.11", "snomD785/10.1.54.13",
    "Fanvil V65 2.12.8.2", "Linux HT8XX 3.4.20-rt31-dvf-v1.2.6.1-rc2 #577 PREEMPT armv5tejl",
)  # fmt: skip
values = st.one_of(st.sampled_from(AGENTS), mutated_text(st.sampled_from(AGENTS)), hostile_text)


@st.composite
def devices(draw: st.DrawFn) -> Device:
    device = Device("10.0.0.5", mac=draw(st.none() | st.binary(min_size=6, max_size=6).map(
        lambda b: b.hex(":"))))  # fmt: skip
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6)):
        method, _, attr = name.partition(".")
        device.evidence.setdefault(method, {})[attr] = draw(values)
    return device


@given(devices())
def test_identify(device: Device) -> None:
    identify.identify(device)
    assert device.vendor is None or isinstance(device.vendor, str)
    identify.is_phone(device)
    identify.family(device)
    firmware.verdict(device)


# A firmware version comes from evidence discovery keeps, 512 characters at most.
versions = st.one_of(hostile_text, st.from_regex(r"[0-9a-z.\-_ ]{0,40}", fullmatch=True))


@given(versions.map(lambda v: v[:512]), versions.map(lambda v: v[:512]))
def test_versions_always_compare(a: str, b: str) -> None:
    assert isinstance(firmware.version_key(a) < firmware.version_key(b), bool)


def test_hostile_evidence_matches_quickly() -> None:
    """Every pattern of every vendor file against the strings that make a backtracking
    regex slow (long runs of what it repeats, ending where it fails), at the longest a
    sighting keeps (512 characters)."""
    runs = ["a" * 512, "1." * 256, " " * 511 + "!", "T4" * 256, "-/" * 256, "0" * 511 + "x"]
    device = Device("10.0.0.5")
    for name in FIELDS:
        method, _, attr = name.partition(".")
        device.evidence.setdefault(method, {})[attr] = ""

    def run() -> None:
        for text in runs:
            for attrs in device.evidence.values():
                for attr in attrs:
                    attrs[attr] = text
            identify.identify(device)

    bounded(run, seconds=0.5)


def test_evidence_longer_than_a_sighting_keeps_is_read_in_its_first_512_characters() -> None:
    """Nightly fuzz run: identify trusted every method to cut its values at 512 characters;
    a 50 KB User-Agent took 24 s (quadratic patterns), 200 KB six minutes. The matchers now
    read the first 512 characters themselves, and still name the phone from them."""
    agent = "Yealink SIP-T46S 66.86.0.15 " + "A" * 200_000
    device = Device("10.0.0.5", evidence={"pnp": {"agent": agent}, "lldp": {"caps": "x" * 99_999}})
    bounded(identify.identify, device, seconds=0.5)
    assert (device.vendor, device.model) == ("yealink", "SIP-T46S")
