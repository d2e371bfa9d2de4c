"""Forwarding module: the Chile 2021 converter lives in its country pack,
:mod:`escrutinio.countries.chile.source` (this path is kept for existing imports)."""

from escrutinio.countries.chile.source import *  # noqa: F403
from escrutinio.countries.chile.source import __all__  # noqa: F401
