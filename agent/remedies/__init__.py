"""Remedies: fix what the diagnosis found, only with consent, audited, verified, undoable.

- ``remedies.toml``: the catalogue, as data (spec.py reads it): which rule each remedy
  answers, what it acts on, its precondition, what it changes, how it is verified;
- one module per action: ``line_options`` (the line at OVHcloud, ``PUT .../options``),
  ``phone_settings`` (the phone's own settings through its vendor's interface), ``reboot``
  (``POST .../phone/reboot``), ``reprovision`` (``POST .../phone/resetConfig`` then the
  reboot), ``manual`` (steps for a person);
- ``offers``: what answers the current findings; ``runner``: plan, consent, act, roll
  back, verify, undo; ``audit``: the audit log in the local store; ``render``: text.

The CLI (``phonediag remedy ...``) and, later, the portal call these; a portal job acts
only when :func:`allowed_for_portal` says so.
"""

from __future__ import annotations

import ipaddress

from agent.model import LINE_PREFIX, Report
from agent.remedies.runner import allowed_for_portal
from agent.remedies.spec import Remedy, catalogue, get

__all__ = ["Remedy", "allowed_for_portal", "catalogue", "get", "resolve_subject"]


def resolve_subject(report: Report, text: str) -> str | None:
    """The subject ``--device`` names: a phone's IP, ``line:<number>`` or a line's number
    (the phone it was joined to, else the line alone), or ``site``; None when the
    diagnosis has no such phone or line."""
    text = text.strip()
    if text == "site":
        return "site"
    subjects = {f.subject for f in report.facts} | {d.ip for d in report.devices}
    number = text.removeprefix(LINE_PREFIX)
    by_line = {
        f.value: f.subject for f in report.facts if f.key == "line.number" and f.value == number
    }
    if text.startswith(LINE_PREFIX) or number.isdigit():
        if number in by_line:
            return by_line[number]
        if text.startswith(LINE_PREFIX) and text in subjects:
            return text
    try:
        ip = str(ipaddress.ip_address(text))
    except ValueError:
        return None
    return ip if ip in subjects else None
