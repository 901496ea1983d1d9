"""The shape of the code base: no import cycles between ``bot`` modules, and a pure core."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
IMPURE = ("jinja2", "flask", "werkzeug", "gitlab", "requests", "psycopg", "sqlite3", "gunicorn", "gevent", "socket",
          "prometheus_client", "urllib3", "http", "subprocess", "threading", "concurrent", "slack_sdk")
"""Libraries that render, serve, talk to the network or a database, or run threads: not for the core."""
IMPURE_BOT = ("bot.gitlab", "bot.web", "bot.store", "bot.text.templates", "bot.settings", "bot.wiring",
              "bot.reconciler", "bot.worker", "bot.simgitlab", "bot.commands", "bot.simslack",
              "bot.integrations.slack.slackapi", "bot.integrations.slack.live")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(BOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(BOT.rglob("*.py"))}


def imports(path: Path, *, type_checking: bool = False) -> set[str]:
    """Modules ``path`` imports at run time (``if TYPE_CHECKING:`` blocks excluded unless asked)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and not type_checking and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph(*, top_level_only: bool) -> dict[str, set[str]]:
    """Edges between ``bot`` modules; ``top_level_only`` ignores imports inside functions (deferred)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if top_level_only:
            body = [n for n in tree.body if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))]
            tree = ast.Module(body=[n for n in body if isinstance(n, ast.Import | ast.ImportFrom)], type_ignores=[])
            path_imports = set()
            for node in tree.body:
                if isinstance(node, ast.Import):
                    path_imports.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    path_imports.add(node.module)
                    path_imports.update(f"{node.module}.{a.name}" for a in node.names)
        else:
            path_imports = imports(path)
        edges[name] = {m for m in path_imports if m in known and m != name and m != "bot"}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return found


def test_no_import_cycles_between_bot_modules_even_through_deferred_imports() -> None:
    assert cycles(graph(top_level_only=False)) == []


def reads_environment(path: Path) -> bool:
    """``os.environ`` or ``os.getenv`` anywhere in the module's code (docstrings do not count)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            return True
        imported = {a.name for a in node.names} if isinstance(node, ast.ImportFrom) and node.module == "os" else set()
        if imported & {"environ", "getenv"}:
            return True
    return False


def closure(start: str) -> set[str]:
    """Every module ``start`` imports at run time, directly or through other ``bot`` modules."""
    known = modules()
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in known:
            todo.extend(imports(known[name]))
    return seen


PURE = ("bot.core", "bot.integrations.slack.plan", "bot.integrations.slack.ports", "bot.integrations.slack.text")
"""The core, and the Slack plan beside it: facts in, decisions out."""


def test_core_imports_nothing_impure_even_indirectly() -> None:
    offenders = {}
    for name in modules():
        if name.startswith(PURE):
            bad = sorted(m for m in closure(name) if m.split(".")[0] in IMPURE or m.startswith(IMPURE_BOT))
            if bad:
                offenders[name] = bad
    assert offenders == {}


def test_core_reads_no_environment() -> None:
    assert [name for name, path in modules().items() if name.startswith(PURE) and reads_environment(path)] == []


def test_only_settings_reads_the_environment() -> None:
    # simgitlab is the test double of GitLab, not the bot; metrics sets PROMETHEUS_MULTIPROC_DIR for its children.
    readers = sorted(
        name
        for name, path in modules().items()
        if not name.startswith(("bot.simgitlab", "bot.settings", "bot.metrics")) and reads_environment(path)
    )
    assert readers == []


MAX_LINES = 700
LONG_ALLOWED = ("bot.simgitlab", "bot.simslack", "bot.store.sqlite", "bot.store.postgres", "bot.store.base")
"""The simulators and the store backends may be longer: each models one platform or one database."""


def test_no_module_is_over_700_lines_outside_the_simulators_and_the_store_backends() -> None:
    long = {
        name: n
        for name, path in modules().items()
        if not name.startswith(LONG_ALLOWED) and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


SEAM = ("bot/core/model.py", "bot/core/outbound.py", "bot/core/state.py", "bot/core/policy.py", "bot/core/bodies",
        "bot/reconciler.py", "bot/settings.py", "bot/settingsrows.py", "bot/integrations/base.py")
"""What the outbound seam keeps free of any integration's name (the ``channel`` command in ``bot.core.commands``
is the one Slack-specific part of the core left)."""


def test_the_core_the_reconciler_and_the_settings_name_no_integration() -> None:
    from bot.integrations import registry

    names = re.compile("|".join(rf"\b{i.name}\b|\b{i.label}\b" for i in registry.INTEGRATIONS), re.IGNORECASE)
    root = BOT.parent
    files = [p for s in SEAM for p in ([root / s] if s.endswith(".py") else sorted((root / s).rglob("*.py")))]
    said = {str(p.relative_to(root)): m.group(0) for p in files if (m := names.search(p.read_text(encoding="utf-8")))}
    assert said == {}


def test_the_workers_loop_names_no_integration() -> None:
    tree = ast.parse((BOT / "worker.py").read_text(encoding="utf-8"))
    worker = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Worker")
    assert "slack" not in ast.unparse(worker).lower()


def test_settings_load_no_store_and_no_adapter() -> None:
    """Reading the settings (every command does, first) loads no store, no GitLab or Slack client, no Jinja2."""
    import subprocess
    import sys

    code = "import sys, bot.settings; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=BOT.parent).stdout.split()
    assert "bot.settings" in loaded
    assert [m for m in imports(BOT / "settings.py") if m.startswith("bot.store")] == []  # not even deferred
    assert [m for m in loaded if m.startswith(("bot.store", "bot.gitlab", "bot.web", "slack_sdk", "jinja2"))] == []
