"""The portal core's user-facing strings (merged into agent.i18n.MESSAGES): why a job was
refused, one sentence per rejection code (agent/portal/jobs.py). The precise reason, in
English, travels in the result's ``message``; the portal shows these by ``reason``."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "portal.reject.unsigned": {
        "fr": "tâche refusée : elle n'est pas signée par le portail",
        "en": "job refused: it is not signed by the portal",
    },
    "portal.reject.bad-signature": {
        "fr": "tâche refusée : sa signature n'est pas celle du portail enregistré",
        "en": "job refused: its signature is not the enrolled portal's",
    },
    "portal.reject.malformed": {
        "fr": "tâche refusée : elle est mal formée",
        "en": "job refused: it is malformed",
    },
    "portal.reject.wrong-agent": {
        "fr": "tâche refusée : elle est destinée à un autre agent",
        "en": "job refused: it is meant for another agent",
    },
    "portal.reject.expired": {
        "fr": "tâche refusée : elle a expiré",
        "en": "job refused: it has expired",
    },
    "portal.reject.not-yet-valid": {
        "fr": "tâche refusée : elle est datée de plus de 5 minutes dans le futur "
        "(vérifiez l'horloge de ce poste)",
        "en": "job refused: it is dated more than 5 minutes in the future "
        "(check this computer's clock)",
    },
    "portal.reject.replayed": {
        "fr": "tâche refusée : elle a déjà été reçue (rejeu)",
        "en": "job refused: it was already received (replay)",
    },
    "portal.reject.too-long": {
        "fr": "tâche refusée : sa validité dépasse 24 heures",
        "en": "job refused: it is valid for more than 24 hours",
    },
    "portal.reject.out-of-scope": {
        "fr": "tâche refusée : elle vise un réseau hors du périmètre de cet agent "
        "(ses sous-réseaux privés directement reliés)",
        "en": "job refused: it asks for a network outside this agent's scope "
        "(its directly connected private subnets)",
    },
    "portal.reject.remedy-not-allowed": {
        "fr": "tâche refusée : cette correction n'est pas autorisée depuis le portail "
        "([remedies] portal_allowed)",
        "en": "job refused: this remedy is not allowed from the portal ([remedies] portal_allowed)",
    },
    "portal.reject.unknown-kind": {
        "fr": "tâche refusée : type de tâche inconnu",
        "en": "job refused: unknown kind of job",
    },
    "portal.reject.too-large": {
        "fr": "tâche refusée : le message dépasse 64 Kio",
        "en": "job refused: the message is larger than 64 KiB",
    },
}
