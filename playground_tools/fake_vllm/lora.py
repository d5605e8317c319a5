"""Loading and unloading LoRA adapters at runtime, with vLLM's checks and messages."""

from __future__ import annotations

import asyncio
import os

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from playground_tools.fake_vllm.bodies import json_body, validate
from playground_tools.fake_vllm.config import request_state
from playground_tools.fake_vllm.errors import FakeAPIError

_ROUTE_NOT_FOUND = {"detail": "Not Found"}


class _LoadLoraRequest(BaseModel):
    """vLLM's LoadLoRAAdapterRequest (the fields the fake reads)."""

    lora_name: str = ""
    lora_path: str = ""
    load_inplace: bool = False


class _UnloadLoraRequest(BaseModel):
    """vLLM's UnloadLoRAAdapterRequest."""

    lora_name: str = ""


async def load_lora_adapter(request: Request) -> Response:
    """POST /v1/load_lora_adapter: serve one more adapter, with vLLM's checks and messages."""
    config = request_state(request).config
    if not config.runtime_lora_updating:
        return JSONResponse(_ROUTE_NOT_FOUND, status_code=404)
    req = validate(_LoadLoraRequest, await json_body(request))
    name, path = req.lora_name, req.lora_path
    if not name or not path:
        raise FakeAPIError(400, "Both 'lora_name' and 'lora_path' must be provided.")
    if name == config.served_model_name:
        raise FakeAPIError(400, f"The lora adapter '{name}' conflicts with a served base model.")
    if name in config.lora_modules and not req.load_inplace:
        raise FakeAPIError(
            400,
            f"The lora adapter '{name}' has already been loaded. If you want to load the "
            "adapter in place, set 'load_inplace' to True.",
        )
    # vLLM loads an absolute path as it is; the fake accepts any other (a hub id) unchecked.
    config_file = os.path.join(path, "adapter_config.json")
    if path.startswith("/") and not await asyncio.to_thread(os.path.isfile, config_file):
        raise FakeAPIError(404, f"Loading lora {name} failed: No adapter found for <path>")
    config.lora_modules = config.lora_modules | {name: path}
    return Response(f"Success: LoRA adapter '{name}' added successfully.", status_code=200)


async def unload_lora_adapter(request: Request) -> Response:
    """POST /v1/unload_lora_adapter: stop serving an adapter."""
    config = request_state(request).config
    if not config.runtime_lora_updating:
        return JSONResponse(_ROUTE_NOT_FOUND, status_code=404)
    req = validate(_UnloadLoraRequest, await json_body(request))
    name = req.lora_name
    if not name:
        raise FakeAPIError(400, "'lora_name' needs to be provided to unload a LoRA adapter.")
    if name not in config.lora_modules:
        raise FakeAPIError(404, f"The lora adapter '{name}' cannot be found.")
    config.lora_modules = {k: v for k, v in config.lora_modules.items() if k != name}
    return Response(f"Success: LoRA adapter '{name}' removed successfully.", status_code=200)
