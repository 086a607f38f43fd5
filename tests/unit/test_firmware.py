import pytest

from agent.model import UNKNOWN, Device
from agent.probes import firmware


@pytest.mark.parametrize(
    "a, b",
    [("66.86.0.15", "66.86.0.160"), ("7.6.2b", "7.6.2c"), ("2.20.0", "2.26.0"), ("1.4", "1.4.1")],
)
def test_version_order(a, b):
    assert firmware.version_key(a) < firmware.version_key(b)


def test_catalog_entries_have_sources():
    assert firmware.catalog()
    assert all(e.source and e.minimum for e in firmware.catalog())


def dev(model, fw, vendor="gigaset"):
    return Device("10.0.0.7", vendor=vendor, model=model, firmware=fw)


def test_outdated_current_and_unknown():
    assert firmware.verdict(dev("N670 IP PRO", "2.20.0")).value is True
    assert firmware.verdict(dev("N670 IP PRO", "2.26.0")).value is False
    assert firmware.verdict(dev("N670", "2.30.1")).value is False
    # No catalog entry, or no version: no verdict, never a guess.
    assert firmware.verdict(dev("C530 IP", "42.245.00.000")).value is UNKNOWN
    assert firmware.verdict(dev("N670 IP PRO", None)).value is UNKNOWN
    assert "no catalog entry" in firmware.verdict(dev("C530 IP", "1.0")).evidence
