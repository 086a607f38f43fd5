"""The runner: a step that hangs, fails or outlives the deadline becomes an error entry."""

import asyncio

from agent import pipeline
from agent.model import Sighting


async def test_step_timeout_and_crash_become_errors():
    run = pipeline.Runner(deadline=10)

    async def hang():
        await asyncio.sleep(30)

    async def boom():
        raise ValueError("garbage from a device")

    async def fine():
        return ["ok"]

    results = await asyncio.gather(
        run.step("probe.hang", hang(), 0.2, []),
        run.step("probe.boom", boom(), 5, []),
        run.step("probe.fine", fine(), 5, []),
    )
    assert results == [[], [], ["ok"]]
    errors = {e.step: e.reason for e in run.errors}
    assert errors == {
        "probe.hang": "no result within 0.2 s",
        "probe.boom": "ValueError: garbage from a device",
    }
    assert set(run.timings) == {"probe.hang", "probe.boom", "probe.fine"}


async def test_deadline_bounds_every_step():
    run = pipeline.Runner(deadline=0.3)

    async def slow():
        await asyncio.sleep(30)

    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(run.step("a", slow(), 60, None), run.step("b", slow(), 60, None))
    assert loop.time() - start < 5
    assert [e.reason for e in run.errors] == ["deadline of the run reached"] * 2


def test_merge_one_device_per_ip_sorted():
    devices = pipeline.merge(
        [
            Sighting("sip", "10.0.0.20", attrs={"agent": "x"}),
            Sighting("arp", "10.0.0.3", mac="80:5e:c0:00:00:03"),
            Sighting("arp", "10.0.0.20", mac="7c:2f:80:00:00:20"),
        ]
    )
    assert [d.ip for d in devices] == ["10.0.0.3", "10.0.0.20"]
    assert devices[1].found_by == ["sip", "arp"] and devices[1].mac == "7c:2f:80:00:00:20"
