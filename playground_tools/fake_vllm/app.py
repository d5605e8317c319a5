"""create_fake_app: the routes, /health, /v1/models and the /fake/* test controls."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from playground_tools.fake_vllm.bodies import json_body
from playground_tools.fake_vllm.chat import chat_completions
from playground_tools.fake_vllm.completions import completions
from playground_tools.fake_vllm.config import FakeConfig, FakeState, assign_config, request_state
from playground_tools.fake_vllm.errors import FakeAPIError
from playground_tools.fake_vllm.lora import load_lora_adapter, unload_lora_adapter
from playground_tools.fake_vllm.stream import install_log_filter
from playground_tools.fake_vllm.tokenize_routes import detokenize, tokenize


async def _health() -> Response:
    """GET /health: 200 with an empty body, as vLLM answers."""
    return Response(status_code=200)


async def _models(request: Request) -> JSONResponse:
    """GET /v1/models: the one served model, in vLLM's ModelCard shape."""
    state = request_state(request)
    name = state.config.served_model_name
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": state.created,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    card = {
        "id": name,
        "object": "model",
        "created": state.created,
        "owned_by": "vllm",
        "root": name,
        "parent": None,
        "max_model_len": state.config.max_model_len,
        "permission": [permission],
    }
    # vLLM lists each adapter with its path as root, the model as parent, and no max_model_len.
    adapters = [
        card | {"id": adapter, "root": path, "parent": name, "max_model_len": None}
        for adapter, path in state.config.lora_modules.items()
    ]
    return JSONResponse({"object": "list", "data": [card, *adapters]})


async def _get_config(request: Request) -> JSONResponse:
    """GET /fake/config: the live config."""
    return JSONResponse(request_state(request).config.model_dump())


async def _post_config(request: Request) -> JSONResponse:
    """POST /fake/config: merge a JSON object into the live config."""
    config = request_state(request).config
    changes = await json_body(request)
    if not isinstance(changes, dict):
        raise FakeAPIError(400, "The config patch must be a JSON object.")
    try:
        assign_config(config, changes)
    except ValidationError as exc:
        raise FakeAPIError(400, str(exc)) from exc
    request_state(request).fire_config_changed()
    return JSONResponse(config.model_dump())


async def _get_requests(request: Request) -> JSONResponse:
    """GET /fake/requests: every generation request body received, oldest first."""
    return JSONResponse(request_state(request).requests)


async def _delete_requests(request: Request) -> Response:
    """DELETE /fake/requests: clear the request log."""
    request_state(request).requests.clear()
    return Response(status_code=204)


async def _reset(request: Request) -> JSONResponse:
    """POST /fake/reset: the starting config again and an empty request log."""
    state = request_state(request)
    state.reset()
    return JSONResponse(state.config.model_dump())


async def _on_api_error(request: Request, exc: Exception) -> Response:
    """Render FakeAPIError as vLLM's error JSON."""
    assert isinstance(exc, FakeAPIError)
    return JSONResponse(exc.body(), status_code=exc.status)


def create_fake_app(config: FakeConfig | None = None) -> FastAPI:
    """A FastAPI app speaking vLLM's OpenAI dialect; `config` stays live (shared, not copied)."""
    app = FastAPI(title="fake vLLM", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = FakeState(config=config if config is not None else FakeConfig())
    app.add_exception_handler(FakeAPIError, _on_api_error)
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/health", _health),
        ("GET", "/v1/models", _models),
        ("POST", "/v1/completions", completions),
        ("POST", "/v1/chat/completions", chat_completions),
        ("POST", "/tokenize", tokenize),
        ("POST", "/detokenize", detokenize),
        ("POST", "/v1/load_lora_adapter", load_lora_adapter),
        ("POST", "/v1/unload_lora_adapter", unload_lora_adapter),
        ("GET", "/fake/config", _get_config),
        ("POST", "/fake/config", _post_config),
        ("GET", "/fake/requests", _get_requests),
        ("DELETE", "/fake/requests", _delete_requests),
        ("POST", "/fake/reset", _reset),
    ]
    for method, path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=[method])
    install_log_filter()
    return app


def fake_state(app: FastAPI) -> FakeState:
    """The live state (config and request log) of an app made by create_fake_app."""
    state = app.state.fake
    assert isinstance(state, FakeState)
    return state
