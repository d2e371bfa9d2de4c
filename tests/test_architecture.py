"""The package's layers (docs/design.md, "Layers"), checked on the source with ``ast``.

Every import between escrutinio's top-level packages counts — module level, inside a
function, under ``TYPE_CHECKING`` — because each one is a dependency a reader has to
follow. A package may import its own layer and the layers below it, never one above, and
no two packages may import each other, directly or through others (no cycles). A new
top-level package must be placed in :data:`LAYERS`.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

PACKAGE: Final = Path(__file__).resolve().parents[1] / "src" / "escrutinio"
#: the package itself (``escrutinio/__init__.py``: ``__version__``)
ROOT: Final = "escrutinio"

#: bottom to top: each layer may import its own and the ones below (docs/design.md)
LAYERS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("foundation", frozenset({ROOT, "errors", "domain", "provenance", "datasets"})),
    ("reference", frozenset({"countries", "verify"})),
    ("sources", frozenset({"sources"})),
    ("store", frozenset({"store"})),
    ("analyses", frozenset({"count", "diff", "projection", "forensics", "defence", "audit"})),
    ("application", frozenset({"service", "live"})),
    ("observer server", frozenset({"server"})),
    ("web", frozenset({"api"})),
    ("commands", frozenset({"commands"})),
    ("cli", frozenset({"cli", "__main__"})),
)
RANK: Final = {pkg: i for i, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}


def _top_level() -> set[str]:
    return {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__")
            or (p.is_dir() and (p / "__init__.py").exists())}


def _package_of(module: str) -> str | None:
    """The top-level package ``escrutinio.<x>...`` belongs to (:data:`ROOT` for a name of
    ``escrutinio/__init__.py``); None outside escrutinio."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    if len(parts) == 1:
        return ROOT
    first = parts[1]
    return first if (PACKAGE / f"{first}.py").exists() or (PACKAGE / first).is_dir() else ROOT


def _imports(path: Path, text: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import in one file (``text``: its source, when
    not read from disk), relative ones resolved."""
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]  # the file's package
    tree = ast.parse(path.read_text("utf-8") if text is None else text, str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*here[:len(here) - node.level + 1],
                                 *([node.module] if node.module else [])])
            if base == ROOT or not node.module:  # from escrutinio import service, __version__
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"
            else:
                yield node.lineno, base


@functools.cache
def _edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) top-level packages -> where ("file:line"); one scan per run."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        src = ROOT if rel.parts == ("__init__.py",) else rel.parts[0].removesuffix(".py")
        for line, module in _imports(path):
            dst = _package_of(module)
            if dst is not None and dst != src:
                out.setdefault((src, dst), []).append(f"{rel}:{line}")
    return out


@pytest.fixture(scope="module")
def edges() -> dict[tuple[str, str], list[str]]:
    return _edges()


def test_every_package_has_a_layer() -> None:
    missing = sorted(_top_level() - set(RANK))
    assert not missing, f"top-level packages without a layer in LAYERS: {missing}"
    declared = [p for _, pkgs in LAYERS for p in pkgs]
    assert len(declared) == len(set(declared)), "a package is declared in two layers"
    gone = sorted(set(RANK) - _top_level() - {ROOT})
    assert not gone, f"LAYERS names packages that no longer exist: {gone}"


def test_no_import_goes_up_a_layer(edges: dict[tuple[str, str], list[str]]) -> None:
    upward = [f"{src} ({LAYERS[RANK[src]][0]}) -> {dst} ({LAYERS[RANK[dst]][0]}): "
              + ", ".join(where)
              for (src, dst), where in sorted(edges.items())
              if src in RANK and dst in RANK and RANK[dst] > RANK[src]]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_cycle_between_packages(edges: dict[tuple[str, str], list[str]]) -> None:
    graph: dict[str, set[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, set()).add(dst)
    # Tarjan's strongly connected components: any component of 2+ packages is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    detail = [f"{' <-> '.join(c)}: " + "; ".join(
        f"{a} -> {b} ({', '.join(edges[(a, b)][:3])})" for a in c for b in c
        if (a, b) in edges) for c in cycles]
    assert not cycles, "import cycles between packages:\n" + "\n".join(detail)


def test_the_scan_sees_every_kind_of_import(edges: dict[tuple[str, str], list[str]]) -> None:
    """The scanner itself: function-level, TYPE_CHECKING and ``from escrutinio import x``
    imports count (a scan that missed them would pass on a cyclic package)."""
    # known, deliberate dependencies of each kind, in today's code
    assert ("api", "server") in edges  # the web app mounts the observer router
    assert ("store", "sources") in edges  # module level
    assert ("cli", "service") in edges  # from escrutinio import service, in a function
    assert (ROOT, ROOT) not in edges
    assert _package_of("escrutinio") == ROOT
    assert _package_of("escrutinio.__version__") == ROOT
    assert _package_of("escrutinio.store.base") == "store"
    assert _package_of("polars") is None
    # and a synthetic file with a TYPE_CHECKING import and relative ones
    code = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from escrutinio.api.app import dumps\n"
            "def f():\n    from ..store import base\n    from . import reconcile\n")
    found = {m for _, m in _imports(PACKAGE / "verify" / "checks.py", code)}
    assert {"escrutinio.api.app", "escrutinio.store", "escrutinio.verify.reconcile"} <= found
