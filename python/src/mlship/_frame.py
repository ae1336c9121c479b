"""Samples (pandas, polars, numpy) → a pandas frame plus what each column is: name, kind, datatype, categories, range."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import SampleMismatchError

Kind = Literal["float", "int", "string", "category"]


@dataclass
class Column:
    name: str
    kind: Kind
    #: OIP datatype of the column in the bundle (FP32, INT64, BYTES)
    datatype: str
    categories: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    missing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    frame: pd.DataFrame
    columns: list[Column]
    #: the sample as the user gave it, for the library's own predict
    original: Any
    is_array: bool


def _from_polars(sample: Any) -> pd.DataFrame | None:
    mod = type(sample).__module__
    if mod.startswith("polars") and type(sample).__name__ == "DataFrame":
        return sample.to_pandas()
    return None


def read_sample(sample: Any, names: list[str] | None) -> Sample:
    """Reads a pandas or polars DataFrame or a 2-D numpy array; ``names`` names an array's columns."""
    if sample is None:
        raise SampleMismatchError("sample= is required: a few rows of the training data (pandas, polars or numpy)")
    frame = _from_polars(sample)
    is_array = False
    if frame is None and isinstance(sample, pd.DataFrame):
        frame = sample
    if frame is None:
        if not isinstance(sample, np.ndarray):
            raise SampleMismatchError(
                f"sample must be a pandas DataFrame, a polars DataFrame or a 2-D numpy array, got {type(sample).__name__}")
        if sample.ndim != 2:
            raise SampleMismatchError(f"a numpy sample must be 2-D (rows × features), got shape {sample.shape}")
        if not np.issubdtype(sample.dtype, np.number):
            raise SampleMismatchError(
                f"a numpy sample must be numeric, got dtype {sample.dtype}; use a DataFrame for string columns")
        cols = names or [f"f{i}" for i in range(sample.shape[1])]
        if len(cols) != sample.shape[1]:
            raise SampleMismatchError(f"the model takes {len(cols)} features but the sample has {sample.shape[1]} columns")
        frame = pd.DataFrame(sample, columns=cols)
        is_array = True
    if len(frame) == 0:
        raise SampleMismatchError("the sample has no rows; give a few rows of the training data")
    if len(set(map(str, frame.columns))) != frame.shape[1]:
        raise SampleMismatchError(f"the sample's column names are not unique: {list(frame.columns)}")
    return Sample(frame=frame, columns=[_column(str(c), frame[c]) for c in frame.columns],
                  original=sample, is_array=is_array)


def _column(name: str, s: pd.Series) -> Column:
    missing = bool(s.isna().any())
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = list(s.cat.categories)
        if all(isinstance(c, str) for c in cats):
            return Column(name, "category", "BYTES", categories=cats, missing=missing)
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in cats):
            return Column(name, "category", "INT64", categories=[int(c) for c in cats], missing=missing)
        raise SampleMismatchError(
            f"column '{name}': categories must be all strings or all integers, got {cats[:5]}")
    if pd.api.types.is_bool_dtype(s.dtype):
        raise SampleMismatchError(
            f"column '{name}' is boolean; cast it to int (0/1) or to a category before training and saving")
    if pd.api.types.is_integer_dtype(s.dtype):
        v = s.dropna()
        return Column(name, "int", "INT64", min=float(v.min()) if len(v) else None,
                      max=float(v.max()) if len(v) else None, missing=missing)
    if pd.api.types.is_float_dtype(s.dtype):
        v = s.dropna()
        return Column(name, "float", "FP32", min=float(v.min()) if len(v) else None,
                      max=float(v.max()) if len(v) else None, missing=missing)
    if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        vals = s.dropna()
        bad = [v for v in vals if not isinstance(v, str)]
        if bad:
            raise SampleMismatchError(
                f"column '{name}' mixes strings and {type(bad[0]).__name__} values (e.g. {bad[0]!r}); give it one type")
        if missing:
            raise SampleMismatchError(
                f"column '{name}' is a string column with missing values: ONNX string inputs cannot carry a missing "
                "value; fill them (e.g. with 'missing') before training, or use a pandas categorical")
        return Column(name, "string", "BYTES", missing=False)
    raise SampleMismatchError(f"column '{name}' has dtype {s.dtype}, which mlship cannot feed to a model "
                              "(numbers, strings and pandas categoricals are supported)")


def feed(col: Column, s: pd.Series) -> np.ndarray:
    """One column as an ONNX input of shape [n, 1]."""
    if col.datatype == "BYTES":
        if col.missing:
            raise SampleMismatchError(
                f"column '{col.name}' has missing values; a string input cannot carry them: fill them before saving")
        return np.asarray(s.astype(object).map(str).to_numpy(), dtype=object).reshape(-1, 1)
    if col.datatype == "INT64":
        if col.missing:
            raise SampleMismatchError(
                f"column '{col.name}' is an integer column with missing values; make it float (NaN = missing)")
        return np.asarray(s.to_numpy(), dtype=np.int64).reshape(-1, 1)
    return np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float32).reshape(-1, 1)


def record_value(col: Column, v: Any) -> Any:
    """A sample value as a JSON record value (null for missing)."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if col.datatype == "BYTES":
        return str(v)
    if col.datatype == "INT64":
        return int(v)
    return float(v)
