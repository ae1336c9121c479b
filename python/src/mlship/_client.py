"""mlship.Client: call a running `mlship serve` from Python (records → DataFrame, OIP infer, feedback)."""
from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from ._http import post_json, request
from .errors import MlshipError

_NP_TO_OIP = {
    np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64", np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32", np.dtype(np.bool_): "BOOL",
}
_OIP_TO_NP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_,
              "INT8": np.int8, "INT16": np.int16, "UINT8": np.uint8, "FP16": np.float16}


def _value(v: Any) -> Any:
    """A frame value as JSON: numpy scalars as Python, NaN/None/NA as null."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _frame(df: Any, what: str) -> pd.DataFrame:
    if type(df).__module__.startswith("polars"):
        return df.to_pandas()
    if isinstance(df, pd.DataFrame):
        return df
    if isinstance(df, list) and all(isinstance(r, dict) for r in df):
        return pd.DataFrame(df)
    raise MlshipError(f"{what} takes a pandas or polars DataFrame or a list of records, got {type(df).__name__}")


def _columns_body(frame: pd.DataFrame, **extra: Any) -> bytes:
    """A frame as the ``{"columns": {name: [values]}}`` body of /predict and /explain (NaN/None as null)."""
    columns = {str(c): [_value(v) for v in frame[c].tolist()] for c in frame.columns}
    return json.dumps({"columns": columns, **extra}, allow_nan=False).encode()


def _request_id(rid: str) -> str:
    if not isinstance(rid, str) or not 1 <= len(rid) <= 256 or not all(" " <= ch <= "~" for ch in rid):
        raise MlshipError(f"request_id must be 1 to 256 printable ASCII characters, got {rid!r}")
    return rid


def _truth(truth: Any) -> Any:
    """A truth as JSON: one value, or one per row of the request (list, numpy array or pandas Series)."""
    if isinstance(truth, (pd.Series, pd.Index, np.ndarray)):
        truth = truth.tolist()
    if isinstance(truth, (list, tuple)):
        return [_value(v) for v in truth]
    return _value(truth)


#: columns of :meth:`Client.explain`'s frame besides one per feature
_EXPLAIN_COLUMNS = ("row", "target", "base", "output", "top")


class Client:
    """A client of an mlship server (REST).

    Example::

        c = mlship.Client("http://localhost:8080")
        c.predict(df, model="iris")          # DataFrame: label, probabilities_<class>...
        c.infer({"float_input": X.astype("float32")}, model="iris")
    """

    def __init__(self, url: str, token: str | None = None, *, model: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.token = token
        self.model = model
        self.timeout = timeout
        self._labels: dict[str, list[str] | None] = {}

    def _model(self, model: str | None) -> str:
        m = model or self.model
        if m:
            return m
        served = sorted({e["name"] for e in self.models()})
        if len(served) == 1:
            return str(served[0])
        raise MlshipError(f"name the model: predict(df, model=...) (this server serves {served})")

    def _path(self, model: str, version: str | int | None, what: str) -> str:
        v = f"/versions/{quote(str(version), safe='')}" if version is not None else ""
        return f"{self.url}/v2/models/{quote(model, safe='')}{v}/{what}"

    def models(self) -> list[dict[str, Any]]:
        """The server's repository index: name, version, state of each model."""
        return list(post_json(f"{self.url}/v2/repository/index", {}, token=self.token, timeout=self.timeout))

    def metadata(self, model: str | None = None) -> dict[str, Any]:
        """Model metadata (inputs, outputs; features, labels and task in ``parameters``)."""
        m = self._model(model)
        return dict(request("GET", f"{self.url}/v2/models/{quote(m, safe='')}", token=self.token, timeout=self.timeout))

    def _labels_of(self, model: str) -> list[str] | None:
        if model not in self._labels:
            labels = self.metadata(model).get("parameters", {}).get("labels")
            self._labels[model] = [str(x) for x in labels] if isinstance(labels, list) else None
        return self._labels[model]

    def predict(self, df: Any, model: str | None = None, *, version: str | int | None = None,
                entity: str | None = None, request_id: str | None = None) -> pd.DataFrame:
        """Scores a DataFrame over ``/predict``: one row per input row; a class output per class as
        ``<output>_<label>`` (e.g. ``probabilities_setosa``), the label as the class name.

        The answer's request id (``request_id=`` if given, sent as header ``x-request-id``; else the server's) is in
        ``result.attrs["id"]`` and the serving version in ``result.attrs["model_version"]``: give them to
        :meth:`feedback`."""
        m = self._model(model)
        frame = _frame(df, "predict")
        extra = {"x-mlship-entity": entity} if entity else {}
        if request_id is not None:
            extra["x-request-id"] = _request_id(request_id)
        res = request("POST", self._path(m, version, "predict"), body=_columns_body(frame),
                      headers={"content-type": "application/json", **extra}, token=self.token,
                      timeout=self.timeout)
        preds = res["predictions"]
        labels = self._labels_of(m)
        out: dict[str, list[Any]] = {}
        for key in (preds[0].keys() if preds else []):
            first = preds[0][key]
            if isinstance(first, list):
                width = len(first)
                names = labels if labels is not None and len(labels) == width else [str(j) for j in range(width)]
                for j, n in enumerate(names):
                    out[f"{key}_{n}"] = [p[key][j] for p in preds]
            else:
                out[key] = [p[key] for p in preds]
        result = pd.DataFrame(out, index=frame.index)
        result.attrs["model_version"] = res.get("model_version")
        result.attrs["id"] = res.get("id")
        return result

    def infer(self, inputs: dict[str, Any], model: str | None = None, *, version: str | int | None = None,
              outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Open Inference Protocol v2 over REST: ``{input name: array}`` in, ``{output name: array}`` out."""
        m = self._model(model)
        tensors = []
        for name, value in inputs.items():
            a = np.asarray(value)
            if a.dtype.kind in ("U", "S", "O"):
                datatype = "BYTES"
                data: list[Any] = [str(x) for x in a.reshape(-1)]
            else:
                known = _NP_TO_OIP.get(a.dtype)
                if known is None:
                    raise MlshipError(f"input '{name}': dtype {a.dtype} has no OIP datatype; use float32/64, int32/64 or bool")
                datatype = known
                data = a.reshape(-1).tolist()
            tensors.append({"name": name, "datatype": datatype, "shape": list(a.shape), "data": data})
        payload: dict[str, Any] = {"inputs": tensors}
        if outputs:
            payload["outputs"] = [{"name": o} for o in outputs]
        res = post_json(self._path(m, version, "infer"), payload, token=self.token, timeout=self.timeout)
        result: dict[str, np.ndarray] = {}
        for t in res["outputs"]:
            dt = _OIP_TO_NP.get(t["datatype"], object)
            result[t["name"]] = np.asarray(t["data"], dtype=dt).reshape(t["shape"])
        return result

    def feedback(self, id: str, *, truth: Any = None, reward: float | None = None, version: str | int | None = None,
                 model: str | None = None) -> dict[str, Any]:
        """Sends the true outcome (``truth=``: one value, or one per row of that request) or a reward (``reward=``) of
        an earlier prediction, by its request id (``predict(...).attrs["id"]``), to ``POST /v2/models/{model}/feedback``.
        ``version`` (the answer's ``model_version``) lets a reward reach a replica that did not serve the id.
        Returns the server's outcome: ``{"accepted", "joined", "byVersion"}``.

        Example::

            p = c.predict(df, model="churn")
            c.feedback(p.attrs["id"], truth=y.tolist(), model="churn")
        """
        if (truth is None) == (reward is None):
            raise MlshipError("feedback takes truth= or reward=, exactly one")
        m = self._model(model)
        body: dict[str, Any] = {"id": _request_id(id)}
        if truth is not None:
            body["truth"] = _truth(truth)
        else:
            r = float(reward)  # type: ignore[arg-type]
            if not math.isfinite(r):
                raise MlshipError(f"reward must be a finite number, got {reward!r}")
            body["reward"] = r
        if version is not None:
            body["version"] = str(version)
        return dict(post_json(self._path(m, None, "feedback"), body, token=self.token, timeout=self.timeout))

    def quality(self, model: str | None = None) -> dict[str, Any]:
        """Live quality of a model by version from the truths sent with :meth:`feedback` (``GET /v2/models/{m}/quality``):
        ``{"model_name", "versions": [{version, window: {...}, cumulative: {...}}, ...]}``."""
        m = self._model(model)
        return dict(request("GET", f"{self.url}/v2/models/{quote(m, safe='')}/quality", token=self.token,
                            timeout=self.timeout))

    def explain(self, df: Any, model: str | None = None, *, version: str | int | None = None,
                top: int = 5) -> pd.DataFrame:
        """Explains predictions over ``POST /v2/models/{m}/explain`` (exact TreeSHAP on the ``trees`` runtime; another
        model raises :class:`~mlship.errors.ServerError` with the server's reason, status 422).

        One row per input row and target (a class of a multi-class model; one target otherwise), indexed like ``df``:
        ``row`` (position in ``df``), ``target``, ``base`` (expected raw output), ``output`` (this row's raw output, a
        margin before the link), one column per feature with its contribution (``base`` + contributions = ``output``)
        and ``top``: the ``top`` largest ``(feature, value)`` pairs by magnitude. ``attrs["method"]`` says how they
        were computed.

        Example::

            e = c.explain(X.head(3), model="wine", top=3)
            e[["target", "base", "output", "top"]]
        """
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= 1000:
            raise MlshipError(f"top must be a whole number from 1 to 1000, got {top!r}")
        m = self._model(model)
        frame = _frame(df, "explain")
        res = request("POST", self._path(m, version, "explain"), body=_columns_body(frame, top=top),
                      headers={"content-type": "application/json"}, token=self.token, timeout=self.timeout)
        rows: list[dict[str, Any]] = []
        index: list[Any] = []
        for r, targets in enumerate(res["explanations"]):
            for t in targets:
                clash = [f for f in t["values"] if f in _EXPLAIN_COLUMNS]
                if clash:
                    raise MlshipError(f"feature {clash[0]!r} has the name of an explain column {_EXPLAIN_COLUMNS}; "
                                      "rename it, or read the raw answer of POST /v2/models/{m}/explain")
                rows.append({"row": r, "target": t["target"], "base": float(t["base"]), "output": float(t["output"]),
                             **{f: float(v) for f, v in t["values"].items()},
                             "top": [(c["feature"], float(c["value"])) for c in t["top"]]})
                index.append(frame.index[r])
        out = pd.DataFrame(rows, index=pd.Index(index, name=frame.index.name))
        out.attrs["method"] = res.get("method")
        return out
