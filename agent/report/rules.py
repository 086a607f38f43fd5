"""Rules as a person reads them: a list, one rule in full, and a test summary."""

from __future__ import annotations

import json

from agent.judge import Rule


def as_dict(r: Rule, lang: str) -> dict:
    t = r.text[lang]
    return {
        "id": r.id,
        "subject": r.subject,
        "severity": r.severity,
        "symptoms": list(r.symptoms),
        "title": t.title,
        "explanation": t.explanation,
        "steps": list(t.steps),
        "actions": list(r.actions),
        "guide": r.guide,
        "covers": list(r.covers),
        "when": r.when,
        "tests": len(r.tests),
        "file": r.origin,
    }


def listing(rules: list[Rule], lang: str, as_json: bool) -> str:
    if as_json:
        return json.dumps([as_dict(r, lang) for r in rules], ensure_ascii=False, indent=2)
    width = max((len(r.id) for r in rules), default=10) + 2
    return "\n".join(f"{r.id:{width}}{r.severity:10}{r.text[lang].title}" for r in rules)


def show(r: Rule, lang: str, as_json: bool) -> str:
    if as_json:
        return json.dumps(as_dict(r, lang), ensure_ascii=False, indent=2)
    t = r.text[lang]
    lines = [
        f"{r.id} — {t.title}",
        f"  severity: {r.severity}   subject: {r.subject}   symptoms: {', '.join(r.symptoms)}",
        f"  guide: {r.guide}",
        f"  file: {r.origin}",
        "",
        f"  {t.explanation}",
        "",
    ]
    lines += [f"  {n}. {s}" for n, s in enumerate(t.steps, 1)]
    if r.actions:
        lines.append(f"  actions: {', '.join(r.actions)}")
    lines.append(f"  when: {json.dumps(r.when, ensure_ascii=False)}")
    return "\n".join(lines)
