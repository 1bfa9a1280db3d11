"""The runtime's own rules, with a scripted transport: no server needed."""

from __future__ import annotations

import json

import httpx
import pytest

import iof
from iof._core import backoff, retryable


def problem(status: int, code: str, retry_after: str | None = "0") -> httpx.Response:
    headers = {"content-type": "application/problem+json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return httpx.Response(status, headers=headers, content=json.dumps({"status": status, "code": code}))


def ok(body: object) -> httpx.Response:
    return httpx.Response(200, json=body)


def scripted(*answers: httpx.Response) -> tuple[iof.IOFClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    client = iof.IOFClient(api_key="omk_test", base_url="http://omnirail.test",
                           http_client=httpx.Client(transport=httpx.MockTransport(handle)))
    return client, seen


JOURNEY = {"id": "jrn_1", "templateId": "t", "templateVersion": 1, "customerId": "c", "status": "created",
           "channel": "web", "priority": "normal", "currentStepIndex": 0, "totalSteps": 1, "completedSteps": 0,
           "sla": {"dueAt": None, "atRiskAt": None, "status": "none", "breachedAt": None, "stepDueAt": None,
                   "stepOverdue": False},
           "createdAt": "2024-01-15T10:30:00Z", "updatedAt": "2024-01-15T10:30:00Z"}


def test_429_and_5xx_are_retried_with_one_idempotency_key() -> None:
    client, seen = scripted(problem(429, "rate_limited"), problem(503, "overloaded"), ok({"data": JOURNEY}))
    journey = client.omni.journeys.create(template_id="t", customer_id="c")
    assert journey.id == "jrn_1"
    assert len(seen) == 3
    assert len({r.headers["idempotency-key"] for r in seen}) == 1
    assert seen[0].headers["x-api-key"] == "omk_test"
    assert json.loads(seen[0].content) == {"templateId": "t", "customerId": "c"}


def test_409_is_not_retried_but_for_a_concurrent_update() -> None:
    client, seen = scripted(problem(409, "step_not_current"))
    with pytest.raises(iof.ConflictError):
        client.omni.journeys.advance("jrn_1", completed_step_id="s")
    assert len(seen) == 1
    client, seen = scripted(problem(409, "concurrent_update"), ok({"data": JOURNEY}))
    client.omni.journeys.advance("jrn_1", completed_step_id="s")
    assert len(seen) == 2


def test_retries_stop_and_the_last_error_is_typed() -> None:
    client, seen = scripted(problem(503, "overloaded"), problem(503, "overloaded"), problem(503, "overloaded"))
    with pytest.raises(iof.ServiceUnavailableError) as e:
        client.omni.journeys.get("jrn_1")
    assert e.value.code == "overloaded" and len(seen) == 3
    client, seen = scripted(problem(429, "rate_limited"))
    with pytest.raises(iof.RateLimitError):
        client.omni.journeys.get("jrn_1", options=iof.RequestOptions(max_retries=0))


def test_the_rules() -> None:
    assert retryable(429, "rate_limited") and retryable(500, "internal_error") and retryable(503, "overloaded")
    assert not retryable(404, "not_found") and not retryable(422, "validation_failed")
    assert retryable(409, "concurrent_update") and not retryable(409, "already_decided")
    assert backoff(1, "2") == 2.0
    for attempt in range(1, 7):
        assert 0 <= backoff(attempt, None) <= min(8.0, 0.5 * 2 ** (attempt - 1))


def test_configuration_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNIRAIL_API_KEY", raising=False)
    monkeypatch.delenv("OMNIRAIL_BASE_URL", raising=False)
    monkeypatch.setenv("IOF_API_KEY", "omk_iof")
    client = iof.IOFClient()
    assert (client._core.api_key, client._core.base_url) == ("omk_iof", "http://127.0.0.1:8080")
    monkeypatch.setenv("OMNIRAIL_API_KEY", "omk_omnirail")
    monkeypatch.setenv("OMNIRAIL_BASE_URL", "https://omnirail.bank.example/")
    client = iof.IOFClient()
    assert (client._core.api_key, client._core.base_url) == ("omk_omnirail", "https://omnirail.bank.example")


def test_free_form_objects_pass_untouched() -> None:
    client, seen = scripted(ok({"data": JOURNEY}))
    client.omni.journeys.create(template_id="t", customer_id="c", context={"product_type": "murabaha", "n": [1]})
    assert json.loads(seen[0].content)["context"] == {"product_type": "murabaha", "n": [1]}
