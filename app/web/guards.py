"""Request guards shared by the JSON routers."""

from __future__ import annotations

from fastapi import HTTPException, Request, status


async def require_json(request: Request) -> None:
    """Only JSON bodies: a cross-site HTML form cannot send application/json without CORS."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json"
        )
