"""RFC 7807 problem responses: the middleware that turns every error into ``problem+json``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from epcis.errors import EPCISError, Problem

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "error_problem",
    "problem_document",
    "problem_response",
    "problems_middleware",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"
_IMPLEMENTATION = "epcisException:ImplementationException"

logger = logging.getLogger(__name__)

# EPCIS 2.0 REST bindings: the exception type each HTTP error status stands for.
_TYPE_BY_STATUS = {
    400: "epcisException:ValidationException",
    401: "epcisException:SecurityException",
    403: "epcisException:SecurityException",
    404: "epcisException:NoSuchResourceException",
    405: "epcisException:ValidationException",
    406: "epcisException:NotAcceptableException",
    409: "epcisException:ResourceAlreadyExistsException",
    413: "epcisException:CaptureLimitExceededException",
    414: "epcisException:URITooLongException",
    415: "epcisException:UnsupportedMediaTypeException",
    500: _IMPLEMENTATION,
    501: _IMPLEMENTATION,
}

_TITLES = {
    "epcisException:ValidationException": "The request or document is not valid",
    "epcisException:SecurityException": "Not authorised",
    "epcisException:NoSuchResourceException": "No such resource",
    "epcisException:NotAcceptableException": "Cannot answer in an acceptable format",
    "epcisException:ResourceAlreadyExistsException": "The resource already exists",
    "epcisException:CaptureLimitExceededException": "Capture limit exceeded",
    "epcisException:URITooLongException": "URI too long",
    "epcisException:UnsupportedMediaTypeException": "Unsupported media type",
    "epcisException:QueryParameterException": "Invalid query parameter",
    "epcisException:QueryTooLargeException": "Query result too large",
    "epcisException:QueryTooComplexException": "Query too complex",
    _IMPLEMENTATION: "Internal error",
}


def problem_document(
    problem_type: str,
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    problems: tuple[Problem, ...] = (),
) -> dict[str, Any]:
    """An RFC 7807 body; ``line``/``path``/``pointer`` locate the first problem in the input."""
    body: dict[str, Any] = {
        "type": problem_type,
        "title": _TITLES.get(problem_type, problem_type.rpartition(":")[2]),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    located = [p for p in problems if p.line is not None or p.path is not None]
    if located:
        body.update(_location(located[0]))
    if len(problems) > 1 or located:
        body["problems"] = [_problem_item(p) for p in problems]
    return body


def error_problem(error: EPCISError, instance: str | None = None) -> dict[str, Any]:
    """The problem body of a domain error (also used for capture-job ``errors``)."""
    return problem_document(
        error.problem_type, error.status, str(error), instance=instance, problems=error.problems
    )


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=int(body["status"]),
        body=json.dumps(body).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _location(problem: Problem) -> dict[str, Any]:
    where: dict[str, Any] = {}
    if problem.line is not None:
        where["line"] = problem.line
    if problem.path is not None:
        # A JSON document's path is a JSON Pointer (RFC 6901); an XML one is an element path.
        where["pointer" if problem.path.startswith("/") else "path"] = problem.path
    return where


def _problem_item(problem: Problem) -> dict[str, Any]:
    item: dict[str, Any] = {"reason": problem.reason}
    if problem.source is not None:
        item["source"] = problem.source
    item.update(_location(problem))
    return item


def _http_error_problem(error: web.HTTPException, instance: str) -> web.Response:
    problem_type = _TYPE_BY_STATUS.get(error.status, _IMPLEMENTATION)
    detail = error.text if error.text and error.content_type == "text/plain" else error.reason
    body = problem_document(problem_type, error.status, _clean(detail), instance=instance)
    headers = {
        name: value
        for name, value in error.headers.items()
        if name.lower() in {"www-authenticate", "allow", "location"}
    }
    return problem_response(body, headers)


def _clean(detail: str) -> str:
    # aiohttp's default texts look like "404: Not Found"; the status is already in the body.
    head, sep, tail = detail.partition(": ")
    return tail if sep and head.isdigit() else detail


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EPCISError as error:
        return problem_response(error_problem(error, request.path))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _http_error_problem(error, request.path)
    except Exception:
        # Logged once here with the traceback; the client learns nothing of the internals.
        logger.exception("unhandled error on %s %s", request.method, request.path)
        body = problem_document(
            _IMPLEMENTATION,
            500,
            "The server could not complete the request.",
            instance=request.path,
        )
        return problem_response(body)
