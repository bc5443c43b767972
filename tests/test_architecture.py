"""The import graph of src/maskscope has no circle and no arrow from a lower layer to a higher one.

Every ``import`` and ``from ... import`` in every module counts, at module level or inside a
function alike (an import deferred to a function is still a dependency). The layers are stated
here once; docs/architecture.md draws them and says why they are in this order.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "maskscope"

# Bottom → top. A module belongs to the layer of its longest listed prefix; it may import from
# its own layer and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "extras", "storage", "manifest", "distributed")),
    ("tensors and the model", ("images", "boxes", "perturb", "masks", "objectives", "target", "classes",
                               "layers", "blackbox", "accelerate", "fingerprint")),
    ("models and data", ("zoo", "data")),
    ("metrics", ("metrics",)),
    ("record", ("explanation",)),
    ("optimisation core", ("methods.optimise", "methods.settings", "methods.early_stop")),
    ("methods", ("methods",)),
    ("outputs", ("viz", "outputs")),
    ("public API", ("",)),  # the package itself: maskscope/__init__.py
    ("workflows", ("files", "video", "evaluate", "summaries", "analysis")),
    ("explorer", ("app",)),
    ("command line", ("cli", "__main__")),
]

# THE allow-list: import arrows (importer, imported) that break the rules today, each with why.
# They are left out of both checks. Shrink it as the code is fixed: an entry whose arrow is gone,
# or no longer points up nor closes a circle, fails ``test_the_allow_list_holds_only_arrows_...``.
ALLOWED: dict[tuple[str, str], str] = {
    # kept on purpose: ``e.save(...)``, ``e.plot(...)`` and ``Explanation.output_names`` stay for
    # users; each imports ``outputs`` inside the method, never at module level
    ("explanation", "outputs"): "the record's shortcuts to its writers",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` (at ``path``) imports anywhere in its code."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # ``if TYPE_CHECKING:`` imports are for annotations, not run
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            # ``from pkg import sub`` imports the module pkg.sub, ``from pkg import name`` pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import maskscope.x.y`` → the module that exists
                target = target.rpartition(".")[0]
            if target.startswith(PACKAGE) and target != name:
                found.add(target)
    return found


def short(name: str) -> str:
    return name[len(PACKAGE) + 1:] if name != PACKAGE else ""


def import_graph() -> dict[str, set[str]]:
    """Short module name → the short names it imports, allow-listed arrows left out."""
    known = modules()
    graph = {short(n): {short(t) for t in imported(n, p, known)} for n, p in known.items()}
    return {n: {t for t in targets if (n, t) not in ALLOWED} for n, targets in graph.items()}


def layer(name: str) -> int:
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (prefix == name or name.startswith(prefix + ".") or prefix == "") and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_graph_is_read_from_the_real_package():
    graph = import_graph()
    assert {"explanation", "outputs", "methods.optimise", "cli.main", ""} <= set(graph)
    assert "explanation" in graph["methods.optimise"]  # a module-level import
    assert "methods.realtime" in graph["app.server"]  # imports inside functions count too
    assert "metrics.pointing" in graph["metrics.background"]  # ``from .pointing import ...``


def test_every_module_has_a_layer():
    unplaced = [n for n in import_graph() if n and layer(n) == LAYERS.index(("public API", ("",)))]
    assert unplaced == [], f"add these modules to a layer in LAYERS (and docs/architecture.md): {unplaced}"


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " → ".join(n or PACKAGE for n in cycle)


def test_no_arrow_points_up_a_layer():
    graph = import_graph()
    upward = sorted(f"{n or PACKAGE} ({LAYERS[layer(n)][0]}) → {t or PACKAGE} ({LAYERS[layer(t)][0]})"
                    for n, targets in graph.items() for t in targets if layer(t) > layer(n))
    assert upward == [], "imports from a higher layer:\n" + "\n".join(upward)


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_the_allow_list_holds_only_arrows_that_exist_and_break_a_rule():
    known = modules()
    arrows = {(short(n), short(t)) for n, p in known.items() for t in imported(n, p, known)}
    graph = import_graph()
    stale = sorted((a, b) for a, b in ALLOWED
                   if (a, b) not in arrows or not (layer(b) > layer(a) or reaches(graph, b, a)))
    assert stale == [], f"these arrows are gone or break no rule now: remove them from ALLOWED: {stale}"


def test_the_record_imports_its_writers_only_inside_its_shortcuts():
    path = SRC / PACKAGE / "explanation.py"
    top = [ast.unparse(node) for node in ast.parse(path.read_text(encoding="utf-8")).body
           if isinstance(node, (ast.Import, ast.ImportFrom)) and "outputs" in ast.unparse(node)]
    assert top == [], top  # ``import maskscope`` must not load the writers (nor matplotlib)
    assert "outputs" in {t for n, t in ALLOWED if n == "explanation"}


def test_the_checks_catch_a_circle_and_an_upward_arrow():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert layer("metrics.drop") < layer("explanation") < layer("methods.extremal") < layer("outputs")
    assert layer("methods.optimise") < layer("methods.realtime.train")
    assert layer("cli.common") > layer("app.explain") > layer("files")
    assert reaches({"a": {"b"}, "b": {"c"}}, "a", "c") and not reaches({"a": {"b"}, "b": {"c"}}, "c", "a")
