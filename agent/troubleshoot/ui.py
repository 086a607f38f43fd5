"""The person's side of the troubleshooter: what is shown, what is asked, what is answered.

On a terminal: colour, a progress line while the probes run, questions answered by number
or by « oui »/« non ». Anywhere else (a log, a pipe, ``NO_COLOR``, a screen reader): plain
text, the same questions read from standard input. With ``decide`` set (``--yes``/``--no``,
the portal), nothing is asked: remedies are applied (or not) and the walk goes on.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.markup import escape

from agent.i18n import t
from agent.pipeline import Progress
from agent.report.text import console as make_console

YES = ("oui", "o", "yes", "y")


class UI:
    def __init__(
        self, lang: str, decide: bool | None = None, out: Console | None = None, live: bool = True
    ) -> None:
        self.lang, self.decide, self.live = lang, decide, live  # live: a progress display
        self.out = out or make_console()
        self.plain = self.out.no_color
        self.asked: list[tuple[str, str]] = []  # (question, answer): for the support summary

    # -------------------------------------------------------------- showing
    def say(self, text: str = "", style: str | None = None) -> None:
        self.out.print(escape(text), style=None if self.plain else style)

    def heading(self, text: str) -> None:
        self.say()
        self.say(text if not self.plain else f"== {text} ==", "bold")

    def numbered(self, items: list[str]) -> None:
        for n, item in enumerate(items, 1):
            self.say(f"  {n}. {item}")

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[Progress | None]:
        """The technician's progress display (on standard error, terminal only) while the
        probes run; yields the pipeline's progress callback."""
        from agent.report import progress

        self.say(label)
        with progress.display(
            self.lang, diagnosis=True, as_json=self.out.file is sys.stderr
        ) as tell:
            yield tell

    # -------------------------------------------------------------- asking
    def _read(self, prompt: str) -> str | None:
        self.out.print(escape(prompt), end="")
        self.out.file.flush()
        line = sys.stdin.readline()
        if not line:
            self.say()
            return None
        if not sys.stdin.isatty():
            self.say()  # the answer was not echoed: end the prompt's line
        answer = line.strip()
        self.asked.append((prompt.strip(), answer))
        return answer

    def choose(self, question: str, options: list[str]) -> int | None:
        """The index the person picks (by number); None when nobody answers."""
        if self.decide is not None:
            return None
        self.say()
        self.say(question, "bold")
        self.numbered(options)
        for _ in range(3):
            answer = self._read(t("ts.your_choice", self.lang, n=len(options)))
            if answer is None:
                return None
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return int(answer) - 1
            self.say(t("ts.bad_choice", self.lang, n=len(options)), "yellow")
        return None

    def confirm(self, question: str) -> bool:
        """Consent: True only for « oui »/« yes » (or ``--yes``); no answer is a no."""
        if self.decide is not None:
            return self.decide
        answer = self._read(f"{question} [{t('ts.yes_no', self.lang)}] ")
        return answer is not None and answer.lower() in YES

    def text(self, question: str) -> str | None:
        """A short free answer (e.g. the message on the screen); None when none is given."""
        if self.decide is not None:
            return None
        answer = self._read(f"{question} ")
        return answer[:200] or None if answer else None

    def pause(self, message: str) -> None:
        """Wait for the person to do something by hand, then press Enter."""
        if self.decide is not None:
            return
        self._read(message)
