"""Start lab daemons inside namespaces and stop them again, strictly by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from lab.netns import exec_argv
from lab.state import Proc

# Processes that need a second TERM to skip their graceful shutdown (baresip un-REGISTERs for 2 s).
DOUBLE_TERM = {"baresip"}
SECOND_TERM_AFTER = 0.3
KILL_AFTER = 3.0

_children: dict[int, subprocess.Popen[bytes]] = {}  # started by this Python process: reaped here


def _stat(pid: int) -> tuple[str, int, int] | None:
    """Return (state, pgrp, starttime) of ``pid`` or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def spawn(
    name: str,
    role: str,
    ns: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Proc:
    """Start ``argv`` in namespace ``ns`` as its own session (so Ctrl-C only reaches us).

    ``ip netns exec`` execs the command, so the PID we get is the daemon's PID.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            exec_argv(ns, argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
    _children[popen.pid] = popen
    info = _stat(popen.pid)
    return Proc(name=name, role=role, pid=popen.pid, start=info[2] if info else 0, log=str(log))


def alive(proc: Proc) -> bool:
    """True if the recorded process still runs (same PID *and* same start time, not a zombie)."""
    child = _children.get(proc.pid)
    if child is not None and child.poll() is not None:
        return False
    info = _stat(proc.pid)
    return info is not None and info[0] != "Z" and info[2] == proc.start


def _signal(proc: Proc, sig: int) -> None:
    """Signal the process group the daemon leads (kamailio's workers included)."""
    if not alive(proc):
        return
    info = _stat(proc.pid)
    try:
        if info is not None and info[1] == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """True if a live (non-zombie) process of group ``pgid`` remains (kamailio's workers).

    Zombies do not count: once a daemon is orphaned (``up`` ran in another process), its
    reaper may take a second or two to collect it.
    """
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None and info[1] == pgid and info[0] != "Z":
                return True
    return False


def stop_all(procs: Iterable[Proc]) -> list[Proc]:
    """TERM everything at once, TERM baresip again, KILL what is left; return the survivors."""
    procs = [p for p in procs if alive(p)]
    groups = {p.pid for p in procs if (_stat(p.pid) or ("", 0, 0))[1] == p.pid}
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + KILL_AFTER
    second = time.monotonic() + SECOND_TERM_AFTER
    double = [p for p in procs if p.name in DOUBLE_TERM]
    while time.monotonic() < deadline:
        _reap()
        if double and time.monotonic() >= second:
            for proc in double:
                _signal(proc, signal.SIGTERM)
            double = []
        if not any(alive(p) for p in procs) and not any(_group_alive(g) for g in groups):
            break
        time.sleep(0.02)
    for proc in procs:
        _signal(proc, signal.SIGKILL)
    for pgid in groups:
        if _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    time.sleep(0.02)
    _reap()
    return [p for p in procs if alive(p)]


def _reap() -> None:
    """Collect exit statuses of our own children so they do not linger as zombies."""
    for pid, popen in list(_children.items()):
        if popen.poll() is not None:
            del _children[pid]
