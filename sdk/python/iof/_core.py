"""The handwritten runtime of the SDK: configuration, one HTTP call with its retries, typed
errors, idempotency keys, pages, event streams. The resources in `_resources.py` (generated
from the OpenAPI document by sdk/codegen) call `Core.call` and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

T = TypeVar("T")


class _Omit:
    """An argument not given: left out of the body or query, unlike `None` (JSON null)."""

    def __repr__(self) -> str:
        return "OMIT"

    def __bool__(self) -> bool:
        return False


OMIT: Any = _Omit()


@dataclass
class RequestOptions:
    """Per call: override the client's settings, or give the call's own `Idempotency-Key`."""

    timeout: float | None = None
    max_retries: int | None = None
    idempotency_key: str | None = None
    actor_token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class APIError(Exception):
    """An error answer of the API: `status`, its stable `code`, and the whole problem
    (RFC 9457 problem details)."""

    def __init__(self, problem: dict[str, Any], headers: httpx.Headers | None = None) -> None:
        self.status: int = problem["status"]
        self.code: str = problem["code"]
        self.problem = problem
        self.headers = headers
        super().__init__(f"{self.status} {self.code}: {problem.get('detail') or problem.get('title') or ''}")


class BadRequestError(APIError): ...


class AuthenticationError(APIError): ...


class PermissionDeniedError(APIError): ...


class NotFoundError(APIError): ...


class ConflictError(APIError): ...


class GoneError(APIError): ...


class UnprocessableEntityError(APIError): ...


class RateLimitError(APIError): ...


class InternalServerError(APIError): ...


class ServiceUnavailableError(APIError): ...


class APIConnectionError(Exception):
    """The call never got an answer: the connection failed, or it timed out."""


_KINDS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}


def retryable(status: int, code: str | None) -> bool:
    """Whether a failed attempt may be tried again: the server did nothing it would not redo."""
    if status == 409:
        return code == "concurrent_update"
    return status in (408, 429) or status >= 500


def backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds before retry `attempt` (1, 2, ...): `Retry-After` when given, else exponential
    backoff from half a second with full jitter, at most 8 s."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), 60.0)
        except ValueError:
            pass
    return random.uniform(0, min(8.0, 0.5 * 2 ** (attempt - 1)))


def _problem(res: httpx.Response) -> dict[str, Any]:
    try:
        parsed = res.json()
        if isinstance(parsed, dict) and isinstance(parsed.get("code"), str):
            return {**parsed, "status": res.status_code}
    except ValueError:
        pass
    return {"status": res.status_code, "code": f"http_{res.status_code}", "title": res.reason_phrase,
            "detail": res.text[:500]}


def _body(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """A request body from keyword arguments: checked by its model (a misspelt or mistyped
    field fails before anything is sent), camelCase on the wire, what was not given left out,
    free-form objects (`context`, `template_data`) untouched."""
    given = {k: v for k, v in fields.items() if v is not OMIT}
    return model.model_validate(given).model_dump(mode="json", by_alias=True, exclude_unset=True)


@dataclass
class Call:
    """One operation, as the generated resources describe it."""

    method: str
    path: str
    answer: str
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    multipart: tuple[dict[str, Any], dict[str, str] | None] | None = None
    idempotent: bool = False
    bearer: str | None = None
    auth: str = "key"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerSentEvent:
    """One event of a stream; `id` resumes after it (`last_event_id`)."""

    data: Any
    id: str | None = None
    event: str | None = None


def _query(query: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in query.items():
        if value is OMIT or value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "value"):  # an enum member
            value = value.value
        out[key] = str(value)
    return out


class _Base:
    def __init__(self, api_key: str | None, base_url: str | None, timeout: float, max_retries: int,
                 actor_token: str | None, headers: dict[str, str] | None) -> None:
        self.api_key = api_key or os.environ.get("OMNIRAIL_API_KEY") or os.environ.get("IOF_API_KEY")
        self.base_url = (base_url or os.environ.get("OMNIRAIL_BASE_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.actor_token = actor_token
        self.headers = dict(headers or {})

    def _prepare(self, call: Call, options: RequestOptions | None, accept: str) -> tuple[str, dict, dict]:
        o = options or RequestOptions()
        path = call.path
        for name, value in call.path_params.items():
            path = path.replace("{" + name + "}", httpx.URL("/" + str(value)).raw_path.decode()[1:].replace("/", "%2F"))
        headers = {"accept": accept, **self.headers, **call.headers, **o.headers}
        if call.bearer:
            headers["authorization"] = f"Bearer {call.bearer}"
        elif call.auth != "none":
            if not self.api_key:
                raise ValueError("no API key: give api_key, or set OMNIRAIL_API_KEY or IOF_API_KEY")
            headers["x-api-key"] = self.api_key
            actor = o.actor_token or self.actor_token
            if actor:
                headers["authorization"] = f"Bearer {actor}"
        if call.idempotent:
            # One key per call, the same on every retry: the server applies the call once.
            headers["idempotency-key"] = o.idempotency_key or str(uuid.uuid4())
        kwargs: dict[str, Any] = {"params": _query(call.query)}
        if call.multipart is not None:
            kwargs["files"], kwargs["data"] = call.multipart
        elif call.body is not None:
            kwargs["json"] = call.body
        return self.base_url + path, headers, kwargs

    def _limits(self, options: RequestOptions | None, stream: bool) -> tuple[int, float | None]:
        """How many retries a call may make, and its timeout (none for a stream)."""
        o = options or RequestOptions()
        retries = self.max_retries if o.max_retries is None else o.max_retries
        return retries, None if stream else (o.timeout or self.timeout)

    def _read(self, call: Call, res: httpx.Response, model: Any) -> Any:
        if call.answer == "none" or res.status_code == 204:
            return None
        payload = res.json()
        if call.answer == "data":
            payload = payload["data"]
        if model is None:
            return payload
        return TypeAdapter(model).validate_python(payload)


def _wait_after_failure(call: Call, url: str, error: httpx.TransportError, attempt: int, retries: int) -> float:
    """The wait before trying again after the connection failed; raises once retries are spent.
    The sync and async runtimes share it, so they retry alike."""
    if attempt < retries:
        return backoff(attempt + 1, None)
    raise APIConnectionError(f"{call.method} {url}: {error}") from error


def _wait_after_refusal(res: httpx.Response, attempt: int, retries: int) -> float:
    """The wait before trying again after an error answer that is worth retrying; raises the
    answer's error otherwise, or once retries are spent."""
    problem = _problem(res)
    if attempt < retries and retryable(res.status_code, problem.get("code")):
        return backoff(attempt + 1, res.headers.get("retry-after"))
    raise _KINDS.get(res.status_code, APIError)(problem, res.headers)


class Core(_Base):
    """The synchronous runtime, on one `httpx.Client`."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, timeout: float = 30.0,
                 max_retries: int = 2, actor_token: str | None = None, headers: dict[str, str] | None = None,
                 http_client: httpx.Client | None = None) -> None:
        super().__init__(api_key, base_url, timeout, max_retries, actor_token, headers)
        self.http = http_client or httpx.Client()

    def send(self, call: Call, options: RequestOptions | None = None, accept: str = "application/json",
             stream: bool = False) -> httpx.Response:
        url, headers, kwargs = self._prepare(call, options, accept)
        retries, timeout = self._limits(options, stream)
        for attempt in range(retries + 1):
            try:
                req = self.http.build_request(call.method, url, headers=headers, timeout=timeout, **kwargs)
                res = self.http.send(req, stream=stream)
            except httpx.TransportError as e:
                time.sleep(_wait_after_failure(call, url, e, attempt, retries))
                continue
            if res.is_success:
                return res
            if stream:
                res.read()
            time.sleep(_wait_after_refusal(res, attempt, retries))
        raise AssertionError("unreachable")

    def call(self, call: Call, model: Any, options: RequestOptions | None = None) -> Any:
        return self._read(call, self.send(call, options), model)

    def paginate(self, call: Call, item: type[T], options: RequestOptions | None = None) -> Page[T]:
        raw = self.call(call, None, options)
        items = TypeAdapter(list[item]).validate_python(raw["data"])  # type: ignore[valid-type]
        fetch = lambda page: self.paginate(  # noqa: E731
            replace(call, query={**call.query, "page": page}), item, options)
        return Page(items, raw["pagination"], fetch)

    def stream(self, call: Call, last_event_id: str | None, options: RequestOptions | None) -> Iterator[ServerSentEvent]:
        o = options or RequestOptions()
        headers = {**o.headers, **({"last-event-id": last_event_id} if last_event_id else {})}
        opts = RequestOptions(o.timeout, 0, o.idempotency_key, o.actor_token, headers)
        res = self.send(call, opts, "text/event-stream", stream=True)
        parser = _Parser()
        try:
            for line in res.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event
        finally:
            res.close()


class AsyncCore(_Base):
    """The asynchronous runtime, on one `httpx.AsyncClient`."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, timeout: float = 30.0,
                 max_retries: int = 2, actor_token: str | None = None, headers: dict[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None) -> None:
        super().__init__(api_key, base_url, timeout, max_retries, actor_token, headers)
        self.http = http_client or httpx.AsyncClient()

    async def send(self, call: Call, options: RequestOptions | None = None, accept: str = "application/json",
                   stream: bool = False) -> httpx.Response:
        url, headers, kwargs = self._prepare(call, options, accept)
        retries, timeout = self._limits(options, stream)
        for attempt in range(retries + 1):
            try:
                req = self.http.build_request(call.method, url, headers=headers, timeout=timeout, **kwargs)
                res = await self.http.send(req, stream=stream)
            except httpx.TransportError as e:
                await asyncio.sleep(_wait_after_failure(call, url, e, attempt, retries))
                continue
            if res.is_success:
                return res
            if stream:
                await res.aread()
            await asyncio.sleep(_wait_after_refusal(res, attempt, retries))
        raise AssertionError("unreachable")

    async def call(self, call: Call, model: Any, options: RequestOptions | None = None) -> Any:
        return self._read(call, await self.send(call, options), model)

    async def paginate(self, call: Call, item: type[T], options: RequestOptions | None = None) -> AsyncPage[T]:
        raw = await self.call(call, None, options)
        items = TypeAdapter(list[item]).validate_python(raw["data"])  # type: ignore[valid-type]

        async def fetch(page: int) -> AsyncPage[T]:
            return await self.paginate(replace(call, query={**call.query, "page": page}), item, options)

        return AsyncPage(items, raw["pagination"], fetch)

    async def stream(self, call: Call, last_event_id: str | None,
                     options: RequestOptions | None) -> AsyncIterator[ServerSentEvent]:
        o = options or RequestOptions()
        headers = {**o.headers, **({"last-event-id": last_event_id} if last_event_id else {})}
        opts = RequestOptions(o.timeout, 0, o.idempotency_key, o.actor_token, headers)
        res = await self.send(call, opts, "text/event-stream", stream=True)
        parser = _Parser()
        try:
            async for line in res.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event
        finally:
            await res.aclose()


class _Parser:
    """Server-Sent Events, line by line: an event ends at an empty line; comments (the
    server's heartbeats) are skipped; `data` is parsed as JSON when it is JSON."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.id: str | None = None
        self.event: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        if line == "":
            done = None
            if self.data:
                text = "\n".join(self.data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                done = ServerSentEvent(value, self.id, self.event)
            self.data, self.id, self.event = [], None, None
            return done
        if line.startswith(":"):
            return None
        name, _, value_text = line.partition(":")
        value_text = value_text[1:] if value_text.startswith(" ") else value_text
        if name == "data":
            self.data.append(value_text)
        elif name == "id":
            self.id = value_text
        elif name == "event":
            self.event = value_text
        return None


class Page(Generic[T]):
    """One page of a list, with the way to the rest: iterating walks every item of every page
    from this one on."""

    def __init__(self, data: list[T], pagination: dict[str, int], fetch: Callable[[int], Page[T]]) -> None:
        self.data = data
        self.pagination = pagination
        self._fetch = fetch

    def has_next_page(self) -> bool:
        p = self.pagination
        return bool(self.data) and p["page"] * p["perPage"] < p["total"]

    def next_page(self) -> Page[T]:
        return self._fetch(self.pagination["page"] + 1)

    def __iter__(self) -> Iterator[T]:
        page: Page[T] = self
        while True:
            yield from page.data
            if not page.has_next_page():
                return
            page = page.next_page()


class AsyncPage(Generic[T]):
    """As `Page`, for the async client: `async for item in page`."""

    def __init__(self, data: list[T], pagination: dict[str, int], fetch: Callable[[int], Any]) -> None:
        self.data = data
        self.pagination = pagination
        self._fetch = fetch

    def has_next_page(self) -> bool:
        p = self.pagination
        return bool(self.data) and p["page"] * p["perPage"] < p["total"]

    async def next_page(self) -> AsyncPage[T]:
        return await self._fetch(self.pagination["page"] + 1)

    async def __aiter__(self) -> AsyncIterator[T]:
        page: AsyncPage[T] = self
        while True:
            for item in page.data:
                yield item
            if not page.has_next_page():
                return
            page = await page.next_page()
