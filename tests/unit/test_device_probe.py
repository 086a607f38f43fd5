import asyncio
from typing import Any

import pytest

from agent import pipeline
from agent.config import Config
from agent.model import UNKNOWN, Device, Fact
from agent.probes import Context, device
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


@pytest.mark.parametrize("timeout", [0.1, 1.0, 1.5, 3.0, 10.0])
def test_the_device_step_outlasts_any_one_phone(timeout):
    """The step's timeout (as the pipeline computes it) is longer than one phone's: with the
    default timeout (1.5 s) both were 11 s, and the step's, started first, won: one phone
    whose web server never finished cost every phone's facts."""
    cfg = Config(timeout=timeout)
    step = pipeline._budget(device, cfg, 4 * cfg.timeout + 5)
    assert step > device.phone_timeout(cfg)


class Hanging:
    """An adapter whose phone at .99 never finishes answering (a trickling web server)."""

    vendor = "yealink"

    async def read(self, ctx: Any) -> dict[str, Any]:
        if ctx.device.ip.endswith(".99"):
            await asyncio.sleep(3600)
        return {"sip.registered": True}


async def test_a_phone_too_slow_costs_its_own_facts_only(monkeypatch):
    monkeypatch.setattr(device.registry, "adapter_for", lambda vendor: Hanging())
    cfg = Config(timeout=0.1)  # one phone: 2.6 s
    devices = [Device(ip="10.0.0.11", vendor="yealink"), Device(ip="10.0.0.99", vendor="yealink")]
    ctx = Context(cfg, [], devices)
    run = pipeline.Runner(60)
    budget = pipeline._budget(device, cfg, 4 * cfg.timeout + 5)
    facts = await run.step("probe.device", device.probe(ctx), budget, [])
    assert run.errors == []
    assert [(e.subject, e.reason) for e in ctx.errors] == [
        ("10.0.0.99", "the phone's interface is too slow")
    ]
    registered = {f.subject: f.value for f in facts if f.key == "sip.registered"}
    assert registered == {"10.0.0.11": True, "10.0.0.99": UNKNOWN}


async def test_loading_the_adapters_does_not_hold_the_run(monkeypatch):
    """The vendor adapters' modules are imported in a worker thread: a step whose time is up
    ends then, not when the imports are done (they ran in the event loop before)."""
    import time

    def slow_adapter_for(vendor):
        time.sleep(1.0)
        return Hanging()

    monkeypatch.setattr(device.registry, "adapter_for", slow_adapter_for)
    ctx = Context(Config(), [], [Device(ip="10.0.0.11", vendor="yealink")])
    run = pipeline.Runner(60)
    start = time.monotonic()
    facts = await run.step("probe.device", device.probe(ctx), 0.2, [])
    assert time.monotonic() - start < 0.6
    assert facts == [] and [e.reason for e in run.errors] == ["no result within 0.2 s"]
