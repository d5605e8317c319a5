"""Fixtures for the token-lens tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client, as the app's lifespan would hold one."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client
