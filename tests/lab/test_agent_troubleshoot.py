"""`phonediag troubleshoot` as a person uses it: in a real terminal (tmux), in French, on the
lab office's agent host. dnd-on: « Mon téléphone ne sonne plus » → the Cisco's DND found
and fixed with consent → « Ça fonctionne ! ». Then, the office now healthy, the same
symptom with nothing measured: the guide's checks, « Ça ne fonctionne toujours pas ? »,
and the support summary with what support asks for."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
import secrets_sweep

from lab import Lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


class Terminal:
    """One tmux window on a private server: type, read the screen."""

    def __init__(self, lab: Lab, argv: list[str], name: str) -> None:
        self.server = f"phonediag-test-{os.getpid()}"
        self.name = name
        env = lab.agent_env()
        keep = ("PHONEDIAG_CONFIG", "PHONEDIAG_LAB", "PATH", "PHONEDIAG_CHECK_SCHEMA")
        pairs = [f"{k}={env[k]}" for k in keep if k in env] + ["LANG=fr_FR.UTF-8"]
        shell = f"env {shlex.join(pairs)} {shlex.join(lab.agent_argv(argv))}; echo EXIT=$?"
        self.tmux("new-session", "-d", "-s", name, "-x", "150", "-y", "50", shell)
        self.tmux("set-option", "-t", name, "remain-on-exit", "on")

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True,
                             timeout=10, check=False)  # fmt: skip
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", "-500")

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.3)
        raise AssertionError(f"{text!r} never shown; the screen:\n{self.screen()}")

    def type(self, keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", keys)
        self.tmux("send-keys", "-t", self.name, "Enter")

    def close(self) -> None:
        secrets_sweep.output("phonediag troubleshoot in tmux", self.screen())
        self.tmux("kill-server")


@pytest.fixture
def dnd_on() -> Iterator[Lab]:
    with Lab.up("dnd-on") as lab:
        yield lab


def option(screen: str, label: str) -> str:
    """The number shown in front of ``label`` in the last list on the screen."""
    found = re.findall(rf"^\s*(\d+)\. {re.escape(label)}", screen, re.M)
    assert found, f"{label!r} not offered:\n{screen}"
    return found[-1]


def test_dnd_fixed_with_consent_to_ca_fonctionne_then_an_unsolved_case_to_the_summary(dnd_on):
    lab = dnd_on
    cisco = next(p for p in lab.phones if p["role"] == "phone2")
    term = Terminal(lab, ["phonediag", "troubleshoot"], "fixed")
    try:
        shown = term.wait_for("Que se passe-t-il ?")
        assert "Dépannage de vos téléphones Plug & Phone" in shown
        term.type(option(term.wait_for("Votre choix"), "Mon téléphone ne sonne plus"))
        shown = term.wait_for("Voulez-vous qu'il le fasse ?", timeout=180)
        assert f"Cisco SPA504G ({cisco['ip']})" in shown  # the phone with the fault, found
        assert "Diagnostic : Le mode « Ne pas déranger » est actif" in shown
        assert "phone.dnd: true -> false" in shown  # the plan, before consent
        term.type("oui")
        shown = term.wait_for("Est-ce que ça fonctionne ?", timeout=180)
        assert "Vérifié" in shown
        assert lab.phone_state("phone2")["dnd"] is False
        assert "CALL_ESTABLISHED" in lab.call("phone1", "phone2")  # it rings again
        term.type(option(shown, "Ça fonctionne !"))
        shown = term.wait_for("EXIT=")
        assert "Ça fonctionne ! Problème résolu." in shown and "EXIT=0" in shown
    finally:
        term.close()

    # the office is healthy now: nothing to measure, the guide's checks, still not working
    term = Terminal(lab, ["phonediag", "troubleshoot", "--symptom", "no-ring"], "unsolved")
    try:
        shown = term.wait_for("Quel téléphone est concerné ?", timeout=180)
        term.type(option(term.wait_for("Votre choix"), f"Cisco SPA504G ({cisco['ip']})"))
        shown = term.wait_for("est-ce que ça fonctionne ?", timeout=60)
        assert "Les tests n'ont trouvé aucun problème" in shown
        while "EXIT=" not in shown:  # every remaining procedure: still not working
            term.type(option(shown, "Ça ne fonctionne toujours pas ?"))
            time.sleep(0.5)
            shown = term.screen()
            if "EXIT=" not in shown:
                shown = term.wait_for("Votre choix (1-2)", timeout=30)
        shown = term.wait_for("EXIT=1")
        summary = shown[shown.index("Résumé pour le support OVHcloud") :]
        for needle in ("Mon téléphone ne sonne plus", "Cisco SPA504G", f"MAC {cisco['mac']}",
                       f"IP locale {cisco['ip']}", "100.64.66.2", "Tests faits par phonediag",
                       "no-ring-checklist: steps -> still not working", "1007"):  # fmt: skip
            assert needle in summary, (needle, summary)
        admin = lab.phone_state("phone2")["admin"]["password"]
        assert admin not in shown
    finally:
        term.close()
