"""The installed version of vaekit, declared once (in pyproject.toml)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vaekit")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
