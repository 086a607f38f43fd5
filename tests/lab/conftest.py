"""Lab tests need root and iproute2; they build their own namespaces (see lab/)."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = None
    if os.geteuid() != 0:
        why = "lab tests need root (network namespaces)"
    elif shutil.which("ip") is None or shutil.which("kamailio") is None:
        why = "lab packages missing: run `make test` (it installs them)"
    for item in items:
        item.add_marker(pytest.mark.lab)
        if why:
            item.add_marker(pytest.mark.skip(reason=why))
