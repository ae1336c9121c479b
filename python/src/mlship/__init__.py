"""mlship for Python: save a trained model as a verified bundle, register it, and call an mlship server.

Example::

    import mlship
    mlship.save(clf, "iris-bundle", sample=X_test, labels=["setosa", "versicolor", "virginica"])
    mlship.register("iris-bundle", server="http://localhost:8080", alias="production")
    mlship.Client("http://localhost:8080").predict(X_test, model="iris-bundle")
"""
from __future__ import annotations

from ._client import Client
from ._register import register
from ._save import save
from .errors import (CliNotFoundError, ConversionMismatchError, MlshipError, SampleMismatchError, ServerError,
                     UnsupportedModelError)

__version__ = "0.1.0"
__all__ = ["save", "register", "Client", "MlshipError", "UnsupportedModelError", "SampleMismatchError",
           "ConversionMismatchError", "ServerError", "CliNotFoundError", "__version__"]
