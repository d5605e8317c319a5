"""Schemathesis over the whole JSON API: no server errors, every answer as the OpenAPI says.

Bounded in time: a few generated cases per operation, no shrinking, one app served over HTTP
with the fake model servers answering at once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.support import ThreadedServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30
# The whole run must stay well under this (a CI step, not a soak test).
TIME_LIMIT_SECONDS = 240


@pytest.fixture
def served(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> Iterator[tuple[str, dict[str, object]]]:
    """The app on a real port, fakes answering at once with a few words; its OpenAPI document."""
    for fake in (base_server, chat_server):
        fake.config.answer_words = 3
        fake.config.token_delay = 0
    app = create_app(settings, models)
    with ThreadedServer(app) as server:
        yield server.url, app.openapi()


def stored_ids(url: str) -> dict[str, object]:
    """A finished comparison with a vote, so that generated cases can use real ids."""
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.post("/api/v1/comparisons", json={"prompt": "hi", "system": "Be brief."})
        assert created.status_code == 201, created.text
        data = created.json()
        voted = client.post(
            f"/api/v1/comparisons/{data['id']}/votes", json={"winner": "a", "rater": "ana"}
        )
        assert voted.status_code == 201, voted.text
    return {"conversation_id": data["id"], "generation_id": data["turns"][0]["b"]["id"]}


def test_the_api_answers_as_its_openapi_document_says(
    served: tuple[str, dict[str, object]],
) -> None:
    url, document = served
    schema = schemathesis.openapi.from_dict(document)
    real_ids = stored_ids(url)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy(), real=st.booleans())
        def check(case: schemathesis.Case, real: bool) -> None:
            if real and case.path_parameters:  # half the cases reach a stored row
                for name in case.path_parameters:
                    if name in real_ids:
                        case.path_parameters[name] = real_ids[name]
            response = case.call_and_validate(base_url=url, checks=CHECKS)
            statuses[response.status_code] += 1

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    elapsed = time.monotonic() - started
    print(f"{sum(statuses.values())} requests in {elapsed:.1f} s: {sorted(statuses.items())}")
    assert not failures, "\n\n".join(failures)
    assert statuses[201] > 0, "no case got through to create anything"
    assert elapsed < TIME_LIMIT_SECONDS, f"took {elapsed:.0f} s"
