"""Entry point of the single-file build (packaging/pyinstaller/phonediag.spec): the same
as the console script ``phonediag`` (agent.cli:main)."""

import multiprocessing

from agent.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # harmless; needed if a library ever spawns (Windows)
    main()
