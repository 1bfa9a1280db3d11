"""The SDK against a real server (.ci/sdk-tests starts one and sets OMNIRAIL_BASE_URL and
IOF_API_KEY)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import iof
from iof import IOFClient, NotFoundError, UnprocessableEntityError, webhooks

IN_A_WEEK = (datetime.now(timezone.utc) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
NEXT_WEEK = (datetime.now(timezone.utc) + timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")

SEED_TEMPLATE = {
    "id": "tmpl_onboarding_sme",
    "name": "SME Onboarding",
    "category": "onboarding",
    "steps": [
        {"id": "step_kyc", "name": "KYC Verification", "type": "kyc_check", "order": 1, "required": True},
        {"id": "step_docs", "name": "Document Collection", "type": "document_upload", "order": 2, "required": True,
         "documents_required": ["trade_license"]},
        {"id": "step_credit", "name": "Credit Assessment", "type": "approval", "order": 3, "required": True,
         "approval_role_required": "credit_analyst"},
    ],
}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def client() -> IOFClient:
    c = IOFClient()
    try:
        c.omni.templates.create(**SEED_TEMPLATE)
    except iof.ConflictError as e:
        assert e.code == "template_exists"
    c.omni.users.put("usr_rm_001", name="Ahmed Al-Rashidi", roles=["relationship_manager"])
    c.omni.users.put("usr_credit_001", name="Sara Al-Harbi", roles=["credit_analyst"])
    c.omni.users.put("usr_manager_001", name="Omar Haddad", roles=["credit_analyst", "manager"])
    return c


def test_seed_001_example_runs_as_written(client: IOFClient) -> None:
    client = IOFClient(api_key=os.environ["IOF_API_KEY"])

    # Create and advance journey
    journey = client.omni.journeys.create(
        template_id="tmpl_onboarding_sme",
        customer_id="ent_customer_456",
        channel="web",
        assignee_id="usr_rm_001",
    )
    client.omni.journeys.advance(
        journey.id,
        completed_step_id="step_kyc",
        step_outcome="passed",
        advanced_by="usr_rm_001",
    )

    # Grant a delegation
    client.omni.delegations.create(
        delegator_id="usr_manager_001",
        delegatee_id="usr_deputy_002",
        scope=["approvals", "journey_assign"],
        valid_from=IN_A_WEEK,
        valid_to=NEXT_WEEK,
    )

    # Send a notification
    notification = client.omni.notifications.create(
        recipient_id="ent_customer_456",
        channels=["push", "email"],
        template_code="JOURNEY_STEP_REQUIRED",
        template_data={"step_name": "Document Collection"},
    )

    assert journey.id.startswith("jrn_")
    assert notification.id.startswith("ntf_")
    timeline = client.omni.timeline.get(entity_id="ent_customer_456", entity_type="customer", per_page=50)
    assert any(e.event_type == "journey.advanced" for e in timeline.data)
    assert IOFClient is iof.OmnirailClient


def test_a_journey_through_its_approval_step_decided_by_a_deputy(client: IOFClient) -> None:
    journey = client.omni.journeys.create(
        template_id="tmpl_onboarding_sme",
        customer_id=unique("ent"),
        context={"requestedAmount": {"amount": 500000, "currency": "SAR"}},
        assignee_id="usr_rm_001",
    )
    client.omni.journeys.advance(journey.id, completed_step_id="step_kyc", advanced_by="usr_rm_001")
    waiting = client.omni.journeys.advance(journey.id, completed_step_id="step_docs", advanced_by="usr_rm_001")
    assert waiting.current_step is not None and waiting.current_step.id == "step_credit"
    approval_id = waiting.current_step.approval_id
    assert approval_id is not None
    approver = client.omni.approvals.get(approval_id).approvers[0].user_id
    delegation = client.omni.delegations.create(
        delegator_id=approver,
        delegatee_id="usr_deputy_002",
        scope=["approvals"],
        max_approval_amount={"amount": "1000000.00", "currency": "SAR"},
        valid_to=IN_A_WEEK,
    )
    decided = client.omni.approvals.decisions.create(
        approval_id, approver_id="usr_deputy_002", on_behalf_of=approver, decision="approve"
    )
    assert decided.status.value == "approved"
    assert decided.decisions[0].delegation_id == delegation.id
    done = client.omni.journeys.complete(journey.id, completed_by="usr_rm_001")
    assert done.status.value == "completed"


def test_errors_are_typed_and_carry_the_problem(client: IOFClient) -> None:
    with pytest.raises(NotFoundError) as e:
        client.omni.journeys.get("jrn_does_not_exist")
    assert (e.value.status, e.value.code, e.value.problem["status"]) == (404, "not_found", 404)
    with pytest.raises(UnprocessableEntityError) as bad:
        client.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id="bad id!")
    assert bad.value.problem["errors"][0]["field"] == "customerId"
    with pytest.raises(iof.AuthenticationError) as e401:
        IOFClient(api_key="omk_wrong").omni.journeys.list()
    assert e401.value.code == "invalid_api_key"
    # A misspelt field fails before anything is sent.
    with pytest.raises(TypeError):
        client.omni.journeys.create(template_id="t", customer_id="c", asignee_id="x")  # type: ignore[call-arg]


def test_a_key_with_scopes_does_what_they_name_and_is_refused_the_rest(client: IOFClient) -> None:
    created = client.omni.api_keys.create(name=unique("kiosk"), scopes=["onboarding:write", "journeys:read"])
    assert created.key is not None and created.key.startswith("omk_")
    assert created.scopes == ["journeys:read", "onboarding:write"] and created.status == "active"
    kiosk = IOFClient(api_key=created.key)
    kiosk.omni.journeys.list()
    with pytest.raises(iof.PermissionDeniedError) as e:
        kiosk.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id="ent_customer_456")
    assert (e.value.code, e.value.problem["requiredScope"]) == ("insufficient_scope", "journeys:write")
    assert client.omni.api_keys.get(created.id).key is None
    revoked = client.omni.api_keys.revoke(created.id)
    assert revoked.status == "revoked"


def test_a_retried_call_is_applied_once(client: IOFClient) -> None:
    keys: list[str] = []

    class Lossy(httpx.HTTPTransport):
        """Loses the first answer to a POST after the server has acted on it."""

        dropped = False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if request.method == "POST":
                keys.append(request.headers["idempotency-key"])
                if not Lossy.dropped:
                    Lossy.dropped = True
                    response.close()
                    raise httpx.ConnectError("connection reset", request=request)
            return response

    lossy = IOFClient(http_client=httpx.Client(transport=Lossy()))
    customer = unique("ent")
    journey = lossy.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id=customer)
    assert len(keys) == 2 and keys[0] == keys[1]
    listed = client.omni.journeys.list(customer_id=customer)
    assert listed.pagination["total"] == 1 and listed.data[0].id == journey.id


def test_lists_page_and_iterate_over_every_page(client: IOFClient) -> None:
    customer = unique("ent")
    for _ in range(23):
        client.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id=customer)
    first = client.omni.journeys.list(customer_id=customer, per_page=10)
    assert len(first.data) == 10 and first.pagination["total"] == 23 and first.has_next_page()
    assert len({j.id for j in first}) == 23


def test_the_async_client_pages_too(client: IOFClient) -> None:
    customer = unique("ent")
    for _ in range(12):
        client.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id=customer)

    async def walk() -> set[str]:
        async with iof.AsyncIOFClient() as a:
            page = await a.omni.journeys.list(customer_id=customer, per_page=5)
            return {j.id async for j in page}

    assert len(asyncio.run(walk())) == 12


def test_a_webhook_message_verifies_with_the_sdk(client: IOFClient) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append((body, dict(self.headers)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = client.omni.webhooks.endpoints.create(
            url=f"http://127.0.0.1:{server.server_address[1]}/hooks", event_types=["omni.journey.created"]
        )
        journey = client.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id=unique("ent"))
        deadline = time.monotonic() + 60
        while not any(journey.id.encode() in body for body, _ in received):
            assert time.monotonic() < deadline, "no webhook within a minute"
            time.sleep(0.05)  # polling for a state, not synchronisation
        body, headers = next((b, h) for b, h in received if journey.id.encode() in b)
        assert endpoint.secret is not None
        event = webhooks.verify(body, headers, endpoint.secret)
        assert event["type"] == "omni.journey.created"
        with pytest.raises(webhooks.WebhookVerificationError):
            webhooks.verify(body.replace(journey.id.encode(), b"jrn_forged"), headers, endpoint.secret)
        client.omni.webhooks.endpoints.delete(endpoint.id)
    finally:
        server.shutdown()


def test_an_event_stream_resumes_after_the_last_event_seen(client: IOFClient) -> None:
    customer = unique("ent")
    journey = client.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id=customer)
    client.omni.journeys.advance(journey.id, completed_step_id="step_kyc")
    seen = []
    for event in client.customers.stream(customer, last_event_id="0"):
        seen.append(event)
        if len(seen) == 2:
            break
    assert [e.data["eventType"] for e in seen] == ["journey.created", "journey.advanced"]
    assert seen[0].id == "1"
    after = next(iter(client.customers.stream(customer, last_event_id="1")))
    assert after.data["eventType"] == "journey.advanced"


def test_the_customers_onboarding_calls_go_through_a_session_client(client: IOFClient) -> None:
    configuration = unique("cfg")
    client.omni.onboarding.configurations.create(
        id=configuration, name="SME onboarding", template_id="tmpl_onboarding_sme", countries=["ALL"]
    )
    started = client.onboarding.start(country_code="SA", configuration_id=configuration,
                                      external_customer_id=unique("ent"))
    session = client.onboarding_session(started.token)
    assert session.session.get().current_step.id == "step_kyc"  # type: ignore[union-attr]
    after = session.add_data(step_id="step_kyc", fields={
        "firstName": "Layla", "lastName": "Al-Saud", "dateOfBirth": "1990-02-14", "nationality": "SA",
        "idNumber": "1234567890"})
    assert after.current_step is None or after.current_step.id != "step_kyc"
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    added = session.add_document(files={"file": ("licence.pdf", pdf, "application/pdf")},
                                 data={"stepId": "step_docs", "documentType": "trade_license"})
    assert added.document.document_type == "trade_license"


def test_the_async_client_streams_events(client: IOFClient) -> None:
    customer = unique("ent")
    client.omni.journeys.create(template_id="tmpl_onboarding_sme", customer_id=customer)

    async def first() -> iof.ServerSentEvent:
        async with iof.AsyncIOFClient() as a:
            async for event in a.customers.stream(customer, last_event_id="0"):
                return event
        raise AssertionError("the stream ended without an event")

    event = asyncio.run(first())
    assert event.data["eventType"] == "journey.created" and event.id == "1"
