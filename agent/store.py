"""The agent's local SQLite store (stdlib ``sqlite3``): the remedies' audit log today, the
run history later. One file, readable by its owner only (mode 0600, its folder 0700).

Where it lives (``[store] path`` in the configuration wins):

- as root on Linux/BSD: ``/var/lib/phonediag/phonediag.sqlite`` (the FHS place for a
  program's state, shared by every root run: cron, systemd, a technician's sudo);
- otherwise on Linux/BSD: ``$XDG_STATE_HOME/phonediag/phonediag.sqlite``, by default
  ``~/.local/state/phonediag/phonediag.sqlite`` (XDG Base Directory: "state data that
  should persist between (application) restarts", such as logs and history);
- macOS: ``~/Library/Application Support/phonediag/phonediag.sqlite``;
- Windows: ``%LOCALAPPDATA%\\phonediag\\phonediag.sqlite``.

Nothing secret is ever written here (no password, key, community or activation code).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from pathlib import Path

FILE_NAME = "phonediag.sqlite"
BUSY_TIMEOUT_S = 5.0  # another phonediag writing at the same time: wait, do not fail


class StoreError(Exception):
    """The store cannot be opened or written; the message names the file."""


def default_path() -> Path:
    """The per-system (root) or per-user place of the store (see the module docstring)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "phonediag" / FILE_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "phonediag" / FILE_NAME
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/phonediag") / FILE_NAME
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "phonediag" / FILE_NAME


def path_for(configured: str | None) -> Path:
    """The store's path: the configured one (``~`` expanded), else the default."""
    return Path(configured).expanduser() if configured else default_path()


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it owner-only if needed) the store at ``path``."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another run made it meanwhile
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        if os.name == "posix" and path.stat().st_mode & 0o077:
            path.chmod(0o600)  # never readable by others, whoever created it
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute("PRAGMA foreign_keys = ON")
        return db
    except (OSError, sqlite3.Error) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise StoreError(f"{path}: {why}") from None
