"""Signed calls to the OVHcloud API through the official ``ovh`` client: reads for the
diagnosis, and the few writes the remedies make (``PUT .../options``, ``POST
.../phone/reboot``, ``POST .../phone/resetConfig``), only after a person's consent.

The client is synchronous (``requests``): each call runs in a worker thread with the
client's own timeout and an asyncio timeout around it. Every failure becomes one
:class:`ProviderError` whose ``kind`` says what the user can do about it; secrets are
scrubbed from every message.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from agent.provider.credentials import ApiKeys

# kind -> what it means (the probe turns it into provider.access)
KINDS = {
    "refused": "the API refused the keys",
    "not-granted": "the keys are not allowed to read /telephony",
    "not-found": "no such object",
    "unreachable": "the API could not be reached",
    "error": "the API answered with an error",
    "not-supported": "the API does not offer this for this line or phone (HTTP 501)",
}


class ProviderError(Exception):
    """A call failed: ``kind`` is one of KINDS, the message is safe to show."""

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status  # the HTTP status when the API answered

    @property
    def surely_not_applied(self) -> bool:
        """True when the API certainly did not act on a write: it refused the keys or the
        request (4xx) or does not offer it (501). A timeout, a lost connection or another
        5xx leaves it unknown."""
        if self.kind in ("refused", "not-granted", "not-found", "not-supported"):
            return True
        return self.status is not None and 400 <= self.status < 500


def _kind(exc: BaseException) -> str:
    from ovh import exceptions as e

    if isinstance(exc, e.InvalidKey | e.InvalidCredential | e.NotCredential):
        return "refused"
    if isinstance(exc, e.BadParametersError) and "signature" in str(exc).lower():
        return "refused"  # a wrong application secret
    if isinstance(exc, e.NotGrantedCall | e.Forbidden):
        return "not-granted"
    if isinstance(exc, e.ResourceNotFoundError):
        return "not-found"
    if isinstance(exc, e.HTTPError | e.NetworkError | TimeoutError | OSError):
        return "unreachable"
    if _status(exc) == 501:
        return "not-supported"
    return "error"


def _status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _why(exc: BaseException) -> str:
    """The most useful words of an ``ovh`` exception: the API's message, else the cause."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    if len(exc.args) > 1 and isinstance(exc.args[1], BaseException):
        cause = exc.args[1]
        text = f"{text}: {type(cause).__name__}"
        if "CERTIFICATE_VERIFY_FAILED" in str(cause):
            text += " (certificate not trusted)"
    return text.split("\nOVH-Query-ID")[0]


def endpoint_name(endpoint: str) -> str:
    """A name the ``ovh`` client accepts for ``endpoint``: one of its regions, or an
    ``https://`` URL registered under its own name (the client only knows regions)."""
    from ovh.client import ENDPOINTS

    if endpoint in ENDPOINTS:
        return endpoint
    url = urlsplit(endpoint)
    if url.scheme != "https" or not url.hostname:
        raise ProviderError(
            "refused",
            f"endpoint {endpoint!r}: use ovh-eu, ovh-ca, ovh-us or an https:// URL",
        )
    ENDPOINTS.setdefault(endpoint, endpoint.rstrip("/"))
    return endpoint


class Api:
    """One OVHcloud API session."""

    def __init__(self, keys: ApiKeys, timeout: float) -> None:
        import ovh

        self.keys = keys
        self.timeout = timeout
        try:
            self.client = ovh.Client(
                endpoint=endpoint_name(keys.endpoint),
                application_key=keys.application_key,
                application_secret=keys.application_secret,
                consumer_key=keys.consumer_key,
                timeout=(timeout, timeout),
            )
        except ovh.exceptions.APIError as e:  # InvalidRegion, InvalidConfiguration
            raise ProviderError("refused", keys.scrub(_why(e))) from None
        if keys.ca_file:
            # The client has no option for it; and requests would let REQUESTS_CA_BUNDLE
            # (and proxies) from the environment override it: an own CA means a direct line.
            self.client._session.verify = keys.ca_file
            self.client._session.trust_env = False

    async def get(self, path: str) -> Any:
        """GET ``path`` (e.g. ``/telephony``); ProviderError on any failure."""
        return await self._call("GET", path, self.client.get)

    async def put(self, path: str, body: dict[str, Any]) -> Any:
        """PUT ``body`` (a JSON object) to ``path``; ProviderError on any failure."""
        return await self._call("PUT", path, self.client.put, **body)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST ``body`` (a JSON object, or nothing) to ``path``; ProviderError on failure."""
        return await self._call("POST", path, self.client.post, **(body or {}))

    async def _call(self, method: str, path: str, fn: Any, **body: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout * 2 + 1):
                return await asyncio.to_thread(fn, path, **body)
        except TimeoutError:
            raise ProviderError("unreachable", f"{method} {path}: no answer in time") from None
        except Exception as e:
            message = self.keys.scrub(f"{method} {path}: {_why(e)}")
            raise ProviderError(_kind(e), message, _status(e)) from None
