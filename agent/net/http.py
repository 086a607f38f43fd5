"""HTTP to a phone's management interface, defensively.

Every request has a timeout and a size cap; redirects are followed only on the same
host; logins are tried at most ``max_logins`` times per device and never again after
the device says it is locked (a lockout must not be made worse); parse XML only with
defusedxml. Secrets never appear in errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from agent.config import Credential

MAX_BYTES = 1_000_000
MAX_REDIRECTS = 3


class HttpError(Exception):
    """The device could not be read over HTTP; the message is safe to show."""


class LockedOut(HttpError):
    """The device refuses logins for now: stop trying."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def date(self) -> float | None:
        """The ``Date`` header as epoch seconds (a phone's clock), or None."""
        import email.utils
        from datetime import UTC

        try:
            when = email.utils.parsedate_to_datetime(self.headers.get("date", ""))
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` when it is not (HTML instead, say)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[...
            kind = self.headers.get("content-type", "unknown type")
            raise HttpError(f"{self.url}: expected JSON, got {kind}") from None

    def xml(self):
        """The body as XML, parsed safely (no entities, no external references)."""
        from defusedxml import ElementTree
        from defusedxml.common import DefusedXmlException

        try:
            return ElementTree.fromstring(self.body)
        # LookupError: an XML declaration naming an encoding Python does not know
        except (ElementTree.ParseError, DefusedXmlException, ValueError, LookupError) as e:
            raise HttpError(f"{self.url}: malformed XML ({type(e).__name__})") from None


@dataclass
class Session:
    """HTTP to one device: logins to try, the one that worked, and a failure budget."""

    ip: str
    logins: list[Credential]
    timeout: float = 3.0
    port: int = 80
    scheme: str = "http"
    max_logins: int = 2
    working: Credential | None = None
    challenge: str = ""  # the WWW-Authenticate that the working login answered (scheme)
    failed_logins: int = 0
    log: list[str] = field(default_factory=list)  # what was asked, without secrets
    answers: list[str] = field(default_factory=list)  # each request's HTTP status (or why not)
    transport: httpx.AsyncBaseTransport | None = None  # tests: httpx.MockTransport
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)  # a web login's session

    def base(self) -> str:
        return f"{self.scheme}://{self.ip}:{self.port}"

    async def get(self, path: str, params: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", path, params=params)

    def trail(self) -> list[str]:
        """The requests with their answers: ``GET /status.xml -> 200``."""
        return [
            f"{ask} -> {answer}" if answer else ask
            for ask, answer in zip(self.log, self.answers + [""] * len(self.log), strict=False)
        ]

    async def request(
        self, method: str, path: str, params: dict[str, str] | None = None, **kw: Any
    ) -> Reply:
        """One request; on 401 try the logins (within the budget) with the scheme asked."""
        reply = await self._send(method, path, params, self.working, self.challenge, **kw)
        if reply.status in (423, 429):
            raise LockedOut(f"{self.ip}: the phone refuses requests for now (locked)")
        if reply.status != 401 or self.working is not None:
            return reply
        challenge = reply.headers.get("www-authenticate", "")
        for cred in self.logins:
            if self.failed_logins >= self.max_logins:
                break
            reply = await self._send(method, path, params, cred, challenge, **kw)
            if reply.status in (423, 429) or _says_locked(reply):
                raise LockedOut(f"{self.ip}: the phone refuses logins for now (locked)")
            if reply.status not in (401, 403):
                self.working, self.challenge = cred, challenge
                return reply
            self.failed_logins += 1
        return reply

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        cred: Credential | None,
        challenge: str = "",
        **kw: Any,
    ) -> Reply:
        auth: httpx.Auth | None = None
        if cred is not None:
            if challenge.lower().startswith("digest"):
                auth = httpx.DigestAuth(cred.username, cred.password)
            else:
                auth = httpx.BasicAuth(cred.username, cred.password)
        url = urljoin(self.base() + "/", path.lstrip("/"))
        entry = len(self.log)
        self.log.append(f"{method} {path}")
        self.answers.extend([""] * (len(self.log) - len(self.answers)))
        try:
            reply = await self._follow(method, url, params, auth, **kw)
        except HttpError as e:
            self.answers[entry] = str(e).rpartition(": ")[2]
            raise
        self.answers[entry] = str(reply.status)  # what a technician wants to see (--verbose)
        return reply

    async def _follow(self, method, url, params, auth, **kw) -> Reply:
        """The request, with same-host redirects followed."""
        timeout = httpx.Timeout(self.timeout)
        try:
            async with httpx.AsyncClient(
                timeout=timeout,
                follow_redirects=False,
                verify=False,
                trust_env=False,
                transport=self.transport,
                cookies=self.cookies,
            ) as client:
                try:
                    for _ in range(MAX_REDIRECTS + 1):
                        reply = await self._read(client, method, url, params, auth, **kw)
                        location = reply.headers.get("location")
                        if reply.status not in (301, 302, 303, 307, 308) or not location:
                            return reply
                        target = urljoin(url, location)
                        if urlsplit(target).hostname != self.ip:
                            host = urlsplit(target).hostname
                            raise HttpError(f"{url}: redirects off the phone ({host})")
                        url, params = target, None
                        if reply.status in (301, 302, 303):  # as browsers do: GET, no body
                            method, kw = "GET", {}
                    raise HttpError(f"{url}: too many redirects")
                finally:
                    self.cookies = httpx.Cookies(client.cookies)
        except httpx.TimeoutException:
            raise HttpError(f"{url}: no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as e:
            raise HttpError(f"{url}: {type(e).__name__}") from None

    async def _read(self, client, method, url, params, auth, **kw) -> Reply:
        async with client.stream(method, url, params=params, auth=auth, **kw) as r:
            body = bytearray()
            async for chunk in r.aiter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    raise HttpError(f"{url}: answer larger than {MAX_BYTES} bytes")
            headers = {k.lower(): v for k, v in r.headers.items()}
            return Reply(r.status_code, headers, bytes(body), str(r.url))


def _says_locked(reply: Reply) -> bool:
    if reply.status not in (401, 403):
        return False
    text = reply.body[:4096].decode("utf-8", errors="replace").lower()
    return any(w in text for w in ("locked", "verrouill", "too many"))
