"""The rules engine: rules are data (``rules/*.toml``), evaluated on facts into findings.

``loader`` reads and validates rule files; ``engine`` evaluates them (three-valued
logic: unknown is not false), explains why each matched or not, and orders the
findings root cause first.
"""

from agent.judge.engine import (
    Evaluation,
    evaluate,
    evaluate_condition,
    fill,
    judge,
    normalise_text,
    self_test,
)
from agent.judge.loader import (
    LANGS,
    OPERATORS,
    SEVERITIES,
    SYMPTOMS,
    Rule,
    RuleError,
    Text,
    load,
    load_all,
    parse_rules,
    parse_rules_lenient,
)

__all__ = [
    "LANGS",
    "OPERATORS",
    "SEVERITIES",
    "SYMPTOMS",
    "Evaluation",
    "Rule",
    "RuleError",
    "Text",
    "evaluate",
    "evaluate_condition",
    "fill",
    "judge",
    "load",
    "load_all",
    "normalise_text",
    "parse_rules",
    "parse_rules_lenient",
    "self_test",
]
