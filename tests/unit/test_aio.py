"""agent/aio.py: a blocking call still running when the command has its answer (a DNS
lookup on a resolver that does not answer) no longer holds the process at exit."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from agent import aio

STUCK = """
import asyncio, time
from agent import aio

async def main():
    try:
        async with asyncio.timeout(0.2):
            await asyncio.to_thread(time.sleep, 30)  # a resolver that never answers
    except TimeoutError:
        return "report"

print(aio.run(main()))
"""


def test_a_stuck_worker_thread_does_not_hold_the_command():
    began = time.monotonic()
    r = subprocess.run([sys.executable, "-c", STUCK], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "report", "")
    assert time.monotonic() - began < 15  # not the 30 s of the stuck call


def test_results_and_exceptions_come_back_from_the_worker():
    async def main():
        loop = asyncio_loop()
        ok = await loop.run_in_executor(None, sum, [1, 2, 3])
        with pytest.raises(ValueError, match="bad"):
            await loop.run_in_executor(None, int, "bad")
        return ok

    assert aio.run(main()) == 6


def asyncio_loop():
    import asyncio

    return asyncio.get_running_loop()
