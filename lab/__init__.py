"""phonediag's lab: a simulated office LAN made of network namespaces and real daemons.

>>> from lab import Lab
>>> with Lab.up("healthy") as lab:           # doctest: +SKIP
...     lab.run(["phonediag", "discover", "--json"], timeout=60)
"""

from lab.office import AlreadyUp, Lab, LabError, NotUp
from lab.scenarios import SCENARIOS, ScenarioError

__all__ = ["SCENARIOS", "AlreadyUp", "Lab", "LabError", "NotUp", "ScenarioError"]
