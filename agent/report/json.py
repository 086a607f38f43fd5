"""The JSON report (DESIGN §4 contract), for machines.

Its published schema is ``report-v1.schema.json`` (docs/report.md); with
``PHONEDIAG_CHECK_SCHEMA=1`` every rendered report is checked against it first.
"""

from __future__ import annotations

import json

from agent.model import Report
from agent.report import schema


def render(report: Report) -> str:
    text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str)
    schema.check_text(text)
    return text
