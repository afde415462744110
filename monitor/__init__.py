"""model-monitor: watch LLM providers' model lists and alert when they change."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("model-monitor")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
