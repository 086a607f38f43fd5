"""Fuzzing / property tests: everything that parses bytes from the network or files.

Profiles (``PHONEDIAG_FUZZ``):

- ``ci`` (default): a fast subset, part of ``make test`` (the whole folder well under a
  minute on a 2-vCPU machine);
- ``nightly``: ``PHONEDIAG_FUZZ_EXAMPLES`` examples per target (default 15,000: over a
  million inputs over the ~76 targets), run by ``benchmarks/fuzz.py`` (``make fuzz``);
- ``dev``: a handful of examples, to try a new test quickly.

Every ``@given`` test here counts the inputs it is actually called with (generation,
replays and shrinking included). With ``PHONEDIAG_FUZZ_REPORT=FILE``, the counts, outcomes
and durations are written to FILE as JSON when the session ends (benchmarks/fuzz.py).

No example database is kept (nothing written into the tree); a failure prints the
falsifying example and the ``@reproduce_failure`` blob to replay it.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("PHONEDIAG_FUZZ", "ci")
NIGHTLY_EXAMPLES = 15_000

_COMMON = dict(
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Each call must return quickly, whatever the input: a parser that is slow on some input is
# a finding (a device could make the agent spin). The deadline is generous for a busy CI
# box (1 s), more so for the nightly run, niced on a shared machine (5 s): the worst-case
# checks bound the known costly inputs more tightly.
settings.register_profile("ci", max_examples=60, deadline=timedelta(seconds=1), **_COMMON)
settings.register_profile(
    "nightly",
    max_examples=int(os.environ.get("PHONEDIAG_FUZZ_EXAMPLES") or NIGHTLY_EXAMPLES),
    deadline=timedelta(seconds=5),
    **_COMMON,
)
settings.register_profile("dev", max_examples=10, deadline=timedelta(seconds=1), **_COMMON)
settings.load_profile(PROFILE)

# test node id -> inputs tried; outcome and duration of its call phase
INPUTS: Counter[str] = Counter()
RESULTS: dict[str, dict[str, object]] = {}


def _counting(inner, key: str):
    @functools.wraps(inner)
    def run(*args, **kwargs):
        INPUTS[key] += 1
        return inner(*args, **kwargs)

    return run


def pytest_collection_modifyitems(session, config, items) -> None:
    """Count each example of every Hypothesis test of this folder (``inner_test`` is the
    hook Hypothesis documents for wrapping how each example is run)."""
    here = Path(__file__).parent
    for item in items:
        test = getattr(item, "obj", None)
        handle = getattr(test, "hypothesis", None)
        if handle is None or here not in Path(str(item.fspath)).parents:
            continue
        if not getattr(handle, "_phonediag_counted", False):
            handle.inner_test = _counting(handle.inner_test, item.nodeid)
            handle._phonediag_counted = True


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        RESULTS[report.nodeid] = {"outcome": report.outcome, "seconds": report.duration}


def pytest_sessionfinish(session, exitstatus) -> None:
    out = os.environ.get("PHONEDIAG_FUZZ_REPORT")
    if not out:
        return
    doc = {
        "profile": PROFILE,
        "max_examples": settings().max_examples,
        "targets": {
            node: {**RESULTS.get(node, {}), "inputs": INPUTS.get(node, 0)}
            for node in sorted(set(RESULTS) | set(INPUTS))
            if "/fuzz/" in node.replace("\\", "/")
        },
    }
    Path(out).write_text(json.dumps(doc, indent=1), encoding="utf-8")


@pytest.fixture(scope="session")
def fuzz_profile() -> str:
    return PROFILE
