"""Omnirail's Python SDK: `IOFClient(api_key=...)`, then `client.omni.journeys.create(...)`.

The resources (`_resources.py`) and models (`_models.py`) are generated from the OpenAPI
document; this file, `_core.py` and `webhooks.py` are the handwritten part."""

from __future__ import annotations

import httpx

from . import _models as models
from . import webhooks
from ._core import (
    OMIT,
    APIConnectionError,
    APIError,
    AsyncCore,
    AsyncPage,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    Core,
    GoneError,
    InternalServerError,
    NotFoundError,
    Page,
    PermissionDeniedError,
    RateLimitError,
    RequestOptions,
    ServerSentEvent,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from ._resources import Api, AsyncApi, AsyncSession, Session

__all__ = [
    "OMIT", "APIConnectionError", "APIError", "AsyncIOFClient", "AsyncOmnirailClient", "AsyncPage",
    "AuthenticationError", "BadRequestError", "ConflictError", "GoneError", "IOFClient",
    "InternalServerError", "NotFoundError", "OmnirailClient", "Page", "PermissionDeniedError",
    "RateLimitError", "RequestOptions", "ServerSentEvent", "ServiceUnavailableError",
    "UnprocessableEntityError", "models", "webhooks",
]


class OmnirailClient(Api):
    """A client of the API with the tenant's key (`api_key`, else `OMNIRAIL_API_KEY`, else
    `IOF_API_KEY`) at `base_url` (else `OMNIRAIL_BASE_URL`, else http://127.0.0.1:8080); for a
    person's calls, with their `actor_token` from the tenant's identity provider."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 2, actor_token: str | None = None, headers: dict[str, str] | None = None,
                 http_client: httpx.Client | None = None) -> None:
        super().__init__(Core(api_key, base_url, timeout, max_retries, actor_token, headers, http_client))

    def onboarding_session(self, session_token: str) -> Session:
        """The customer-facing onboarding calls (`/omni/*`) of one session."""
        return Session(self._core, session_token)

    def close(self) -> None:
        self._core.http.close()

    def __enter__(self) -> OmnirailClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncOmnirailClient(AsyncApi):
    """As `OmnirailClient`, with `await` on every call."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 2, actor_token: str | None = None, headers: dict[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        super().__init__(AsyncCore(api_key, base_url, timeout, max_retries, actor_token, headers, http_client))

    def onboarding_session(self, session_token: str) -> AsyncSession:
        return AsyncSession(self._core, session_token)

    async def aclose(self) -> None:
        await self._core.http.aclose()

    async def __aenter__(self) -> AsyncOmnirailClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


# Seed 001's names for the clients: the same classes.
IOFClient = OmnirailClient
AsyncIOFClient = AsyncOmnirailClient
