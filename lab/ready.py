"""Wait until a set of named checks pass, failing fast when a daemon dies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from lab import procs
from lab.state import Proc

Check = tuple[str, Callable[[], bool]]


class NotReady(RuntimeError):
    """Something did not come up in time (the message names what)."""


def _tail(path: str, lines: int = 3) -> str:
    """Last lines of a log file, for error messages."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(text[-lines:])


def wait(checks: Iterable[Check], watched: Iterable[Proc], deadline: float) -> None:
    """Poll ``checks`` until all pass; NotReady at ``deadline`` or when a watched process dies."""
    pending = list(checks)
    watched = list(watched)
    while True:
        for proc in watched:
            if not procs.alive(proc):
                raise NotReady(
                    f"{proc.name} ({proc.role}) exited during start-up; log {proc.log}: "
                    f"{_tail(proc.log)}"
                )
        pending = [(name, check) for name, check in pending if not check()]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise NotReady("did not come up in time: " + ", ".join(name for name, _ in pending))
        time.sleep(0.05)
