"""Signed, read-only calls to the OVHcloud API through the official ``ovh`` client.

The client is synchronous (``requests``): each call runs in a worker thread with the
client's own timeout and an asyncio timeout around it. Every failure becomes one
:class:`ProviderError` whose ``kind`` says what the user can do about it.
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
}


class ProviderError(Exception):
    """A call failed: ``kind`` is one of KINDS, the message is safe to show."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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
    return "error"


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
    """One OVHcloud API session (read-only use)."""

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
        try:
            async with asyncio.timeout(self.timeout * 2 + 1):
                return await asyncio.to_thread(self.client.get, path)
        except TimeoutError:
            raise ProviderError("unreachable", f"GET {path}: no answer in time") from None
        except Exception as e:
            raise ProviderError(_kind(e), self.keys.scrub(f"GET {path}: {_why(e)}")) from None
