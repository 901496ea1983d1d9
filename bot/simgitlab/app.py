"""REST v4 request handling, independent of the socket layer.

``Api.handle`` turns one parsed request into one response: routing, authentication, parameter
parsing (query string merged with a JSON or form body, as Grape does), pagination headers, and
error bodies worded as GitLab words them. The socket layer (``server.py``) uses the standard
library's ``ThreadingHTTPServer`` rather than Werkzeug because fault injection needs the raw socket:
an abortive close (RST) and a held-then-dropped connection are not expressible through WSGI.
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from .clock import parse_time
from .records import ApiError, User
from .state import GitLabState

log = logging.getLogger(__name__)
API_PREFIX = "/api/v4"
GRAPHQL_PATH = "/api/graphql"
DEFAULT_PER_PAGE, MAX_PER_PAGE = 20, 100
_TRUE, _FALSE = {"true", "1", "yes", "on", "t"}, {"false", "0", "no", "off", "f", ""}


@dataclass
class ApiRequest:
    method: str
    path: str  # as sent: percent-encoded, no query string
    query: list[tuple[str, str]]
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def json_body(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a non-JSON body (then ``content_type`` says what it is)
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.status == 204 or self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()


@dataclass
class Ctx:
    """What a handler gets: the state, the acting user, path parameters and merged parameters."""

    api: Api
    request: ApiRequest
    actor: User
    path_params: dict[str, str]
    params: dict[str, Any]

    @property
    def state(self) -> GitLabState:
        return self.api.state

    def has(self, name: str) -> bool:
        return name in self.params

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name, default)
        return None if value is None else str(value)

    def required(self, name: str) -> Any:
        if name not in self.params or self.params[name] is None:
            raise ApiError.missing(name)
        return self.params[name]

    def flag(self, name: str, default: bool | None = None) -> bool | None:
        if name not in self.params or self.params[name] is None:
            return default
        value = self.params[name]
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ApiError.invalid(name)

    def integer(self, name: str, default: int | None = None) -> int | None:
        if name not in self.params or self.params[name] in (None, ""):
            return default
        try:
            return int(self.params[name])
        except (TypeError, ValueError):
            raise ApiError.invalid(name) from None

    def items(self, name: str) -> list[str] | None:
        """A list parameter: JSON array, repeated ``name[]`` keys, or a comma-separated string."""
        if name not in self.params or self.params[name] is None:
            return None
        return as_list(self.params[name])

    def integers(self, name: str) -> list[int] | None:
        values = self.items(name)
        if values is None:
            return None
        try:
            return [int(v) for v in values]
        except ValueError:
            raise ApiError.invalid(name) from None

    def timestamp(self, name: str) -> Any:
        text = self.text(name)
        if not text:
            return None
        try:
            return parse_time(text)
        except ValueError:
            raise ApiError.invalid(name) from None

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(name) or default
        if value not in allowed:
            raise ApiError(400, {"error": f"{name} does not have a valid value"})
        return value


def as_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


Handler = Callable[[Ctx], ApiResponse]
GraphQLHandler = Callable[[GitLabState, User, ApiRequest], ApiResponse]


@dataclass(frozen=True)
class Route:
    method: str
    segments: tuple[str, ...]
    handler: Handler
    name: str  # e.g. "POST /projects/:id/issues"

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params = {}
        for want, got in zip(self.segments, parts, strict=True):
            if want.startswith(":"):
                params[want[1:]] = unquote(got)
            elif want != got:
                return None
        return params


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            segments = tuple(template.strip("/").split("/"))
            self.routes.append(Route(method, segments, handler, f"{method} {template}"))
            return handler

        return register

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """Return (route, path params, allowed methods when only the method is wrong)."""
        parts = path.strip("/").split("/") if path.strip("/") else []
        matches = [(route, params) for route in self.routes if (params := route.match(parts)) is not None]
        same_method = [(r, p) for r, p in matches if r.method == method]
        if same_method:  # a literal segment beats a parameter: /members/all is not /members/:user_id
            return (*min(same_method, key=lambda pair: len(pair[1])), [])
        return None, {}, [route.method for route, _ in matches]


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, body, headers or {})


class Api:
    def __init__(self, state: GitLabState, router: Router, graphql: GraphQLHandler | None = None) -> None:
        self.state = state
        self.router = router
        self.graphql = graphql  # ``POST /api/graphql`` (``graphql.handle``)
        self.errors: list[str] = []  # tracebacks of unexpected exceptions (simulator bugs)

    def route_name(self, method: str, path: str) -> str | None:
        """The route template a request maps to (for the request log), or None."""
        if not path.startswith(API_PREFIX):
            return None
        route, _, _ = self.router.resolve(method, path[len(API_PREFIX) :])
        return route.name if route else None

    def handle(self, request: ApiRequest) -> ApiResponse:
        try:
            return self._handle(request)
        except ApiError as err:
            return ApiResponse(err.status, err.body)
        except Exception:  # a simulator bug: answer like GitLab would, and keep the evidence
            self.errors.append(traceback.format_exc())
            log.exception("simulated GitLab failed on %s %s", request.method, request.path)
            return ApiResponse(500, {"message": "500 Internal Server Error"})

    def authenticate(self, request: ApiRequest) -> User | None:
        token = request.header("PRIVATE-TOKEN")
        if token is None:
            auth = request.header("Authorization") or ""
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None:
            token = dict(request.query).get("private_token")
        user = self.state.user_for_token(token)
        return user if user and user.state == "active" else None

    def _handle(self, request: ApiRequest) -> ApiResponse:
        if request.path == GRAPHQL_PATH and request.method in ("GET", "POST") and self.graphql is not None:
            actor = self.authenticate(request)
            if actor is None:
                return ApiResponse(401, {"message": "401 Unauthorized"})
            return self.graphql(self.state, actor, request)
        if not (request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")):
            return ApiResponse(404, {"error": "404 Not Found"})
        route, path_params, allowed = self.router.resolve(request.method, request.path[len(API_PREFIX) :])
        if route is None:
            if allowed:
                return ApiResponse(405, {"error": "405 Not Allowed"}, {"Allow": ", ".join(sorted(set(allowed)))})
            return ApiResponse(404, {"error": "404 Not Found"})
        actor = self.authenticate(request)
        if actor is None:
            return ApiResponse(401, {"message": "401 Unauthorized"})
        params = self._params(request)
        with self.state.lock:
            return route.handler(Ctx(self, request, actor, path_params, params))

    @staticmethod
    def _params(request: ApiRequest) -> dict[str, Any]:
        params: dict[str, Any] = {}
        _merge_pairs(params, request.query)
        if request.body:
            content_type = (request.header("Content-Type") or "").lower()
            if "application/x-www-form-urlencoded" in content_type:
                _merge_pairs(params, parse_qsl(request.body.decode(), keep_blank_values=True))
            else:
                try:
                    body = json.loads(request.body)
                except ValueError:
                    raise ApiError(400, {"error": "body is invalid JSON"}) from None
                if isinstance(body, dict):
                    params.update(body)
        return params

    # ------------------------------------------------------------ pagination

    def paginate(self, ctx: Ctx, items: list[Any], present: Callable[[Any], Any]) -> ApiResponse:
        """Offset pagination with GitLab's headers and an absolute ``Link`` header."""
        per_page = ctx.integer("per_page", DEFAULT_PER_PAGE) or DEFAULT_PER_PAGE
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = max(ctx.integer("page", 1) or 1, 1)
        total = len(items)
        total_pages = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        next_page = page + 1 if page < total_pages else None
        prev_page = page - 1 if 1 < page <= total_pages + 1 else None

        kept = [(k, v) for k, v in ctx.request.query if k not in ("page", "per_page")]
        base = f"{self.state.base_url}{ctx.request.path}"

        def href(number: int) -> str:
            return f"{base}?{urlencode([*kept, ('page', number), ('per_page', per_page)])}"

        links = []
        if prev_page:
            links.append(f'<{href(prev_page)}>; rel="prev"')
        if next_page:
            links.append(f'<{href(next_page)}>; rel="next"')
        links.append(f'<{href(1)}>; rel="first"')
        links.append(f'<{href(total_pages)}>; rel="last"')
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Next-Page": str(next_page or ""),
            "X-Prev-Page": str(prev_page or ""),
            "X-Total": str(total),
            "X-Total-Pages": str(total_pages),
            "Link": ", ".join(links),
        }
        return ok([present(item) for item in chunk], headers=headers)


def _merge_pairs(params: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    for key, value in pairs:
        if key.endswith("[]"):
            params.setdefault(key[:-2], []).append(value)
        else:
            params[key] = value
