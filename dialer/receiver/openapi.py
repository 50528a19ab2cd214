"""One declaration per REST route: it is served from it and documented from it.

A route is declared with :meth:`Api.route` next to its handler: method, path,
the pydantic models of its path/query/header parameters, of its body (one per
accepted content type) and of each response. Its operation id is the
handler's name in camelCase and its summary (and description) the handler's
docstring, unless the declaration names them. Routes under one path that
share their tag, path parameters and access are declared through an
:meth:`Api.resource`, which says those once. :meth:`Api.install` adds the
routes to aiohttp, wrapped so the handler receives its input already checked
by those models; :meth:`Api.document` renders the OpenAPI 3.1 document from
the same declarations. So the document cannot drift from the code: a
parameter, body or status that is not declared is neither read nor served.

What the wrapper does before the handler runs, and answers itself:

* path, query and header parameters are validated: a bad value is a 400 with
  ``detail`` naming the parameter (``limit=-1`` is refused, never clamped);
* a content type the route does not declare is a 415; a JSON body that does
  not parse is a 400; one that breaks its model is a 422 naming each field;
* the errors every route can give (401 without the key, 503 when Redis is
  down, 413 for a body over the size cap, 404 for an unknown path id) are
  added to each operation's responses, all with the one :class:`Problem`
  schema; ``COMMON`` takes more (a rate limiter adds its 429 there).
* a route that needs a key declares whose it is (``scope=``, an
  :class:`Access`; declaring one without it is an error): its check runs
  once the input is valid, before the handler, and its refusals are
  documented with the route's own responses.

Handlers answer with :func:`reply` (a response model instance, validated) or
:func:`problem`, or raise :class:`Refusal` (from a helper, deeper down) for the
wrapper to answer with :func:`problem`. This module knows nothing about
campaigns or accounts.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import pydantic
from aiohttp import web
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from dialer import __version__

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
REF = "#/components/schemas/{model}"
JSON = "application/json"


class Out(BaseModel):
    """Base of response models: every field is always present in the JSON.

    ``json_schema_serialization_defaults_required`` makes the documented
    schema say so, so a response missing a field fails schema conformance.
    """

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class ProblemDetail(Out):
    field: str = ""
    message: str
    line: int | None = None


class Problem(Out):
    """The one error body of the API, whatever the status."""

    error: str
    detail: list[ProblemDetail] = []


def problem(
    status: int,
    error: str,
    detail: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = Problem(error=error, detail=[ProblemDetail(**d) for d in detail or []])
    return web.json_response(body.model_dump(mode="json"), status=status, headers=headers)


class Refusal(Exception):
    """A refusal raised on the way to the answer: the wrapper answers it with :func:`problem`."""

    def __init__(self, status: int, error: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """A JSON response from a response model instance (validated when it was built)."""
    return web.json_response(model.model_dump(mode="json"), status=status)


def pydantic_detail(exc: pydantic.ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        out.append(
            {
                "field": f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body",
                "message": e["msg"],
            }
        )
    return out


@dataclass(frozen=True)
class Text:
    """A body or response the wrapper does not parse as a model's JSON.

    Documented with ``schema``, or with ``model``'s schema. As a request
    body the handler gets the decoded text in ``Input.body``; with
    ``read=False`` the wrapper leaves the body alone and the handler reads it
    (the Exotel callback, whose format is Exotel's, not ours).
    """

    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    model: type[BaseModel] | None = None
    read: bool = True


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: from this response to ``operation_id``, with its parameters
    (runtime expressions such as ``$response.body#/id``)."""

    operation_id: str
    parameters: dict[str, str] = field(default_factory=dict)
    description: str = ""
    request_body: Any = None
    #: False: the linked request's body is exactly ``request_body`` (schemathesis
    #: otherwise merges it into a generated one)
    merge_body: bool = True


@dataclass(frozen=True)
class Reply:
    description: str
    model: type[BaseModel] | None = None
    media: dict[str, Text] = field(default_factory=dict)  # non-JSON content types
    links: dict[str, Link] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)


#: Responses any operation may give, added to every operation the condition
#: holds for (``auth``, ``body``, ``params``, ``always``).
COMMON: dict[int, tuple[str, Reply]] = {
    401: (
        "auth",
        Reply(
            "missing or wrong API key",
            Problem,
            headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
        ),
    ),
    400: (
        "params",
        Reply("a parameter or the body is malformed (not JSON, bad paging...)", Problem),
    ),
    413: ("body", Reply("body larger than the receiver's size cap", Problem)),
    415: ("body", Reply("content type not accepted by this operation", Problem)),
    422: (
        "body",
        Reply("the body breaks its schema or a rule; `detail` names each field", Problem),
    ),
    429: (
        "auth",
        Reply(
            "this API key's rate limit (DIALER_API_RATE_PER_MIN) is exceeded; retry after "
            "Retry-After seconds",
            Problem,
            headers={"Retry-After": {"schema": {"type": "string"}}},
        ),
    ),
    503: (
        "always",
        Reply(
            "the store (Redis) is unreachable; retry",
            Problem,
            headers={"Retry-After": {"schema": {"type": "string"}}},
        ),
    ),
}

Q = TypeVar("Q")
B = TypeVar("B")


@dataclass
class Input(Generic[Q, B]):
    """What the wrapper validated: parameters (model instances) and the body."""

    path: Any = None
    query: Any = None
    headers: Any = None
    body: Any = None  # a model instance (JSON) or str (Text), None without a body
    media: str = ""
    scoped: Any = None  # what the route's access check found for the handler, if anything


Handler = Callable[[web.Request, Input[Any, Any]], Awaitable[web.StreamResponse]]
Check = Callable[[web.Request, Input[Any, Any]], Awaitable[web.StreamResponse | None]]


@dataclass(frozen=True, eq=False)  # one per kind of access: compared by identity
class Access:
    """Who may call a route, declared with it (``scope=``) so no handler can forget it.

    The wrapper runs ``check`` once the input is valid, right before the handler:
    a response is the refusal, served instead of the handler; None lets the
    request through (``check`` may leave what it found in ``Input.scoped``).
    ``responses`` are the refusals it gives, documented on every route using it.
    """

    name: str
    check: Check
    responses: dict[int, Reply] = field(default_factory=dict)


@dataclass
class Route:
    method: Method
    path: str
    handler: Handler
    operation_id: str
    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    body: dict[str, type[BaseModel] | Text] = field(default_factory=dict)
    body_required: bool = True
    responses: dict[int, Reply] = field(default_factory=dict)
    auth: bool = True
    scope: Access | None = None

    def path_names(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


class Api:
    """A registry of routes (``API``: the receiver's)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: Method, path: str, **spec: Any) -> Callable[[Handler], Handler]:
        """Declare the decorated handler's route (``spec``: :class:`Route`'s fields)."""

        def add(handler: Handler) -> Handler:
            declared = {"operation_id": _camel(handler.__name__), **spec}
            if "summary" not in declared:
                declared["summary"], declared["description"] = _described(handler)
            op = declared["operation_id"]
            if not declared["summary"]:
                raise ValueError(f"{op} needs a summary: a docstring or summary=")
            if any(r.operation_id == op for r in self.routes):
                raise ValueError(f"operation id {op} declared twice")
            if declared.get("auth", True) and declared.get("scope") is None:
                raise ValueError(f"{op} needs a key: declare its scope= too")
            self.routes.append(Route(method, path, handler, **declared))
            return handler

        return add

    def resource(self, path: str, **shared: Any) -> Resource:
        """Routes at ``path`` (and below it) declared with ``shared`` fields in common."""
        return Resource(self, path, shared)

    def install(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, _wrap(route), name=route.operation_id)

    def document(self) -> dict[str, Any]:
        return _Document(self.routes).render()


@dataclass(frozen=True)
class Resource:
    """A path and what its routes share (tag, path parameters, access), said once:
    a route's own declaration adds to it or overrides it."""

    api: Api
    path: str
    shared: dict[str, Any]

    def route(self, method: Method, sub: str = "", **spec: Any) -> Callable[[Handler], Handler]:
        return self.api.route(method, self.path + sub, **{**self.shared, **spec})


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def _described(handler: Handler) -> tuple[str, str]:
    """The docstring's first paragraph (the summary) and the rest (the description),
    each paragraph on one line."""
    paragraphs = inspect.cleandoc(handler.__doc__ or "").split("\n\n")
    summary, *rest = (" ".join(text.split()) for text in paragraphs)
    return summary, "\n\n".join(rest)


API = Api()


# --- the wrapper: validate, then call the handler ------------------------------------


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        inp: Input[Any, Any] = Input()
        detail: list[dict[str, Any]] = []
        for where, model, values in (
            ("path", route.path_params, request.match_info),
            ("query", route.query, request.query),
            ("header", route.headers, request.headers),
        ):
            if model is None:
                continue
            try:
                setattr(inp, "headers" if where == "header" else where, _params(model, values))
            except pydantic.ValidationError as exc:
                if where == "path":  # an id that cannot exist names nothing
                    return problem(404, "not found", pydantic_detail(exc, "path."))
                detail += pydantic_detail(exc, f"{where}.")
        if detail:
            return problem(400, "invalid parameter", detail)
        if any(not isinstance(t, Text) or t.read for t in route.body.values()):
            inp.media = request.content_type
            declared = route.body.get(inp.media)
            if declared is None:
                if not route.body_required and not request.body_exists:
                    return await _call(route, request, inp)
                accepted = ", ".join(route.body)
                return problem(415, f"content type {inp.media!r} not accepted; use {accepted}")
            raw = await request.read()
            if isinstance(declared, Text):
                from dialer.core.contacts import decode_text

                inp.body = decode_text(raw)
            else:
                try:
                    data = _integral(json.loads(raw))
                except (ValueError, RecursionError):
                    return problem(400, "body is not valid JSON")
                try:
                    # strict: a JSON value of another type than the schema's is refused
                    # (0 is not false, "5" is not 5), as the document says
                    inp.body = declared.model_validate(data, strict=True)
                except pydantic.ValidationError as exc:
                    return problem(422, "invalid request", pydantic_detail(exc))
        return await _call(route, request, inp)

    return handle


async def _call(route: Route, request: web.Request, inp: Input[Any, Any]) -> web.StreamResponse:
    if route.scope is not None and (refused := await route.scope.check(request, inp)) is not None:
        return refused
    try:
        return await route.handler(request, inp)
    except Refusal as exc:
        return problem(exc.status, exc.error, exc.detail)


def _integral(value: Any) -> Any:
    """JSON Schema's ``integer`` includes 3.0: make such floats ints for strict validation."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _params(model: type[BaseModel], values: Mapping[str, str]) -> BaseModel:
    """The declared names (headers case-insensitively: CIMultiDict); with a model
    that forbids extras (query models), an unknown name is refused too: a
    misspelt ``max_attempt=5`` must not be silently ignored."""
    if model.model_config.get("extra") == "forbid":
        return model.model_validate({k: values[k] for k in values})
    names = [f.alias or name for name, f in model.model_fields.items()]
    return model.model_validate({n: values[n] for n in names if n in values})


# --- the document ---------------------------------------------------------------------


def _declared(route: Route) -> dict[int, Reply]:
    """The route's own responses, over the refusals of its access check."""
    return {**(route.scope.responses if route.scope else {}), **route.responses}


class _Document:
    def __init__(self, routes: list[Route]):
        self.routes = routes
        self.refs: dict[tuple[Any, JsonSchemaMode], dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}

    def _collect(self) -> None:
        wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(Problem, "serialization")}
        for r in self.routes:
            for m in (r.path_params, r.query, r.headers):
                if m is not None:
                    wanted.add((m, "validation"))
            for b in r.body.values():
                model = b.model if isinstance(b, Text) else b
                if model is not None:
                    wanted.add((model, "validation"))
            replies = _declared(r).values()
            wanted.update((x.model, "serialization") for x in replies if x.model)
        ordered = sorted(wanted, key=lambda w: (w[0].__name__, w[1]))
        key_map, defs = models_json_schema(ordered, ref_template=REF)
        self.refs = dict(key_map)
        self.schemas = defs.get("$defs", {})

    def _schema_of(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        ref = self.refs[(model, mode)]
        name = ref["$ref"].rsplit("/", 1)[-1]
        return self.schemas[name]

    def _parameters(self, route: Route) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for where, model in (
            ("path", route.path_params),
            ("query", route.query),
            ("header", route.headers),
        ):
            if model is None:
                continue
            schema = self._schema_of(model, "validation")
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                prop = dict(prop)
                desc = prop.pop("description", "")
                prop.pop("title", None)
                p: dict[str, Any] = {
                    "name": name,
                    "in": where,
                    "required": name in required or where == "path",
                    "schema": prop,
                }
                if desc:
                    p["description"] = desc
                out.append(p)
        declared = {p["name"] for p in out if p["in"] == "path"}
        for name in route.path_names():
            if name not in declared:
                out.append(
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                )
        return out

    def _content(
        self, model: type[BaseModel] | None, media: Mapping[str, Text], mode: JsonSchemaMode
    ) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if model is not None:
            content[JSON] = {"schema": self.refs[(model, mode)]}
        for ctype, text in media.items():
            content[ctype] = {"schema": text.schema}
        return content

    def _responses(self, route: Route) -> dict[str, Any]:
        replies = _declared(route)
        cond = {
            "auth": route.auth,
            "body": bool(route.body),
            "params": bool(
                route.query
                or route.headers
                or any(not isinstance(m, Text) for m in route.body.values())
            ),
            "always": True,
        }
        for status, (when, rep) in COMMON.items():
            if cond[when] and status not in replies:
                replies[status] = rep
        if route.path_names() and 404 not in replies:
            replies[404] = Reply("no such resource", Problem)
        out: dict[str, Any] = {}
        for status in sorted(replies):
            rep = replies[status]
            entry: dict[str, Any] = {"description": rep.description}
            content = self._content(rep.model, rep.media, "serialization")
            if content:
                entry["content"] = content
            if rep.headers:
                entry["headers"] = rep.headers
            if rep.links:
                entry["links"] = {
                    name: {
                        "operationId": link.operation_id,
                        **({"parameters": link.parameters} if link.parameters else {}),
                        **(
                            {"requestBody": link.request_body}
                            if link.request_body is not None
                            else {}
                        ),
                        **({"description": link.description} if link.description else {}),
                        **({} if link.merge_body else {"x-schemathesis": {"merge_body": False}}),
                    }
                    for name, link in rep.links.items()
                }
            out[str(status)] = entry
        return out

    def _operation(self, route: Route) -> dict[str, Any]:
        op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
        if route.description:
            op["description"] = route.description
        if route.tags:
            op["tags"] = list(route.tags)
        params = self._parameters(route)
        if params:
            op["parameters"] = params
        if route.body:
            content: dict[str, Any] = {}
            for ctype, m in route.body.items():
                if not isinstance(m, Text):
                    content[ctype] = {"schema": self.refs[(m, "validation")]}
                elif m.model is not None:
                    content[ctype] = {"schema": self.refs[(m.model, "validation")]}
                else:
                    content[ctype] = {"schema": m.schema}
            op["requestBody"] = {"required": route.body_required, "content": content}
        op["responses"] = self._responses(route)
        op["security"] = [{"bearer": []}] if route.auth else []
        return op

    def render(self) -> dict[str, Any]:
        self._collect()
        paths: dict[str, Any] = {}
        for route in self.routes:
            paths.setdefault(route.path, {})[route.method.lower()] = self._operation(route)
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Exotel voice-AI dialer",
                "version": __version__,
                "description": "Generated from the route declarations the receiver serves "
                "(dialer.receiver.openapi). Every error has the `Problem` body. "
                "Prometheus metrics are not part of this API: they are served as "
                "`text/plain; version=0.0.4` at `/metrics` on the internal metrics "
                "listener (DIALER_METRICS_HOST:DIALER_METRICS_PORT).",
            },
            "components": {
                "schemas": self.schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
            "paths": paths,
        }
