"""What the run is doing while it runs: the pipeline's steps, shown on standard error.

On a terminal (standard error is a TTY, no ``NO_COLOR``, not ``--json``): a live display
with one bar per phase (finding the phones, then the checks), the steps done out of
the steps known, and the names of the steps running now, in French or English. It is
transient: once the run ends only the report remains, and standard output carries
nothing but the report, so ``phonediag diagnose > report.txt`` is still clean.

Anywhere else (a log, a pipe, ``NO_COLOR``, a screen reader): nothing, or with
``--verbose`` one plain line when each phase starts.

The display is told of each step by the pipeline's callback (``agent.pipeline.Progress``):
("start" | "done" | "failed", "discover.sip"). It does little work per call (a dict
update) and redraws from rich's own thread at a few frames per second; if anything in
it fails, the pipeline drops the callback and the run goes on.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from agent.i18n import MESSAGES, t

Progress = Callable[[str, str], None]  # as agent.pipeline.Progress

PHASES = ("discover", "probe")
MAX_SHOWN = 3  # running steps named at once; more are counted as "+N"


def label(step: str, lang: str) -> str:
    """The short name of a pipeline step (``discover.sip`` -> « Recherche SIP »); an
    unknown step shows as it is."""
    key = f"step.{step}"
    return t(key, lang) if key in MESSAGES else step


def phase_of(step: str) -> str:
    return step.split(".", 1)[0]


def phase_label(phase: str, lang: str) -> str:
    key = f"progress.phase.{phase}"
    return t(key, lang) if key in MESSAGES else phase


def expected_steps(diagnosis: bool) -> list[str]:
    """The steps the pipeline is known to run, in order (the bars' totals). A step not
    listed here still shows: its phase's total grows when it starts."""
    from agent import discovery

    steps = [
        "discover.arp.sweep",
        *(f"discover.{name}" for name in discovery.methods()),
        "discover.arp",
    ]
    if diagnosis:
        from agent import probes

        steps += [f"probe.{name}" for name in probes.site_probes()]
    return steps


def interactive(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal a live display may draw on."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed or not a real file
        return False


class _Steps:
    """The bookkeeping both displays share: per phase, the steps known, running, done."""

    def __init__(self, expected: list[str]) -> None:
        self.known: dict[str, list[str]] = {}
        for step in expected:
            self.known.setdefault(phase_of(step), []).append(step)
        self.running: dict[str, list[str]] = {}
        self.finished: set[str] = set()
        self.failed: dict[str, int] = {}

    def total(self, phase: str) -> int:
        return len(self.known.get(phase, []))

    def done(self, phase: str) -> int:
        return sum(1 for s in self.finished if phase_of(s) == phase)

    def tell(self, event: str, step: str) -> str:
        """Record one event; returns the step's phase."""
        phase = phase_of(step)
        known = self.known.setdefault(phase, [])
        if step not in known:
            known.append(step)
        running = self.running.setdefault(phase, [])
        if event == "start":
            if step not in running:
                running.append(step)
            self.finished.discard(step)
        elif event in ("done", "failed"):
            if step in running:
                running.remove(step)
            if step not in self.finished:
                self.finished.add(step)
                if event == "failed":
                    self.failed[phase] = self.failed.get(phase, 0) + 1
        return phase

    def now(self, phase: str, lang: str) -> str:
        running = self.running.get(phase, [])
        names = [label(s, lang) for s in running[:MAX_SHOWN]]
        if len(running) > MAX_SHOWN:
            names.append(f"+{len(running) - MAX_SHOWN}")
        text = ", ".join(names)
        failed = self.failed.get(phase, 0)
        if failed:
            why = t("progress.failed", lang, n=failed)
            text = f"{why} — {text}" if text else why  # first: never cut off
        return text


class LiveProgress:
    """The terminal display: a rich Progress on its own console (standard error)."""

    def __init__(self, console, lang: str, expected: list[str]) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.lang = lang
        self.steps = _Steps(expected)
        self.tasks: dict[str, int] = {}
        wide = console.width >= 100
        # what is left for the running steps' names once the rest is drawn: one line each
        self.room = max(12, console.width - (70 if wide else 60))
        self.progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20 if wide else 10),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[now]}", markup=False),
            console=console,
            transient=True,
            refresh_per_second=8,
            # standard output is the report: never pull it into this display
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def _task(self, phase: str) -> int:
        task = self.tasks.get(phase)
        if task is None:
            for other in self.tasks.values():  # a new phase: the earlier ones are over
                self.progress.update(other, now="")
            task = self.progress.add_task(
                phase_label(phase, self.lang), total=max(self.steps.total(phase), 1), now=""
            )
            self.tasks[phase] = task
        return task

    def __call__(self, event: str, step: str) -> None:
        phase = self.steps.tell(event, step)
        task = self._task(phase)
        self.progress.update(
            task,
            total=max(self.steps.total(phase), 1),
            completed=self.steps.done(phase),
            now=_cut(self.steps.now(phase, self.lang), self.room),
        )


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "…"


class PlainProgress:
    """``--verbose`` without a terminal: one line on standard error when a phase starts."""

    def __init__(self, stream: TextIO, lang: str, expected: list[str]) -> None:
        self.stream, self.lang = stream, lang
        self.steps = _Steps(expected)
        self.said: set[str] = set()

    def __call__(self, event: str, step: str) -> None:
        phase = self.steps.tell(event, step)
        if phase in self.said:
            return
        self.said.add(phase)
        steps = ", ".join(label(s, self.lang) for s in self.steps.known.get(phase, []))
        line = t("progress.plain", self.lang, phase=phase_label(phase, self.lang), steps=steps)
        self.stream.write(line + "\n")
        self.stream.flush()


@contextlib.contextmanager
def display(
    lang: str,
    *,
    diagnosis: bool,
    as_json: bool = False,
    verbose: bool = False,
    stream: TextIO | None = None,
    console=None,
) -> Iterator[Progress | None]:
    """The pipeline's progress callback for one command, or None for no display.

    ``stream`` is where it goes (standard error); ``console`` a rich Console to draw on
    instead (tests). The live display is always taken down when the block ends, before
    the report is printed, whatever happened inside."""
    stream = stream or sys.stderr
    if as_json:
        yield None
        return
    if console is None and not interactive(stream):
        yield PlainProgress(stream, lang, expected_steps(diagnosis)) if verbose else None
        return
    try:
        if console is None:
            from rich.console import Console

            console = Console(file=stream, highlight=False)
        live = LiveProgress(console, lang, expected_steps(diagnosis))
        live.start()
    except Exception:  # a display must never stop the run
        yield None
        return
    try:
        yield live
    finally:
        with contextlib.suppress(Exception):
            live.stop()
