"""escrutinio: reproducible answers for the night after a razor-thin election."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("escrutinio")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
