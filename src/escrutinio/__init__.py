"""escrutinio: reproducible answers for the night after a razor-thin election."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__`` is looked up on first use: importing ``importlib.metadata`` costs
    tens of milliseconds that ``escrutinio --help`` does not need."""
    if name != "__version__":
        raise AttributeError(f"module 'escrutinio' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("escrutinio")
    except PackageNotFoundError:  # running from a source tree without installation
        value = "0.0.0+source"
    globals()["__version__"] = value
    return value
