"""Build python-gitlab clients whose every API call is exactly one HTTP request.

python-gitlab retries on its own: 429s by default (``obey_rate_limit=True``, up to ten times with
uncapped backoff, about 100 s) and 5xx/connection errors when ``retry_transient_errors`` is on, and it
crashes with ``ValueError`` on an HTTP-date ``Retry-After`` (``gitlab/utils.py: Retry``). Those loops
also repeat POSTs. :class:`BoundedGitlab` switches all of that off per request so that
:class:`bot.gitlab.callpolicy.CallPolicy` is the only place that decides about retries, and it keeps
the failed response's headers on the exception so the policy can honour ``Retry-After``.
"""

from __future__ import annotations

import inspect
import re
import threading
from typing import Any

import gitlab
import gitlab.exceptions
import requests
from gitlab._backends import RequestsBackend
from gitlab._backends.requests_backend import RequestsResponse
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError

from bot import __version__
from bot.gitlab.errors import GitLabConfigError, GitLabUnreachable, compact_message

__all__ = ["BoundedGitlab", "check_token", "connection_reason", "make_gitlab"]

DEFAULT_USER_AGENT = f"incident-bot/{__version__}"

_PARENT_SIGNATURE = inspect.signature(gitlab.Gitlab.http_request)
_FORCED = {"obey_rate_limit": False, "max_retries": 0, "retry_transient_errors": False}


class _RecordingBackend(RequestsBackend):
    """Remembers, per thread, the last raw response so an HTTP error can carry its headers."""

    def __init__(self, session: requests.Session | None = None) -> None:
        super().__init__(session=session)
        self._local = threading.local()

    def http_request(self, *args: Any, **kwargs: Any) -> RequestsResponse:
        self._local.last = None
        result = super().http_request(*args, **kwargs)
        self._local.last = result
        return result

    def take_last(self) -> RequestsResponse | None:
        last: RequestsResponse | None = getattr(self._local, "last", None)
        self._local.last = None
        return last


class BoundedGitlab(gitlab.Gitlab):
    """A ``gitlab.Gitlab`` that never retries, never sleeps, and always applies its timeout.

    ``obey_rate_limit``/``max_retries``/``retry_transient_errors`` are per-call arguments of
    ``Gitlab.http_request`` that manager methods forward from ``**kwargs``, so they are overridden
    here for every request, whatever the caller passed. On an HTTP error the exception (and hence
    the ``__cause__`` of python-gitlab's ``GitlabCreateError``/``GitlabGetError``…) gets
    ``response_headers`` and ``response_reason`` attributes, which python-gitlab does not keep.
    """

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        bound = _PARENT_SIGNATURE.bind(self, verb, path, *args, **kwargs)
        bound.arguments.update(_FORCED)
        if bound.arguments.get("timeout") is None:
            bound.arguments["timeout"] = self.timeout
        backend = self._backend
        try:
            return super().http_request(*bound.args[1:], **bound.kwargs)
        except gitlab.exceptions.GitlabError as exc:
            last = backend.take_last() if isinstance(backend, _RecordingBackend) else None
            if last is not None and exc.response_code is not None:
                exc.response_headers = dict(last.headers)  # type: ignore[attr-defined]
                exc.response_reason = last.reason  # type: ignore[attr-defined]
            raise
        finally:
            if isinstance(backend, _RecordingBackend):
                backend.take_last()


def make_gitlab(
    url: str,
    token: str,
    *,
    timeout: float = 10.0,
    per_page: int = 100,
    user_agent: str = DEFAULT_USER_AGENT,
    session: requests.Session | None = None,
) -> BoundedGitlab:
    """Return a client with python-gitlab's retries off and a finite timeout on every request.

    Use one client per worker thread: sharing a ``requests.Session`` across threads is not
    documented as safe. A ``session`` whose adapters retry on their own (urllib3 ``Retry``) is
    refused, since that would silently repeat POSTs underneath the call policy.
    """
    if not url:
        raise ValueError("GITLAB_URL is empty")
    if not token:
        raise ValueError("GITLAB_TOKEN is empty")
    if timeout is None or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if session is not None:
        _refuse_retrying_adapters(session)
    return BoundedGitlab(
        url,
        private_token=token,
        timeout=timeout,
        per_page=per_page,
        user_agent=user_agent,
        retry_transient_errors=False,
        session=session,
        backend=_RecordingBackend,
    )


def _refuse_retrying_adapters(session: requests.Session) -> None:
    for prefix, adapter in session.adapters.items():
        if isinstance(adapter, HTTPAdapter):
            total = adapter.max_retries.total
            if total not in (0, False):
                raise ValueError(
                    f"the session's adapter for {prefix!r} retries on its own (total={total!r}); "
                    "mount a plain HTTPAdapter so retries stay in CallPolicy"
                )


_CONN_PREFIX = re.compile(r"^(?:<[^>]*>|\w*Connection(?:Pool)?\([^)]*\)): ")


def connection_reason(exc: BaseException) -> str:
    """One-line cause of a ``requests`` connection failure, without urllib3's pool/object noise."""
    reason: BaseException | str = exc
    first = exc.args[0] if exc.args else None
    if isinstance(first, MaxRetryError) and first.reason is not None:
        reason = first.reason
    elif isinstance(first, BaseException | str):
        reason = first
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(exc).__name__
    text = _CONN_PREFIX.sub("", text)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        text = f"connect timed out ({text})"
    return compact_message(text, limit=200)


def check_token(gl: gitlab.Gitlab) -> str:
    """Authenticate once at startup and return the bot's username, or raise a one-line config error.

    The bot must know its own username to ignore events it caused, and an expired token or a wrong
    URL should stop startup with a message an operator can act on, not a traceback.
    """
    try:
        gl.auth()
    except gitlab.exceptions.GitlabAuthenticationError as exc:
        raise GitLabConfigError(
            f"GITLAB_TOKEN was rejected by {gl.url}: 401 Unauthorized (is it expired or missing the api scope?)"
        ) from exc
    except requests.exceptions.SSLError as exc:
        raise GitLabConfigError(f"cannot reach GITLAB_URL {gl.url}: TLS error: {connection_reason(exc)}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise GitLabUnreachable(f"cannot reach GITLAB_URL {gl.url}: {connection_reason(exc)}") from exc
    except requests.exceptions.RequestException as exc:
        raise GitLabConfigError(f"cannot use GITLAB_URL {gl.url}: {connection_reason(exc)}") from exc
    except gitlab.exceptions.GitlabError as exc:
        code = exc.response_code
        status = f"{code} " if code is not None else ""
        if code is not None and code >= 500:
            raise GitLabUnreachable(
                f"GitLab at {gl.url} is not answering GET /user: {status}{compact_message(exc.error_message)}"
            ) from exc
        hint = ""
        if code == 403:
            hint = " (does the token have the api scope, and is the bot user active?)"
        elif code == 404:
            hint = " (is GITLAB_URL the GitLab root, without /api/v4?)"
        raise GitLabConfigError(
            f"GitLab at {gl.url} refused GET /user: {status}{compact_message(exc.error_message)}{hint}"
        ) from exc
    user = gl.user
    username = getattr(user, "username", None) if user is not None else None
    if not username:
        raise GitLabConfigError(f"GitLab at {gl.url} answered GET /user without a username; is it GitLab?")
    return str(username)
