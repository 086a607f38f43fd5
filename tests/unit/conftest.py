"""Fixtures shared by the unit tests that talk to the lab's OVHcloud API stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.services.ovhapi import make_tls


@pytest.fixture
def no_ambient_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the API keys a test gives: no OVH_* variables, ovh.conf, or keyring."""
    for name in ("ENDPOINT", "APPLICATION_KEY", "APPLICATION_SECRET", "CONSUMER_KEY"):
        monkeypatch.delenv(f"OVH_{name}", raising=False)
    monkeypatch.setattr("ovh.config.CONFIG_PATH", [str(tmp_path / "none.conf")])
    monkeypatch.setattr("agent.provider.credentials._keyring", lambda name: None)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A lab CA and a certificate for localhost: (ca, cert, key)."""
    return make_tls(tmp_path_factory.mktemp("tls"), "localhost")
