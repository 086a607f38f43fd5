"""What an idle ``phonediag serve`` costs: CPU and memory, read from /proc.

    make bench-portal   # = unshare -n ... .venv/bin/python -m benchmarks.portal_idle

Brings up the lab office (one phone), enrols the agent, starts ``phonediag serve`` on the
agent host (connected through the router's NAT to the provider's mosquitto over TLS), then
measures the serve process (all its threads) from /proc/<pid>: CPU seconds (user +
system), the resident memory at the end of each phase and its peak (VmHWM), and the
thread wake-ups (context switches) per second:

1. start-up, until it logged that it is connected;
2. idle for ``--seconds`` (default 60);
3. one diagnosis job submitted from the provider (``phonediag portal submit``);
4. idle again for ``--seconds``, after that job.

Performance is measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab import Lab, netns

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    at: float  # time.monotonic()
    cpu_s: float
    rss_kib: int
    hwm_kib: int
    switches: int


def sample(pid: int) -> Sample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, every thread
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:  # voluntary and not
                    switches += int(line.split(":")[1])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    rss, hwm = (int(status[key].split()[0]) for key in ("VmRSS", "VmHWM"))
    return Sample(time.monotonic(), cpu, rss, hwm, switches)


def row(phase: str, a: Sample, b: Sample) -> dict[str, object]:
    seconds = b.at - a.at
    cpu = b.cpu_s - a.cpu_s
    return {
        "phase": phase,
        "seconds": round(seconds, 1),
        "cpu_s": round(cpu, 3),
        "cpu_pct": round(100 * cpu / seconds, 3) if seconds else None,
        "wakeups_per_s": round((b.switches - a.switches) / seconds, 1) if seconds else None,
        "rss_mib": round(b.rss_kib / 1024, 1),
        "peak_mib": round(b.hwm_kib / 1024, 1),
    }


def wait_for(log: Path, needle: str, after: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace")[after:]:
            return
        time.sleep(0.02)
    raise SystemExit(f"serve never logged {needle!r}; its log:\n{log.read_text()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="each idle phase")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    rows: list[dict[str, object]] = []
    with (
        Lab.up("healthy", phones=1) as lab,
        tempfile.TemporaryDirectory(prefix="phonediag-bench-") as tmp,
    ):
        e = lab.portal_enrolment()
        enrol = ["phonediag", "portal", "enroll", "--broker", e["broker"], "--token", e["token"]]
        if lab.run(enrol, timeout=30).returncode != 0:
            raise SystemExit("enrolment failed")
        log = Path(tmp) / "serve.log"
        with open(log, "wb") as out:
            started = time.monotonic()
            proc = subprocess.Popen(
                lab.agent_argv(["phonediag", "serve"]),
                env=lab.agent_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            zero = Sample(started, 0.0, 0, 0, 0)
            wait_for(log, "connected to", 0, 30)
            connected = sample(proc.pid)
            rows.append(row("start-up, until connected", zero, connected))
            time.sleep(args.seconds)
            idle = sample(proc.pid)
            rows.append(row(f"idle {args.seconds:g} s", connected, idle))
            submit = [
                "phonediag", "portal", "submit", "--agent", e["agent"], "--kind", "diagnose",
                "--key", str(e["portal_key"]), "--broker", e["portal_broker"],
                "--ca", str(e["ca_file"]), "--username", e["portal_user"],
                "--password-file", str(e["portal_password_file"]), "--json",
            ]  # fmt: skip
            mark = len(log.read_text())
            done = subprocess.run(
                netns.exec_argv(lab.ns("prov"), submit), env=lab.agent_env(),
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            wait_for(log, "delivered", mark, 30)
            status = json.loads(done.stdout)["result"]["status"] if done.stdout else "none"
            after_job = sample(proc.pid)
            rows.append(row(f"one diagnose job ({status})", idle, after_job))
            time.sleep(args.seconds)
            rows.append(row(f"idle {args.seconds:g} s after it", after_job, sample(proc.pid)))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    heads = ("seconds", "CPU s", "CPU %", "wake-ups/s", "RSS MiB", "peak MiB")
    keys = ("seconds", "cpu_s", "cpu_pct", "wakeups_per_s", "rss_mib", "peak_mib")
    print(f"{'phonediag serve':30}", *(f"{h:>10}" for h in heads))
    for r in rows:
        print(f"{r['phase']:30}", *(f"{'' if r[k] is None else r[k]:>10}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
