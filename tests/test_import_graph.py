"""No import loop: the modules' imports of each other form a graph without cycles.

Imports inside functions count too: a module that imports a heavy one only when it needs it
(to stay light at import time) must still import it downwards, or the import inside the
function merely hides a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rl_app"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of_modules() -> dict[str, set[str]]:
    """module -> the rl_app modules it imports (at the top or inside functions)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in modules and t != name and not t.startswith(name + "."))
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_cycle_finder_finds_a_planted_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_loop():
    graph = imports_of_modules()
    assert len(graph) > 50 and graph["rl_app.env.webshop_env"] >= {"rl_app.shop.config"}
    assert find_cycle(graph) == []


def test_the_shop_does_not_import_the_layers_above_it():
    above = ("rl_app.env", "rl_app.agents", "rl_app.policy", "rl_app.algorithms", "rl_app.experiments")
    for module, deps in imports_of_modules().items():
        if module.startswith("rl_app.shop"):
            assert not [d for d in deps if d.startswith(above)], module
