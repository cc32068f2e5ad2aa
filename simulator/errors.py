"""Octopus's error body: {"ErrorMessage": ..., "Errors": [...]} with 400/401/403/404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

PROBLEM = "There was a problem with your request."


class OctopusError(Exception):
    def __init__(self, status: int, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.errors)


def error_response(status: int, message: str, errors: list[str] | None = None) -> JSONResponse:
    return JSONResponse({"ErrorMessage": message, "Errors": errors or []}, status_code=status)


def bad_request(*errors: str) -> OctopusError:
    """Validation failures: a fixed headline, the reasons in Errors."""
    return OctopusError(400, PROBLEM, list(errors))


def not_found(resource_id: str) -> OctopusError:
    return OctopusError(404, f"The resource '{resource_id}' was not found.")


def forbidden(permission: str, detail: str | None = None) -> OctopusError:
    message = (
        "You do not have permission to perform this action. "
        f"Please contact your Octopus administrator. Missing permission: {permission}"
    )
    return OctopusError(403, message, [detail] if detail else [])


def unauthorized() -> JSONResponse:
    return error_response(
        401,
        "You must be logged in to perform this action. Please provide a valid API key or log in again.",
    )


async def handle_octopus_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OctopusError)
    return exc.response()


async def handle_http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 404:
        return error_response(404, "The resource you requested was not found.")
    if status == 405:
        return error_response(405, "The HTTP method is not allowed on this resource.")
    return error_response(status, str(getattr(exc, "detail", "Error")))
