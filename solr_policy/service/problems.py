"""Problem details (RFC 9457): every error the service answers, with the rule that refused it."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

PROBLEM_TYPE = "urn:solr-policy:problem:"
TITLES = {
    400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """Raised by a handler: answered as problem details, never as a traceback."""

    def __init__(self, status: int, rule: str, detail: str, **extra: Any) -> None:
        super().__init__(f"{rule}: {detail}")
        self.status, self.rule, self.detail, self.extra = status, rule, detail, extra


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.rule,
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        "rule": problem.rule,
        **problem.extra,
    }
    if instance:
        body["instance"] = instance
    headers = {"WWW-Authenticate": 'Bearer realm="solr-policy"'} if problem.status == 401 else None
    return JSONResponse(body, status_code=problem.status, media_type="application/problem+json", headers=headers)
