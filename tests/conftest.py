"""Safety net: tests may only run where no packet can reach a real network.

`make test` runs pytest under `unshare -n` (a private namespace with only
loopback); lab tests build their own namespaces from there. Anywhere else, stop.
"""

from __future__ import annotations

import pytest

from agent import platform


def _outside_interfaces() -> list[str]:
    return sorted({a.interface for a in platform.ipv4_addresses() if not a.ip.startswith("127.")})


def pytest_sessionstart(session: pytest.Session) -> None:
    found = _outside_interfaces()
    if found:
        pytest.exit(
            "refusing to run: this network namespace has real interfaces "
            f"({', '.join(found)}). Run the tests with `make test` (inside `unshare -n`).",
            returncode=4,
        )
