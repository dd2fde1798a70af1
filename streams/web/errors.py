"""JSON responses and the errors views raise; every API error has the same shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web
from pydantic import BaseModel

from streams.web.models import ErrorBody, ItemErrors, ValidationErrorBody

JSON = "application/json"


def json_response(
    body: BaseModel | Sequence[BaseModel],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    if isinstance(body, BaseModel):
        data = body.model_dump_json().encode()
    else:
        data = b"[" + b",".join(item.model_dump_json().encode() for item in body) + b"]"
    return web.Response(body=data, status=status, content_type=JSON, headers=headers)


class ApiError(Exception):
    """Raised by views; rendered by the middleware as ``{"error", "message"[, "items"]}``."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        items: list[ItemErrors] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})
        self.items = items

    def response(self) -> web.Response:
        body: ErrorBody
        if self.items is not None:
            body = ValidationErrorBody(error=self.error, message=self.message, items=self.items)
        else:
            body = ErrorBody(error=self.error, message=self.message)
        return json_response(body, self.status, self.headers)


RETRY_AFTER_SECONDS = 1


def unavailable(message: str, error: str = "unavailable") -> ApiError:
    return ApiError(503, error, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def bad_request(message: str, error: str = "bad_request") -> ApiError:
    return ApiError(400, error, message)


def not_found(message: str, error: str = "not_found") -> ApiError:
    return ApiError(404, error, message)


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no route, wrong method, body too large) in the API's shape."""
    error = exc.reason.lower().replace(" ", "_") if exc.reason else "error"
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
    return json_response(ErrorBody(error=error, message=exc.reason), exc.status, headers)
