"""The HTTP application: FastAPI routes over the hooks, cards, feedback and evaluate modules.

Every request body is read up to `max_body` bytes (a larger one is answered 413 before anything
is parsed), parsed with orjson, refused past MAX_DEPTH levels of nesting, and validated; every
refusal is a FHIR OperationOutcome that names each problem and where it is, with no stack trace.
An unexpected failure of ours is a 500 with an OperationOutcome that says so, logged with its
trace on the server's side only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..errors import ScenarioError
from ..knowledge_base import KnowledgeBase
from ..pipeline import run
from .cards import card_json
from .feedback import FeedbackLog
from .fetching import TIMEOUT, FetchError, fetch
from .hooks import (
    PREFETCH,
    HookProblem,
    Service,
    answer,
    check_context,
    missing_prefetch,
    services,
)
from .protocol import Discovery, Feedback, HookRequest, outcome

log = logging.getLogger("caveat.service")

MAX_BODY = 2 * 1024 * 1024  # bytes of a request body; a 200-resource prefetch is ~300 KB
MAX_DEPTH = 64  # levels of JSON nesting (FHIR resources need under 15)
JSON = "application/json"
SERVER_SIDE = frozenset({"jwks", "replay-cache-full"})  # auth checks that fail on our side


@dataclass
class ServiceConfig:
    """What `caveat serve` was started with."""

    packs: list[KnowledgeBase]
    base_url: str = "http://127.0.0.1:8080"
    as_of: dt.date | None = None  # None: the day of each request (UTC)
    max_body: int = MAX_BODY
    feedback_log: Path = Path("caveat-feedback.jsonl")
    verifier: Any = None  # engine.service.auth.JwtVerifier, or None for --auth none
    fetch_timeout: float = TIMEOUT
    allow_origins: list[str] = field(default_factory=list)


class Refused(Exception):
    """A request answered with an OperationOutcome."""

    def __init__(self, status: int, issues: list[tuple[str, str, str | None]]) -> None:
        super().__init__(status)
        self.status = status
        self.issues = issues


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def _refusal(status: int, issues: list[tuple[str, str, str | None]]) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="caveat"'} if status == 401 else None
    return Response(
        orjson.dumps(outcome(*issues)), status_code=status, media_type=JSON, headers=headers
    )


JSON_TYPES = frozenset({"application/json", "application/fhir+json"})


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 415 unless it is declared JSON (a browser on another site can send
    text/plain without asking first; JSON it cannot), and with 413 as soon as it is known to be
    over `limit` bytes."""
    declared_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if declared_type not in JSON_TYPES:
        raise Refused(
            415,
            [
                (
                    "not-supported",
                    "the body must be sent as Content-Type: application/json (or "
                    f"application/fhir+json), not {declared_type[:80] or 'without a type'}",
                    None,
                )
            ],
        )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise Refused(413, [("too-costly", f"the body is over the limit of {limit:,} bytes", None)])
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(
                    413, [("too-costly", f"the body is over the limit of {limit:,} bytes", None)]
                )
    except ClientDisconnect:  # the client went before its body ended: no defect of ours
        raise Refused(
            400, [("incomplete", "the connection closed before the body ended", None)]
        ) from None
    return bytes(body)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a string, escapes and all
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def depth_of(body: bytes) -> int:
    """How deeply a body that parsed as JSON nests: its brackets counted outside its strings
    (at the speed of bytes, not of walking every value)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets), default=0)


def parse(body: bytes) -> Any:
    if not body.strip():
        raise Refused(400, [("structure", "the body is empty; send a JSON object", None)])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, [("structure", f"the body is not JSON: {exc}", None)]) from None
    if depth_of(body) > MAX_DEPTH:
        raise Refused(
            400, [("structure", f"the JSON is nested more than {MAX_DEPTH} levels deep", None)]
        )
    if not isinstance(data, dict):
        raise Refused(400, [("structure", "the body must be a JSON object", None)])
    return data


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_issues(exc: ValidationError) -> list[tuple[str, str, str | None]]:
    issues = []
    for err in exc.errors(include_url=False, include_input=False)[:100]:
        where = _path(tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        code = "required" if err["type"] == "missing" else "invalid"
        issues.append((code, f"{where}: {message}" if where else message, where or None))
    return issues


def create_app(config: ServiceConfig) -> FastAPI:
    """The ASGI application serving the packs of `config`."""
    client = httpx.AsyncClient(timeout=config.fetch_timeout, follow_redirects=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title="Caveat CDS Hooks service",
        description="CDS Hooks 2.0 services over Caveat knowledge packs. Decision support from "
        "one source document per pack; not medical advice.",
        docs_url=None,
        redoc_url=None,
    )
    if config.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            # Chrome asks before a public page (the CDS Hooks sandbox) calls a service on a
            # loopback or private address: say yes to the allowed origins
            allow_private_network=True,
        )

    table = services(config.packs)
    feedback = FeedbackLog(config.feedback_log)
    base = config.base_url.rstrip("/")

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return _refusal(exc.status, exc.issues)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = "not-found" if exc.status_code == 404 else "not-supported"
        response = _refusal(exc.status_code, [(code, str(exc.detail), None)])
        response.headers.update(exc.headers or {})  # a 405 must say what is Allow-ed
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected failure answering %s %s", request.method, request.url.path)
        return _refusal(
            500, [("exception", "the service failed unexpectedly; this is a defect of ours", None)]
        )

    async def authorise(request: Request, audience: str) -> None:
        if config.verifier is None:
            return
        from .auth import AuthError

        try:
            await run_in_threadpool(
                config.verifier.verify, request.headers.get("authorization"), audience
            )
        except AuthError as exc:
            if exc.check in SERVER_SIDE:  # the service cannot check now: not the token's fault
                raise Refused(503, [("transient", exc.message, None)]) from None
            raise Refused(401, [("security", exc.message, None)]) from None

    def service_of(service_id: str) -> Service:
        found = table.get(service_id)
        if found is None:
            raise Refused(404, [("not-found", f"no service {service_id[:100]!r}", None)])
        return found

    @app.get("/cds-services")
    async def discovery(request: Request) -> Response:
        await authorise(request, f"{base}/cds-services")
        listed = Discovery(services=[s.describe() for s in table.values()])
        return _json(listed.model_dump(exclude_none=True))

    @app.post("/cds-services/{service_id}")
    async def call(service_id: str, request: Request) -> Response:
        await authorise(request, f"{base}/cds-services/{service_id}")  # 401 before 404: no probing
        service = service_of(service_id)
        data = parse(await read_body(request, config.max_body))
        try:
            hook = HookRequest.model_validate(data)
        except ValidationError as exc:
            raise Refused(400, validation_issues(exc)) from None
        try:
            context = check_context(service, hook)  # 400 before any prefetch is asked for
        except HookProblem as exc:
            raise Refused(exc.status, exc.issues) from None
        prefetch = dict(hook.prefetch or {})
        missing = missing_prefetch(hook)
        if missing:
            if hook.fhirServer is None:
                raise Refused(
                    412,
                    [
                        (
                            "not-found",
                            f"prefetch {key!r} is missing and there is no fhirServer "
                            f"to fetch it from (template: {PREFETCH[key]})",
                            f"prefetch.{key}",
                        )
                        for key in missing
                    ],
                )
            token = hook.fhirAuthorization.access_token if hook.fhirAuthorization else None
            try:
                with anyio.fail_after(config.fetch_timeout):  # one deadline for every read
                    fetched = await fetch(
                        client,
                        str(hook.fhirServer),
                        token,
                        {k: PREFETCH[k] for k in missing},
                        hook.context,
                    )
            except TimeoutError:
                raise Refused(
                    412,
                    [
                        (
                            "timeout",
                            f"the FHIR server did not give {', '.join(missing)} in time (within "
                            f"{config.fetch_timeout:g} s)",
                            f"prefetch.{missing[0]}",
                        )
                    ],
                ) from None
            except FetchError as exc:
                raise Refused(
                    412,
                    [("not-found", f"prefetch {exc.key!r}: {exc.reason}", f"prefetch.{exc.key}")],
                ) from None
            prefetch.update(fetched)
        as_of = config.as_of or dt.datetime.now(dt.UTC).date()
        try:
            # off the event loop: a large patient does not hold up other requests
            cards = await run_in_threadpool(answer, service, context, prefetch, as_of=as_of)
        except HookProblem as exc:
            raise Refused(exc.status, exc.issues) from None
        return _json(card_json(cards))

    @app.post("/cds-services/{service_id}/feedback")
    async def post_feedback(service_id: str, request: Request) -> Response:
        await authorise(request, f"{base}/cds-services/{service_id}/feedback")
        service = service_of(service_id)
        data = parse(await read_body(request, config.max_body))
        try:
            items = Feedback.model_validate(data).feedback
        except ValidationError as exc:
            raise Refused(400, validation_issues(exc)) from None
        try:
            count = await run_in_threadpool(feedback.record, service.kb, service_id, items)
        except OSError as exc:
            log.error("feedback could not be recorded: %s", exc)
            raise Refused(
                503,
                [
                    (
                        "transient",
                        f"the feedback could not be recorded ({exc.strerror}); "
                        "nothing of it was kept: send it again",
                        None,
                    )
                ],
            ) from None
        return _json({"recorded": count})

    @app.post("/evaluate")
    async def evaluate(request: Request) -> Response:
        await authorise(request, f"{base}/evaluate")
        data = parse(await read_body(request, config.max_body))
        kb = config.packs[0]
        try:
            result = run(kb, data)
        except ScenarioError as exc:
            raise Refused(
                400, [("invalid", str(p), p.path or None) for p in exc.problems]
            ) from None
        return _json(result.model_dump(mode="json"))

    @app.get("/schemas/{name}.json")
    async def schema(name: str) -> Response:
        if name not in ("scenario", "result"):
            raise Refused(404, [("not-found", "schemas: scenario.json or result.json", None)])
        from ..schemas import json_schema

        # stdlib json: the scenario schema holds a `maximum` past 64 bits, which orjson refuses
        text = json.dumps(json_schema(name), ensure_ascii=False)  # type: ignore[arg-type]
        return Response(text.encode(), media_type=JSON)

    @app.get("/", include_in_schema=False)
    async def preview() -> Response:
        """The card preview (engine/service/preview.py); under --auth jwks a notice instead: a
        page in a browser cannot sign the JWTs every CDS endpoint then requires."""
        from .preview import headers, notice_page, preview_page

        if config.verifier is None:
            page, policy = preview_page(config.packs, config.as_of)
        else:
            page, policy = notice_page()
        return Response(page, media_type="text/html", headers=headers(policy))

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json(
            {
                "status": "ready",
                "packs": [
                    {
                        "id": kb.id,
                        "version": kb.version,
                        "digest": kb.digest,
                        "released": kb.ref.released,
                    }
                    for kb in config.packs
                ],
                "services": len(table),
            }
        )

    return app
