"""Forwarding module: Peru's contests, ONPE states and ubigeo geography live in its country
pack, :mod:`escrutinio.countries.peru.source` (this path is kept for existing imports)."""

from escrutinio.countries.peru.source import *  # noqa: F403
from escrutinio.countries.peru.source import __all__  # noqa: F401
