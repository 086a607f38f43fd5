"""The JSON report (DESIGN §4 contract), for machines."""

from __future__ import annotations

import json

from agent.model import Report


def render(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str)
