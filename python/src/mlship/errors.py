"""The SDK's exceptions: each says what was wrong and what to do next."""
from __future__ import annotations

from typing import Any


class MlshipError(Exception):
    """Base class of every error the SDK raises."""


class UnsupportedModelError(MlshipError, TypeError):
    """The model is of a kind mlship.save cannot convert (the message lists what is supported)."""


class SampleMismatchError(MlshipError, ValueError):
    """The sample does not fit the model (columns, count, datatypes)."""


class ConversionMismatchError(MlshipError):
    """The exported ONNX model does not give the library's own answers on the sample; nothing was written.

    ``worst`` holds the worst rows: ``{"row": i, "output": name, "library": x, "onnx": y, "excess": d}``.
    """

    def __init__(self, message: str, worst: list[dict[str, Any]]):
        super().__init__(message)
        self.worst = worst


class ServerError(MlshipError):
    """An mlship server refused a request; ``status`` is the HTTP status, the message is the server's."""

    def __init__(self, status: int, message: str, url: str):
        super().__init__(f"{message} (HTTP {status} from {url})")
        self.status = status
        self.server_message = message
        self.url = url


class CliNotFoundError(MlshipError):
    """The Node CLI (``mlship``) needed for registry URIs is not installed."""
