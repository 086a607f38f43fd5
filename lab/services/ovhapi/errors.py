"""Errors as OVHcloud's API answers them: a JSON body and an HTTP status.

The body carries ``class`` (e.g. ``Client::NotFound``), ``message`` and ``httpCode``
(``"404 Not Found"``), plus ``errorCode`` for the authentication errors, which is what the
official clients switch on (python-ovh's ``Client.call()``: INVALID_KEY, INVALID_CREDENTIAL,
NOT_GRANTED_CALL...). Real answers seen in public bug reports look like
``{"errorCode":"INVALID_SIGNATURE","httpCode":"400 Bad Request","message":"Invalid signature"}``
and ``{"class":"Client::NotFound","message":"..."}``; the stand-in sends the union.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

CLASSES = {
    400: "Client::BadRequest",
    401: "Client::Unauthorized",
    403: "Client::Forbidden",
    404: "Client::NotFound",
    413: "Client::RequestEntityTooLarge",
    500: "Server::InternalServerError",
    501: "Server::NotImplemented",
}


def http_code(status: int) -> str:
    """``"403 Forbidden"``: the ``httpCode`` field of an error body."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class ApiError(Exception):
    """An answer other than success; ``body()`` is what the client receives."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "class": CLASSES.get(self.status, "Client::Error" if self.status < 500 else "Server"),
            "message": self.message,
            "httpCode": http_code(self.status),
        }
        if self.error_code:
            out["errorCode"] = self.error_code
        return out


def invalid_key() -> ApiError:
    return ApiError(403, "Invalid application key", "INVALID_KEY")


def invalid_credential() -> ApiError:
    return ApiError(403, "This credential does not exist", "INVALID_CREDENTIAL")


def invalid_signature() -> ApiError:
    return ApiError(400, "Invalid signature", "INVALID_SIGNATURE")


def query_time_out() -> ApiError:
    # assumed: the code and wording of a timestamp outside the window are not in our sources.
    return ApiError(400, "Query out of time", "QUERY_TIME_OUT")


def not_logged_in() -> ApiError:
    # assumed: an unsigned call (no X-Ovh-Consumer / -Timestamp / -Signature) to a signed route.
    return ApiError(401, "You must login first")


def not_granted() -> ApiError:
    return ApiError(403, "This call has not been granted", "NOT_GRANTED_CALL")


def not_found(key: str, value: str) -> ApiError:
    return ApiError(404, f"The requested object ({key} = {value}) does not exist")


def invalid_url() -> ApiError:
    # Wording as public reports quote it (terraform-provider-ovh docs: `Client::NotFound: "Got an
    # invalid (or empty) URL"`); assumed to be the same for a wrong method on a known path.
    return ApiError(404, "Got an invalid (or empty) URL")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
