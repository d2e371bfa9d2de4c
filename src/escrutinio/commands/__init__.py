"""CLI command groups, one module per analysis family.

Each module defines ``register(app: typer.Typer) -> None`` and is listed in
``COMMAND_MODULES``; ``escrutinio.cli`` calls them at import time. Command modules are
presenters: they call analyses and format results, they never compute numbers.
"""

from __future__ import annotations

import importlib

import typer

#: modules under escrutinio.commands that add commands to the main app
COMMAND_MODULES: tuple[str, ...] = (
    "projection", "defence", "forensics", "audit", "live", "ledger", "web", "accounts",
)


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"escrutinio.commands.{name}")
        module.register(app)
