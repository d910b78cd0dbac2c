"""Credit-scoring API: a German Credit model behind FastAPI, with metrics and a prediction log."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("credit-api")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
