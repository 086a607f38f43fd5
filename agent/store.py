"""The agent's local SQLite store (stdlib ``sqlite3``): the remedies' audit log
(agent/remedies/audit.py) and the run history (agent/history.py), in one file readable by
its owner only (mode 0600, its folder 0700).

Where it lives (``[store] path`` in the configuration wins, then ``$PHONEDIAG_STORE``):

- as root on Linux/BSD: ``/var/lib/phonediag/phonediag.sqlite`` (the FHS place for a
  program's state, shared by every root run: cron, systemd, a technician's sudo);
- otherwise, the user's data folder (``platformdirs.user_data_dir("phonediag")``):
  ``$XDG_DATA_HOME/phonediag/phonediag.sqlite`` on Linux/BSD, by default
  ``~/.local/share/phonediag/phonediag.sqlite``; on macOS
  ``~/Library/Application Support/phonediag/phonediag.sqlite``; on Windows
  ``%LOCALAPPDATA%\\phonediag\\phonediag.sqlite``. A store left by an earlier version in
  ``$XDG_STATE_HOME/phonediag/`` (``~/.local/state``) keeps being used while the new
  place has none, so no audit log is lost.

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
    if sys.platform not in ("win32", "darwin") and hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/phonediag") / FILE_NAME
    import platformdirs

    path = Path(platformdirs.user_data_dir("phonediag", appauthor=False)) / FILE_NAME
    if sys.platform not in ("win32", "darwin") and not _exists(path):
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        legacy = Path(state) / "phonediag" / FILE_NAME
        if _exists(legacy):
            return legacy
    return path


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a folder we may not look into counts as no."""
    try:
        return path.exists()
    except OSError:
        return False


ENV = "PHONEDIAG_STORE"  # the store's path when the configuration names none


def path_for(configured: str | None) -> Path:
    """The store's path: the configured one (``~`` expanded), else ``$PHONEDIAG_STORE``,
    else the default."""
    chosen = configured or os.environ.get(ENV)
    return Path(chosen).expanduser() if chosen else default_path()


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
