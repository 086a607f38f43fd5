"""Lab tests need root and iproute2; they build their own namespaces (see lab/)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

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


@pytest.fixture(scope="session", autouse=True)
def _secrets_sweep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Every lab of the session is watched by the secrets sweep (tests/secrets_sweep.py):
    its secrets, its agent runs' output and store; at the end, the files under basetemp."""
    plugin = request.config.pluginmanager.get_plugin("phonediag-secrets-sweep")
    if plugin is None:
        yield
        return
    from lab import Lab

    with pytest.MonkeyPatch.context() as mp:
        plugin.labs(mp, Lab, tmp_path_factory.getbasetemp())
        yield
