"""Render the operator's Markdown templates with GitLab values, escaped by default.

Every ``{{ ... }}`` result is escaped unless it is ``Safe``; only the filters here return ``Safe``; the
whole output is checked with ``find_hazards``. Trust model, filters and limits: docs/architecture.md.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import FileSystemLoader, Template
from jinja2.exceptions import (
    SecurityError,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.filters import make_attrgetter
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.text import durations, hazards, jinja, markers
from bot.text import escape as markdown
from bot.text.dialects import MARKDOWN
from bot.text.escape import Handle, UnsafeValue
from bot.text.hazards import UnsafeOutput
from bot.text.safe import Safe, TemplateRenderError

__all__ = [
    "CompiledTemplate",
    "Handle",
    "Safe",
    "TemplateRenderError",
    "TemplateRenderer",
    "UnsafeOutput",
]

STRING_TEMPLATE_NAME = "<string>"


_mentions: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "incident_bot_template_mentions", default=None
)


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------


def _f_block(value: object, max_lines: int = 200, max_chars: int = 20_000) -> Safe:
    return Safe(markdown.code_block(value, max_lines=max_lines, max_chars=max_chars))


def _f_mention(value: object) -> Safe:
    """Mention a ``Handle``; print anything else as ``@text`` that notifies nobody."""
    if isinstance(value, Handle):
        rendered = markdown.mention(value, allow_group=value.group)
        collected = _mentions.get()
        if collected is not None:
            collected.add(str(value).lower())
        return Safe(rendered)
    text = str(value)
    return Safe(markdown.escape_inline("@" + (text[1:] if text.startswith("@") else text)))


def _f_ref(value: object) -> Safe:
    return Safe(markdown.issue_ref(value))  # type: ignore[arg-type]


def _f_code(value: object) -> Safe:
    return Safe(markdown.code_span(value))


def _f_marker(kind: str, **fields: Any) -> Safe:
    return Safe(markers.marker(kind, **fields))


def _f_checkbox(value: object) -> Safe:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"checkbox needs a bool, got {type(value).__name__}")
    return Safe("[x]" if value else "[ ]")


def _f_dt(value: object) -> Safe:
    if not isinstance(value, datetime):
        raise TypeError(f"dt needs a datetime, got {type(value).__name__}")
    when = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return Safe(when.strftime("%Y-%m-%d %H:%M UTC"))


def _f_duration(value: object) -> Safe:
    if not isinstance(value, timedelta):
        raise TypeError(f"duration needs a timedelta, got {type(value).__name__}")
    if value < timedelta(0):
        raise ValueError(f"duration must not be negative, got {value}")
    return Safe(durations.duration(value))


def _escape_item(item: object) -> str:
    return MARKDOWN.escape(item)


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------


def _finalize(value: object) -> object:
    """GitLab Markdown's escaping, noting the mentions a ``Safe`` value makes (they are asked for)."""
    if isinstance(value, Safe):
        collected = _mentions.get()
        if collected is not None and "@" in value:
            collected.update(hazards.valid_mentions_in(value))
    return MARKDOWN.escape(value)


def _template_lineno(exc: BaseException, filename: str) -> int | None:
    """The innermost line of ``filename`` in the (Jinja-rewritten) traceback."""
    lineno = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        return f"undefined: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"security error: {exc}"
    if isinstance(exc, TemplateError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _where(name: str, lineno: int | None) -> str:
    return f"template {name!r}" + (f" line {lineno}" if lineno else "")


_QUICK_ACTION_SOURCE_RE = re.compile(r"^/\S", re.M)


class CompiledTemplate:
    """One loaded template bound to its renderer's limits and checks."""

    def __init__(self, renderer: TemplateRenderer, name: str, template: Template) -> None:
        self._renderer = renderer
        self.name = name
        self._template = template

    def render(self, /, **context: Any) -> str:
        """Render, then refuse oversize output or hazards the template did not ask for.

        Raises ``TemplateRenderError`` (undefined names, security errors, bad filter
        input, output over ``max_chars``) or ``UnsafeOutput``.
        """
        max_chars = self._renderer.max_chars
        collected: set[str] = set()
        token = _mentions.set(collected)
        try:
            chunks: list[str] = []
            size = 0
            for chunk in self._template.generate(**context):
                size += len(chunk)
                if size > max_chars:
                    raise TemplateRenderError(
                        f"{_where(self.name, None)}: output exceeds {max_chars} characters",
                        self.name,
                    )
                chunks.append(chunk)
        except TemplateRenderError:
            raise
        except (
            TemplateError,
            UnsafeValue,
            markers.MarkerError,
            TypeError,
            ValueError,
            ArithmeticError,
            RecursionError,
        ) as exc:
            filename = self._template.filename or "<template>"
            lineno = _template_lineno(exc, filename)
            raise TemplateRenderError(f"{_where(self.name, lineno)}: {_describe(exc)}", self.name, lineno) from exc
        finally:
            _mentions.reset(token)
        output = "".join(chunks)
        hazards.assert_safe(output, collected, what=_where(self.name, None))
        return output


class TemplateRenderer:
    """Loads templates from ``template_dirs`` (first match wins) and renders them safely."""

    def __init__(self, template_dirs: Sequence[Path], max_chars: int = 100_000) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.template_dirs = [Path(d) for d in template_dirs]
        self.max_chars = max_chars
        self.environment = jinja.environment(
            MARKDOWN,
            FileSystemLoader([str(d) for d in self.template_dirs]),
            max_chars=max_chars,
            finalize=_finalize,
            keep_trailing_newline=True,
        )
        self.environment.filters.update(
            {
                "block": _f_block,
                "mention": _f_mention,
                "ref": _f_ref,
                "code": _f_code,
                "marker": _f_marker,
                "checkbox": _f_checkbox,
                "dt": _f_dt,
                "duration": _f_duration,
                "join": self._f_join,
            }
        )

    def _f_join(self, value: Iterable[Any], d: object = "", attribute: str | int | None = None) -> Safe:
        items: Iterable[Any] = value
        if attribute is not None:
            items = map(make_attrgetter(self.environment, attribute), value)
        separator = d if isinstance(d, Safe) else markdown.escape_fragment(d)
        return Safe(separator.join(_escape_item(item) for item in items))

    def get(self, name: str) -> CompiledTemplate:
        """Load template ``name``; raises ``TemplateRenderError`` if missing or unparsable."""
        try:
            template = self.environment.get_template(name)
        except TemplateNotFound as exc:
            dirs = ", ".join(str(d) for d in self.template_dirs) or "(no template dirs)"
            raise TemplateRenderError(f"template {name!r}: not found in {dirs}", name) from exc
        except TemplateSyntaxError as exc:
            raise TemplateRenderError(
                f"{_where(name, exc.lineno)}: syntax error: {exc.message}", name, exc.lineno
            ) from exc
        return CompiledTemplate(self, name, template)

    def render(self, name: str, /, **context: Any) -> str:
        """Render template ``name`` with ``context``; see ``CompiledTemplate.render``."""
        return self.get(name).render(**context)

    def from_string(self, source: str, name: str = STRING_TEMPLATE_NAME) -> CompiledTemplate:
        """Compile template text held in memory (tests, built-in defaults)."""
        try:
            template = self.environment.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateRenderError(
                f"{_where(name, exc.lineno)}: syntax error: {exc.message}", name, exc.lineno
            ) from exc
        return CompiledTemplate(self, name, template)

    def check(self, names: Iterable[str]) -> list[str]:
        """Problems with the named templates, one line each; empty when all is well.

        Reports missing and unparsable templates, and hazards in the template *text*
        itself: a column-0 ``/`` line, a literal ``@mention``, a stray HTML comment,
        template syntax left by a ``raw`` block.
        """
        problems: list[str] = []
        for name in names:
            try:
                self.get(name)
                source = self.environment.loader.get_source(self.environment, name)[0]  # type: ignore[union-attr]
            except TemplateRenderError as exc:
                problems.append(str(exc))
                continue
            problems.extend(self._source_problems(name, source))
        return problems

    def _source_problems(self, name: str, source: str) -> Iterator[str]:
        for match in _QUICK_ACTION_SOURCE_RE.finditer(source):
            lineno = source.count("\n", 0, match.start()) + 1
            yield f"{_where(name, lineno)}: line starts with '/', a quick action; the bot never writes one"
        for hazard in hazards.find_hazards(_literal_text(self.environment, source)):
            if hazard.kind == "quick_action":
                continue
            yield f"{_where(name, hazard.line)}: {hazard.kind} in template text: {hazard.excerpt!r}"


def _literal_text(environment: ImmutableSandboxedEnvironment, source: str) -> str:
    """The template's literal text with each ``{{ }}`` as ``x`` and tags removed.

    Line breaks inside tags are kept, so line numbers still match the source.
    """
    out: list[str] = []
    for _, token_type, value in environment.lex(source):
        if token_type == "data":
            out.append(value)
        elif token_type == "variable_begin":
            out.append("x")
        else:
            out.append("\n" * str(value).count("\n"))
    return "".join(out)
