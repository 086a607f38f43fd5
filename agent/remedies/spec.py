"""The remedy catalogue (``agent/remedies/remedies.toml``): each remedy declared as data.

A bad entry gives one error naming the remedy; the catalogue is checked by the tests, so
a shipped one is always valid. Format: docs/remedies.md.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from agent import catalog
from agent.judge.loader import RuleError, _check_condition  # the rules' condition syntax

LANGS = ("fr", "en")
ACTIONS = (
    "line-options",
    "phone-settings",
    "phone-reboot",
    "provider-reboot",
    "reprovision",
    "manual",
)
TARGETS = ("line", "device", "site")
UNDOABLE = {"line-options", "phone-settings"}  # they write a value that was read before
_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


class SpecError(ValueError):
    """An invalid catalogue entry (the message names it)."""


@dataclass(frozen=True)
class Text:
    title: str
    effect: str = ""  # what it changes, in one sentence (automatic remedies)
    steps: tuple[str, ...] = ()  # what a person does (manual remedies)
    vendor: dict[str, str] = field(default_factory=dict)  # vendor id -> an extra first step


@dataclass(frozen=True)
class Remedy:
    id: str
    action: str
    answers: tuple[str, ...]  # rule ids
    target: str  # line | device | site
    text: dict[str, Text]
    when: dict[str, Any] | None = None  # precondition on the target's facts
    set: dict[str, Any] = field(default_factory=dict)  # what it writes
    keep: tuple[str, ...] = ()  # read with it, restored by an undo
    verify: dict[str, Any] = field(default_factory=dict)  # facts expected afterwards
    settle_s: float = 0.0  # wait before verifying (a phone restarting)

    @property
    def manual(self) -> bool:
        return self.action == "manual"

    @property
    def undoable(self) -> bool:
        return self.action in UNDOABLE

    def title(self, lang: str) -> str:
        return self.text[lang].title


def _text(raw: Any, lang: str, manual: bool, fail: Any) -> Text:
    if not isinstance(raw, dict) or not isinstance(raw.get("title"), str):
        raise fail(f"[remedy.{lang}] needs a title")
    steps = raw.get("steps", [])
    vendor = raw.get("vendor", {})
    if manual and not (
        isinstance(steps, list) and steps and all(isinstance(s, str) for s in steps)
    ):
        raise fail(f"[remedy.{lang}] of a manual remedy needs steps")
    if not (isinstance(steps, list) and all(isinstance(s, str) for s in steps)):
        raise fail(f"[remedy.{lang}] steps must be a list of text")
    if not manual and not isinstance(raw.get("effect"), str):
        raise fail(f"[remedy.{lang}] needs effect (what it changes)")
    if not isinstance(vendor, dict) or not all(isinstance(v, str) for v in vendor.values()):
        raise fail(f"[remedy.{lang}] vendor must map vendor ids to one step")
    return Text(raw["title"], raw.get("effect", ""), tuple(steps), dict(vendor))


def parse(raw: Any) -> Remedy:
    rid = raw.get("id") if isinstance(raw, dict) else None

    def fail(msg: str) -> SpecError:
        return SpecError(f"remedy {rid or '?'}: {msg}")

    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise fail("needs an id in lower-case-with-dashes")
    if raw.get("action") not in ACTIONS:
        raise fail(f"action must be one of {', '.join(ACTIONS)}")
    if raw.get("target") not in TARGETS:
        raise fail(f"target must be one of {', '.join(TARGETS)}")
    answers = raw.get("answers")
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise fail("answers must list rule ids")
    when = raw.get("when")
    if when is not None:
        try:
            _check_condition(when, lambda m: RuleError(m))
        except RuleError as e:
            raise fail(f"when: {e}") from None
    for name in ("set", "verify"):
        if not isinstance(raw.get(name, {}), dict):
            raise fail(f"{name} must be a table")
    for key in raw.get("verify", {}):
        if catalog.lookup(key) is None:
            raise fail(f"verify: unknown fact key {key!r}")
    manual = raw["action"] == "manual"
    if manual and (raw.get("set") or raw.get("verify") or raw.get("keep")):
        raise fail("a manual remedy changes nothing: no set, keep or verify")
    if raw["action"] in UNDOABLE and not (raw.get("set") and raw.get("verify")):
        raise fail("a remedy that writes needs set and verify")
    keep = raw.get("keep", [])
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise fail("keep must list names")
    settle = raw.get("settle_s", 0)
    if (
        not isinstance(settle, int | float)
        or isinstance(settle, bool)
        or not 0 <= settle <= 86400  # at most a day; not nan nor inf (TOML has them)
    ):
        raise fail("settle_s must be a number of seconds")
    texts = {lang: _text(raw.get(lang), lang, manual, fail) for lang in LANGS}
    if len(texts["fr"].steps) != len(texts["en"].steps):
        raise fail("[remedy.fr] and [remedy.en] must have the same number of steps")
    if set(texts["fr"].vendor) != set(texts["en"].vendor):
        raise fail("[remedy.fr] and [remedy.en] must name the same vendors")
    known = set(raw) - {"id", "action", "answers", "target", "when", "set", "keep", "verify",
                        "settle_s", *LANGS}  # fmt: skip
    if known:
        raise fail(f"unknown key(s) {', '.join(sorted(known))}")
    return Remedy(
        id=rid,
        action=raw["action"],
        answers=tuple(answers),
        target=raw["target"],
        text=texts,
        when=when,
        set=dict(raw.get("set", {})),
        keep=tuple(keep),
        verify=dict(raw.get("verify", {})),
        settle_s=float(settle),
    )


def parse_catalogue(text: str) -> list[Remedy]:
    """Every remedy of a catalogue text; SpecError on the first bad one or a repeated id."""
    try:
        data = tomllib.loads(text)
    except ValueError as e:  # TOMLDecodeError; an integer of over 4300 digits (tomllib)
        raise SpecError(f"remedies.toml: {e}") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise SpecError("remedies.toml: nested too deeply") from None
    raws = data.get("remedy", [])
    if not isinstance(raws, list):
        raise SpecError("remedies.toml: 'remedy' must be an array of tables ([[remedy]])")
    out: list[Remedy] = []
    for raw in raws:
        remedy = parse(raw)
        if any(r.id == remedy.id for r in out):
            raise SpecError(f"remedy {remedy.id}: defined twice")
        out.append(remedy)
    return out


@cache
def catalogue() -> tuple[Remedy, ...]:
    """The shipped remedies, in file order."""
    text = resources.files("agent.remedies").joinpath("remedies.toml").read_text("utf-8")
    return tuple(parse_catalogue(text))


def get(remedy_id: str) -> Remedy | None:
    return next((r for r in catalogue() if r.id == remedy_id), None)
