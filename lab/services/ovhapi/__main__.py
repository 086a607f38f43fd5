"""``python -m lab.services.ovhapi``: see the package docstring."""

from lab.services.ovhapi.server import main

raise SystemExit(main())
