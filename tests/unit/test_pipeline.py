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


async def test_stop_ends_running_steps_at_once_and_skips_the_rest():
    run = pipeline.Runner(deadline=60)
    loop = asyncio.get_running_loop()

    async def listening():
        await asyncio.sleep(30)

    async def quick():
        return ["seen"]

    first = await run.step("discover.sip", quick(), 5, [])
    start = loop.time()
    loop.call_later(0.2, run.stop, "SIGTERM")
    results = await asyncio.gather(
        run.step("discover.mdns", listening(), 30, []),
        run.step("discover.pnp", listening(), 30, []),
    )
    later = await run.step("probe.stun", quick(), 5, [])
    assert loop.time() - start < 5
    assert first == ["seen"] and results == [[], []] and later == []
    said = [(e.step, e.reason) for e in run.errors]
    assert said[0] == ("run", "interrupted (SIGTERM): partial report")
    assert sorted(said[1:]) == [  # the steps end in no set order
        ("discover.mdns", "interrupted (SIGTERM)"),
        ("discover.pnp", "interrupted (SIGTERM)"),
    ]
    assert "probe.stun" not in run.timings  # skipped, not run
    run.stop("SIGINT")  # a second signal changes nothing
    assert len(run.errors) == 3


def test_the_deadline_counts_from_the_start_and_keeps_a_tail_for_the_report():
    import time

    began = time.monotonic() - 5  # the command started 5 s ago (imports, set-up)
    assert 4.4 < pipeline.Runner(deadline=10, started=began).remaining() <= 4.5  # 10-5-0.5
    assert 3.5 < pipeline.Runner(deadline=4).remaining() <= 3.6  # a tenth of 4 s


def test_interrupted_reads_the_signal_back():
    from agent.model import ProbeError, Report

    assert pipeline.interrupted(Report()) is None
    report = Report(errors=[ProbeError("run", "interrupted (SIGINT): partial report")])
    assert pipeline.interrupted(report) == "SIGINT"
    assert pipeline.interrupted(Report(errors=[ProbeError("probe.x", "interrupted (X)")])) is None


async def test_a_step_is_not_started_once_the_time_is_up():
    import time

    ran = []

    async def work():
        ran.append(True)  # a probe's first, synchronous part: must not run
        return ["late"]

    run = pipeline.Runner(deadline=10, started=time.monotonic() - 11)
    assert await run.step("probe.provider", work(), 5, []) == []
    assert ran == [] and "probe.provider" not in run.timings
    assert [(e.step, e.reason) for e in run.errors] == [
        ("probe.provider", "deadline of the run reached")
    ]


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
