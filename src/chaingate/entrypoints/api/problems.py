"""RFC 9457 problem details: every error answer has a stable `code` and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from chaingate.domain.errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details as ChainGate sends them (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str = Field(description="Stable machine-readable reason; branch on this.")
    detail: str
    instance: str | None = None
    field: str | None = Field(default=None, description="The request field at fault, if one.")
    errors: list[dict[str, str]] | None = Field(
        default=None, description="Each invalid field with its message (validation_error)."
    )


# Inlined rather than referenced: FastAPI only registers component schemas it generates itself.
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` documenting that these statuses answer with a problem document."""
    return {
        status: {"description": _TITLES.get(status, "Error"), "content": _PROBLEM_CONTENT}
        for status in statuses
    }


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://chaingate.dev/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    answer_headers = dict(headers or {})
    if status == 401:
        answer_headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=answer_headers)


class ApiProblem(Exception):
    """Raised by the API layer itself (auth, scopes, bad headers, rate limits)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = dict(headers or {})


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
        # The standard members win: an extension never overrides type, status or code.
        extra = {**exc.extra, **extra}
        for member in ("type", "title", "status", "code", "detail", "instance"):
            extra.pop(member, None)
        return problem(exc.status, exc.code, exc.detail, instance=request.url.path, **extra)

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(
            exc.status, exc.code, exc.detail, instance=request.url.path, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(
                400, "malformed_json", "request body is not valid JSON", instance=request.url.path
            )
        detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
        return problem(422, "validation_error", detail, instance=request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # The framework's "error parsing the body" (a ValueError json.loads raised that is
            # not a JSONDecodeError). The body guard answers these first; this keeps the code
            # stable should any reach the framework.
            return problem(
                400, "malformed_json", "request body is not valid JSON", instance=request.url.path
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # Keep the framework's headers: a 405 must say which methods are `Allow`ed.
        return problem(
            exc.status_code, code, str(exc.detail), instance=request.url.path, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500, "internal_error", "an unexpected error occurred", instance=request.url.path
        )
