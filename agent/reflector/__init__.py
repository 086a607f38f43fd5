"""The reflector: the cooperating server beyond the office NAT (docs/reflector.md).

It mirrors SIP requests back as they arrived (SIP ALG detection) and answers delayed
replies (NAT UDP binding lifetime). The client side is :mod:`agent.net.reflector`.
"""

from __future__ import annotations

from agent import i18n
from agent.reflector.limits import Limits
from agent.reflector.server import COUNTERS, Reflector, serve

__all__ = ["COUNTERS", "MESSAGES", "Limits", "Reflector", "serve"]

# The command's own strings; registered into agent.i18n (to move there in time).
MESSAGES: dict[str, dict[str, str]] = {
    "reflector.listening": {
        "fr": "réflecteur à l'écoute sur {where} (Ctrl-C pour arrêter)",
        "en": "reflector listening on {where} (Ctrl-C to stop)",
    },
    "reflector.counters": {
        "fr": "réflecteur arrêté : {counters}",
        "en": "reflector stopped: {counters}",
    },
    "reflector.bad_address": {
        "fr": "--listen : {ip!r} n'est pas une adresse IP",
        "en": "--listen: {ip!r} is not an IP address",
    },
    "reflector.cannot_listen": {
        "fr": "impossible d'écouter sur {ip} : {why}",
        "en": "cannot listen on {ip}: {why}",
    },
}
for _key, _text in MESSAGES.items():
    i18n.MESSAGES.setdefault(_key, _text)
