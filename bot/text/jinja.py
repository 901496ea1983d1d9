"""The one Jinja environment every dialect's templates render in, with the same guards for all:

- the immutable sandbox (no attribute or method that changes a value, no private attribute), plus size checks
  on ``*`` and ``**`` before they run (``'x' * 10**9`` or ``9 ** 10**9`` is refused, not computed);
- no autoescape (Jinja's escapes HTML, which is neither Markdown nor mrkdwn), but a ``finalize`` that passes
  every ``{{ }}`` result through the dialect's escaping unless it is already of the dialect's kind;
- ``StrictUndefined``: a misspelt name is an error naming the template and line, never an empty string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import BaseLoader, StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.text.dialects import Dialect

__all__ = ["MAX_EXPONENT", "SandboxedEnvironment", "environment"]

MAX_EXPONENT = 1024


class SandboxedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus size checks on ``*`` and ``**`` before they run."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, max_chars: int, dialect: Dialect[Any], **options: Any) -> None:
        super().__init__(**options)
        self.max_chars = max_chars
        self.dialect = dialect

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | bytes | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > self.max_chars
                ):
                    raise SecurityError(f"repetition would exceed {self.max_chars} items")
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > MAX_EXPONENT
        ):
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def environment(
    dialect: Dialect[Any],
    loader: BaseLoader | None,
    *,
    max_chars: int,
    finalize: Callable[[object], object] | None = None,
    keep_trailing_newline: bool = False,
) -> SandboxedEnvironment:
    """A sandboxed environment rendering ``dialect``: every value escaped by ``dialect.escape`` (or by
    ``finalize``, which must end in it), undefined names an error, blocks trimmed."""
    return SandboxedEnvironment(
        max_chars,
        dialect,
        loader=loader,
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=keep_trailing_newline,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize or dialect.escape,
    )
