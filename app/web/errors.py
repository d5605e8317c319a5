"""Turn domain and validation errors into clear 4xx answers: JSON for /api, HTML for pages."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import PlaygroundError
from app.web.templating import templates


def describe_validation_errors(exc: RequestValidationError) -> str:
    """One readable sentence per problem, e.g. 'params.temperature: must be <= 2'."""
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            message, location = "the request body is not valid JSON", ""
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts) or "invalid request"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """JSON for the API; for htmx a flash message swapped into the page's #flash area."""
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    if status in DENIED_TITLES and not request.headers.get("HX-Request"):
        # A page opened in the browser: a whole page saying why (and, for 429, when again).
        page = templates.get_template("denied.html").render(
            title=DENIED_TITLES[status], message=message
        )
        return HTMLResponse(page, status_code=status, headers=headers)
    response = templates.TemplateResponse(
        request, "_flash.html", {"message": message, "level": "error"}, status_code=status,
        headers=headers,
    )  # fmt: skip
    if request.headers.get("HX-Request"):
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


# Statuses a browser gets a whole page for (team mode: sign-in, roles and limits).
DENIED_TITLES = {401: "Sign in first", 403: "Not allowed", 429: "Too many requests"}


def not_found_page(message: str) -> HTMLResponse:
    """A whole page for a missing URL opened in the browser."""
    page = templates.get_template("not_found.html").render(message=message)
    return HTMLResponse(page, status_code=404)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unexpected errors still become 500s (and get logged)."""

    @app.exception_handler(PlaygroundError)
    async def _domain(request: Request, exc: PlaygroundError) -> Response:
        if (
            exc.status_code == 404
            and not _is_api(request)
            and not request.headers.get("HX-Request")
        ):
            return not_found_page(exc.message)
        return error_response(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message = describe_validation_errors(exc)
        if _is_api(request):
            return JSONResponse(
                {"detail": message, "errors": jsonable_errors(exc)}, status_code=422
            )
        return error_response(request, 422, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Still a 500, and still logged (Starlette re-raises after answering), in the shape the
        # OpenAPI document gives every error.
        return error_response(request, 500, "internal server error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if _is_api(request) or exc.status_code < 400:
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        if exc.status_code == 404 and not request.headers.get("HX-Request"):
            return not_found_page(str(exc.detail))
        return error_response(request, exc.status_code, str(exc.detail), exc.headers)


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, object]]:
    """Validation errors without the raw input (which may be huge or not JSON-serialisable)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
