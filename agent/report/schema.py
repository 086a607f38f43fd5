"""The published JSON Schema of the report (``report-v1.schema.json``, shipped beside this
module) and the check every printed or stored report can be put through.

``validate(doc)`` lists what is wrong with a report document (empty: valid). With
``PHONEDIAG_CHECK_SCHEMA=1`` in the environment (the test suite sets it), every JSON report
the agent prints or stores goes through :func:`check` first, and a violation stops the
command with exit code 70 (:data:`EXIT_INTERNAL`): a test can never pass with a report
that breaks the published contract. ``jsonschema`` is only imported when a report is
checked (it is a test dependency, not a run-time one).
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "report-v1.schema.json"
SCHEMA_ID = "https://phonediag.example/schema/report-v1.schema.json"
ENV = "PHONEDIAG_CHECK_SCHEMA"
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: the agent itself is wrong, not the input


class SchemaViolation(Exception):
    """A report about to be printed or stored breaks the published schema."""

    def __init__(self, problems: list[str], what: str = "report") -> None:
        super().__init__(f"{what} breaks {SCHEMA_FILE}: " + "; ".join(problems))
        self.problems = problems
        self.what = what


@cache
def schema() -> dict[str, Any]:
    """The schema document (the file shipped in the package)."""
    text = resources.files("agent.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _validator() -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema())
    cls.check_schema(schema())
    return cls(schema(), format_checker=cls.FORMAT_CHECKER)


def _where(path: Any) -> str:
    """A JSON-pointer-like location: ``/findings/0/severity`` (``/`` for the document)."""
    return "/" + "/".join(str(p) for p in path)


def validate(doc: Any) -> list[str]:
    """Every way ``doc`` (a parsed JSON report) breaks the schema, as one line each, e.g.
    ``/findings/0/severity: 'fatal' is not one of ['critical', 'warning', 'info']``."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]


def enabled() -> bool:
    """Whether reports are checked before they are printed or stored."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def check(doc: Any, what: str = "report") -> None:
    """When checking is enabled, raise :class:`SchemaViolation` if ``doc`` is invalid."""
    if enabled():
        problems = validate(doc)
        if problems:
            raise SchemaViolation(problems, what)


def check_text(text: str, what: str = "report") -> None:
    """:func:`check` on a serialised report (what is actually printed or stored)."""
    if enabled():
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise SchemaViolation([f"not JSON: {e}"], what) from None
        check(doc, what)
