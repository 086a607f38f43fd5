"""The progress display: live on a terminal's standard error, silent anywhere else."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from agent import pipeline
from agent.report import progress
from agent.report.progress import LiveProgress, PlainProgress, display, expected_steps, label


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)


def test_step_labels_in_both_languages():
    assert label("discover.sip", "fr") == "Recherche SIP"
    assert label("discover.sip", "en") == "SIP sweep"
    assert label("probe.stun", "fr") == "Test NAT (STUN)"
    assert label("probe.stun", "en") == "NAT test (STUN)"
    assert label("probe.something-new", "fr") == "probe.something-new"  # shown as it is


def test_every_known_step_has_a_label():
    for step in expected_steps(diagnosis=True):
        assert label(step, "fr") != step and label(step, "en") != step, step
    assert all(s.startswith("discover.") for s in expected_steps(diagnosis=False))


def drive(tell, steps: list[tuple[str, str]]) -> None:
    for event, step in steps:
        tell(event, step)


def live_output(lang: str, events: list[tuple[str, str]]) -> tuple[str, LiveProgress]:
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=140, color_system=None)
    live = LiveProgress(console, lang, expected_steps(diagnosis=True))
    live.progress.live.auto_refresh = False  # frames only when asked: a stable test
    live.start()
    drive(live, events)
    live.progress.refresh()
    text = file.getvalue()
    live.stop()
    return text, live


def test_live_display_shows_phase_bar_and_running_steps_in_french():
    text, _live = live_output(
        "fr",
        [
            ("start", "discover.arp.sweep"),
            ("start", "discover.sip"),
            ("start", "discover.snmp"),
            ("done", "discover.arp.sweep"),
        ],
    )
    assert "Recherche des téléphones" in text
    assert "1/6" in text
    assert "Recherche SIP, Recherche SNMP" in text
    assert "Vérifications" not in text  # no probe has started yet


def test_live_display_moves_to_the_checks_in_english():
    discovery = expected_steps(False)
    events = [(e, s) for s in discovery for e in ("start", "done")]
    events += [("start", "probe.stun"), ("failed", "probe.dns"), ("start", "probe.zzz")]
    text, live = live_output("en", events)
    assert "Finding phones" in text and "6/6" in text
    assert "Checks" in text
    assert "1 failed — NAT test (STUN), probe.zzz" in text
    # an unknown step counts in its phase's total
    assert live.steps.total("probe") == len(expected_steps(True)) - len(discovery) + 1


def test_a_step_told_twice_counts_once():
    _text, live = live_output(
        "en", [("start", "discover.sip"), ("done", "discover.sip"), ("failed", "discover.sip")]
    )
    assert live.steps.done("discover") == 1
    assert live.steps.failed == {}


def test_display_is_silent_off_a_terminal():
    stream = io.StringIO()
    with display("fr", diagnosis=True, stream=stream) as tell:
        assert tell is None
    assert stream.getvalue() == ""


def test_display_is_silent_with_json_even_on_a_terminal():
    stream = Tty()
    with display("fr", diagnosis=True, as_json=True, verbose=True, stream=stream) as tell:
        assert tell is None
    assert stream.getvalue() == ""


def test_no_color_means_no_live_display(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Tty()
    with display("en", diagnosis=False, stream=stream) as tell:
        assert tell is None
    assert stream.getvalue() == ""


def test_dumb_terminal_means_no_live_display(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    with display("en", diagnosis=False, stream=Tty()) as tell:
        assert tell is None


def test_verbose_off_a_terminal_says_one_line_per_phase():
    stream = io.StringIO()
    with display("en", diagnosis=True, verbose=True, stream=stream) as tell:
        assert isinstance(tell, PlainProgress)
        for step in expected_steps(True):
            tell("start", step)
            tell("done", step)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("phonediag: Finding phones: ARP sweep, SIP sweep")
    assert lines[1].startswith("phonediag: Checks: Identification, Phones' own state")
    fr = io.StringIO()
    with display("fr", diagnosis=False, verbose=True, stream=fr) as tell:
        tell("start", "discover.sip")
    assert fr.getvalue().startswith("phonediag : Recherche des téléphones : Balayage ARP")


def test_terminal_gets_the_live_display_and_it_is_taken_down():
    stream = Tty()
    with display("en", diagnosis=False, stream=stream) as tell:
        assert isinstance(tell, LiveProgress)
        tell("start", "discover.sip")
        tell.progress.refresh()
    assert "SIP sweep" in stream.getvalue()
    assert not tell.progress.live.is_started


def test_the_display_is_taken_down_when_the_run_fails():
    stream = Tty()
    with pytest.raises(KeyboardInterrupt), display("en", diagnosis=False, stream=stream) as tell:
        raise KeyboardInterrupt
    assert not tell.progress.live.is_started


def test_a_display_that_cannot_start_gives_no_callback(monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("no terminal after all")

    monkeypatch.setattr(progress.LiveProgress, "start", broken)
    with display("en", diagnosis=False, stream=Tty()) as tell:
        assert tell is None


# ---------------------------------------------------------------- with the pipeline
def test_the_pipeline_tells_done_or_failed_once_per_step_even_side_by_side():
    events: list[tuple[str, str]] = []

    async def fail() -> list:
        raise OSError("boom")

    async def slow_ok() -> list:
        await asyncio.sleep(0.05)
        return [1]

    async def main():
        run = pipeline.Runner(5.0, lambda e, s: events.append((e, s)))
        return await asyncio.gather(
            run.step("probe.a", fail(), 1.0, []), run.step("probe.b", slow_ok(), 1.0, [])
        )

    assert asyncio.run(main()) == [[], [1]]
    assert sorted(events) == [
        ("done", "probe.b"),
        ("failed", "probe.a"),
        ("start", "probe.a"),
        ("start", "probe.b"),
    ]


def test_a_broken_display_never_breaks_the_run():
    def broken(_event: str, _step: str) -> None:
        raise ValueError("display gone")

    async def main():
        run = pipeline.Runner(5.0, broken)
        first = await run.step("probe.a", asyncio.sleep(0, result=1), 1.0, 0)
        second = await run.step("probe.b", asyncio.sleep(0, result=2), 1.0, 0)
        return first, second, run.errors

    assert asyncio.run(main()) == (1, 2, [])


def test_running_steps_fit_on_one_line_of_a_narrow_terminal():
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=80, color_system=None)
    live = LiveProgress(console, "fr", expected_steps(diagnosis=True))
    live.progress.live.auto_refresh = False
    live.start()
    for step in expected_steps(diagnosis=True)[6:]:
        live("start", step)
    live.progress.refresh()
    frame = file.getvalue().split("\r")[-2]  # the last full frame before stop
    live.stop()
    lines = [x for x in file.getvalue().replace("\r", "\n").splitlines() if "Vérif" in x]
    assert lines and all(len(x.strip()) <= 80 for x in lines), lines
    assert "Vérifications" in "".join(lines), frame
