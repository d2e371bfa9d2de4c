"""Structure metrics of the package: lines per layer, the largest modules, functions and
classes, import cycles between top-level packages, and files outside ``store/`` that hold
SQL. Used for the before/after figures of issue #15.

Usage: ``python scripts/structure_metrics.py [SRC_DIR]`` (default ``src/escrutinio``);
prints JSON.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

LAYERS = {
    "sources": ("sources", "countries", "datasets"),
    "store": ("store",),
    "analyses": ("count", "diff", "projection", "defence", "forensics", "audit", "verify",
                 "domain", "provenance", "errors"),
    "service": ("service",),
    "presenters": ("commands", "cli", "api", "server"),
    "live": ("live",),
}
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b")


def layer(pkg: str) -> str:
    return next((name for name, pkgs in LAYERS.items() if pkg in pkgs), "other")


def measure(root: Path) -> dict[str, object]:
    lines: Counter[str] = Counter()
    mods: list[tuple[int, str]] = []
    funcs: list[tuple[int, str]] = []
    classes: list[tuple[int, str]] = []
    deps: dict[str, set[str]] = defaultdict(set)
    sql: Counter[str] = Counter()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        pkg = rel.split("/")[0].removesuffix(".py")
        src = path.read_text("utf-8")
        lines[layer(pkg)] += src.count("\n")
        mods.append((src.count("\n"), rel))
        for node in ast.walk(ast.parse(src)):
            span = (getattr(node, "end_lineno", 0) or 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                funcs.append((span, f"{rel}::{node.name}"))
            elif isinstance(node, ast.ClassDef):
                classes.append((span, f"{rel}::{node.name}"))
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("escrutinio.") and name.split(".")[1] != pkg:
                    deps[pkg].add(name.split(".")[1])
        if pkg != "store" and SQL.search(src):
            sql[rel] += len(SQL.findall(src))
    cycles = sorted({tuple(sorted((a, b))) for a in deps for b in deps[a]
                     if a in deps.get(b, ())})
    return {"lines_per_layer": dict(lines), "total_lines": sum(lines.values()),
            "largest_modules": sorted(mods, reverse=True)[:8],
            "largest_functions": sorted(funcs, reverse=True)[:8],
            "largest_classes": sorted(classes, reverse=True)[:5],
            "package_cycles": cycles, "files_with_sql_outside_store": dict(sql)}


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("src/escrutinio")
    print(json.dumps(measure(src), indent=1))
