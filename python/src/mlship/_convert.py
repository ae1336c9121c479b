"""Model → ONNX with the right converter and options, and the library's own predictions to check it against."""
from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import onnx
import pandas as pd

from ._frame import Column, Sample, feed
from .errors import SampleMismatchError, UnsupportedModelError

OPSET = 17          # default ONNX domain (skl2onnx)
ML_OPSET = 3        # ai.onnx.ml domain
MLTOOLS_OPSET = 15  # onnxmltools' highest supported default-domain opset

SUPPORTED = (
    "scikit-learn estimators and Pipelines (with ColumnTransformer, string and categorical columns) [mlship[sklearn]]; "
    "xgboost XGBClassifier/XGBRegressor and Booster [mlship[xgboost]]; "
    "lightgbm LGBMClassifier/LGBMRegressor and Booster [mlship[lightgbm]]; "
    "catboost CatBoostClassifier/CatBoostRegressor [mlship[catboost]]"
)


@dataclass
class Converted:
    onnx_model: onnx.ModelProto
    #: ONNX input name → the columns that feed it, in order
    inputs: list[tuple[str, list[Column]]]
    #: ONNX inputs for the sample
    feeds: dict[str, np.ndarray]
    task: str
    #: the library's outputs keyed by ONNX output name: label (class index or class) / probabilities / the value
    expected: dict[str, np.ndarray]
    classes: list[Any] | None
    framework: str
    framework_version: str
    estimator: str
    converter: str
    produced_by: str
    label_output: str | None


def _family(model: Any) -> str:
    mod = type(model).__module__
    for fam in ("sklearn", "xgboost", "lightgbm", "catboost"):
        if mod == fam or mod.startswith(fam + "."):
            return fam
    if hasattr(model, "fit") and hasattr(model, "predict") and hasattr(model, "get_params"):
        return "sklearn"  # a scikit-learn compatible estimator (converted only if skl2onnx knows its type)
    raise UnsupportedModelError(
        f"mlship.save cannot convert a {type(model).__module__}.{type(model).__name__}; supported: {SUPPORTED}")


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        raise UnsupportedModelError(f"{module} is not installed: pip install 'mlship[{extra}]'") from e


def model_feature_names(model: Any) -> list[str] | None:
    """The feature names a model was fitted with, when it kept them."""
    for attr in ("feature_names_in_",):
        names = getattr(model, attr, None)
        if names is not None:
            return [str(n) for n in names]
    fam = _family(model)
    if fam == "xgboost" and type(model).__name__ == "Booster":
        return list(model.feature_names) if model.feature_names else None
    if fam == "lightgbm" and type(model).__name__ == "Booster":
        names = model.feature_name()
        return None if all(re.fullmatch(r"Column_\d+", n) for n in names) else list(names)
    if fam == "catboost":
        names = getattr(model, "feature_names_", None)
        return None if not names or all(re.fullmatch(r"\d+", n) for n in names) else list(names)
    return None


def model_feature_count(model: Any) -> int | None:
    for attr in ("n_features_in_",):
        n = getattr(model, attr, None)
        if isinstance(n, (int, np.integer)):
            return int(n)
    name = type(model).__name__
    fam = _family(model)
    if fam == "xgboost" and name == "Booster":
        return int(model.num_features())
    if fam == "lightgbm" and name == "Booster":
        return int(model.num_feature())
    if fam == "catboost":
        names = getattr(model, "feature_names_", None)
        return len(names) if names else None
    return None


def check_sample(model: Any, sample: Sample) -> None:
    """Refuses a sample whose columns are not the ones the model was fitted with."""
    want = model_feature_names(model)
    have = [c.name for c in sample.columns]
    if want is not None and _family(model) == "lightgbm":
        # LightGBM replaces spaces and punctuation in the names it keeps: compare the same way
        def norm(n: str) -> str:
            return re.sub(r"[^A-Za-z0-9_]", "_", n)
        if [norm(n) for n in want] == [norm(n) for n in have]:
            want = have
    if want is not None and not sample.is_array and have != want:
        missing = [c for c in want if c not in have]
        extra = [c for c in have if c not in want]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"not in the model {extra}")
        if not missing and not extra:
            detail.append(f"in another order: the model has {want}")
        raise SampleMismatchError(
            f"the sample's columns do not match the model's features: {'; '.join(detail)} "
            f"(the model was fitted with {len(want)} columns: {want[:12]}{' …' if len(want) > 12 else ''})")
    n = model_feature_count(model)
    if n is not None and n != len(have):
        raise SampleMismatchError(f"the model takes {n} features but the sample has {len(have)} columns ({have[:12]})")


def _normalize(onx: onnx.ModelProto, name: str, default_opset: int) -> onnx.ModelProto:
    """Byte-stable graph: a default-domain opset import, one import per domain sorted, no random graph name."""
    if not any(o.domain in ("", "ai.onnx") for o in onx.opset_import):
        onx.opset_import.append(onnx.helper.make_opsetid("", default_opset))
    if re.fullmatch(r"[0-9a-f]{32}", onx.graph.name) or not onx.graph.name:
        onx.graph.name = name
    per_domain: dict[str, int] = {}
    for o in onx.opset_import:
        per_domain[o.domain] = max(o.version, per_domain.get(o.domain, 0))
    del onx.opset_import[:]
    onx.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in sorted(per_domain.items()))
    return onx


def _dense(sample: Sample) -> tuple[list[tuple[str, list[Column]]], dict[str, np.ndarray]]:
    """All-numeric samples: one FP32 input [-1, n] named float_input (as the project's fixtures)."""
    bad = [c.name for c in sample.columns if c.kind not in ("float", "int")]
    if bad:
        raise SampleMismatchError(
            f"this model takes numbers only, but columns {bad} are strings or categories; encode them in a "
            "scikit-learn Pipeline (ColumnTransformer) or as numbers before training")
    cols = [Column(c.name, c.kind, "FP32", c.categories, c.min, c.max, c.missing) for c in sample.columns]
    x = sample.frame.to_numpy(dtype=np.float32, na_value=np.nan)
    return [("float_input", cols)], {"float_input": x}


def _per_column(sample: Sample) -> tuple[list[tuple[str, list[Column]]], dict[str, np.ndarray]]:
    """Mixed frames: one [-1, 1] input per column with the column's own datatype."""
    inputs = [(c.name, [c]) for c in sample.columns]
    feeds = {c.name: feed(c, sample.frame[c.name]) for c in sample.columns}
    return inputs, feeds


def _has_column_transformer(model: Any) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    if isinstance(model, ColumnTransformer):
        return True
    if isinstance(model, Pipeline):
        return any(_has_column_transformer(step) for _, step in model.steps)
    return False


def _final(model: Any) -> Any:
    from sklearn.pipeline import Pipeline
    return _final(model.steps[-1][1]) if isinstance(model, Pipeline) else model


def _classification(model: Any, X: Any, proba: Callable[[Any], np.ndarray] | None,
                    classes: Any) -> tuple[dict[str, np.ndarray], list[Any]]:
    pred = np.asarray(model.predict(X))
    classes = list(classes)
    expected: dict[str, np.ndarray] = {"label": pred.reshape(-1)}
    if proba is not None:
        expected["probabilities"] = np.asarray(proba(X), dtype=np.float64)
    return expected, classes


def convert(model: Any, sample: Sample, name: str) -> Converted:
    fam = _family(model)
    if fam == "sklearn":
        return _sklearn(model, sample, name)
    if fam == "xgboost":
        return _xgboost(model, sample, name)
    if fam == "lightgbm":
        return _lightgbm(model, sample, name)
    return _catboost(model, sample, name)


def _sklearn(model: Any, sample: Sample, name: str) -> Converted:
    sklearn = _require("sklearn", "sklearn")
    skl2onnx = _require("skl2onnx", "sklearn")
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
    from sklearn.base import is_classifier, is_regressor
    final = _final(model)
    per_column = _has_column_transformer(model) or any(c.kind in ("string", "category") for c in sample.columns)
    if per_column and sample.is_array:
        raise SampleMismatchError("this Pipeline selects columns by name: give the sample as a DataFrame")
    inputs, feeds = _per_column(sample) if per_column else _dense(sample)
    types = {"FP32": FloatTensorType, "INT64": Int64TensorType, "BYTES": StringTensorType}
    if per_column:
        initial = [(n, types[cols[0].datatype]([None, 1])) for n, cols in inputs]
    else:
        initial = [("float_input", FloatTensorType([None, len(sample.columns)]))]
    clf = is_classifier(model)
    if not clf and not is_regressor(model):
        raise UnsupportedModelError(
            f"{type(model).__name__} is neither a classifier nor a regressor; mlship.save supports predictors: {SUPPORTED}")
    options = {id(final): {"zipmap": False}} if clf else None
    try:
        onx = skl2onnx.to_onnx(model, initial_types=initial, target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
                               options=options)
    except Exception as e:  # skl2onnx raises RuntimeError/MissingShapeCalculator/... for types it does not know
        raise UnsupportedModelError(
            f"skl2onnx cannot convert {type(model).__name__} ({type(e).__name__}: {str(e).splitlines()[0][:300]}); "
            f"supported: {SUPPORTED}") from e
    X = sample.original if not sample.is_array else sample.frame.to_numpy()
    if clf:
        expected, classes = _classification(model, X, getattr(model, "predict_proba", None), final.classes_)
        produced = "predict/predict_proba" if "probabilities" in expected else "predict"
    else:
        expected = {onx.graph.output[0].name: np.asarray(model.predict(X), dtype=np.float64).reshape(-1)}
        classes, produced = None, "predict"
    return Converted(
        onnx_model=_normalize(onx, name, OPSET), inputs=inputs, feeds=feeds, task="classification" if clf else "regression",
        expected=expected, classes=classes, framework="scikit-learn", framework_version=sklearn.__version__,
        estimator=_describe(model), converter=f"skl2onnx {skl2onnx.__version__}",
        produced_by=f"scikit-learn {sklearn.__version__} {produced}", label_output="label" if clf else None)


def _describe(model: Any) -> str:
    """A Pipeline's steps in one line, e.g. Pipeline(ColumnTransformer(OneHotEncoder[sex], ...), Ridge)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    if isinstance(model, Pipeline):
        return f"Pipeline({', '.join(_describe(s) for _, s in model.steps)})"
    if isinstance(model, ColumnTransformer):
        parts = []
        for _, t, cols in model.transformers:
            if t == "drop":
                continue
            shown = ", ".join(map(str, cols)) if isinstance(cols, (list, tuple)) and len(cols) <= 3 else "…"
            parts.append(f"{'passthrough' if t == 'passthrough' else _describe(t)}[{shown}]")
        return f"ColumnTransformer({', '.join(parts)})"
    return type(model).__name__


def _mltools_types(sample: Sample) -> tuple[list[tuple[str, list[Column]]], dict[str, np.ndarray], list[Any]]:
    from onnxmltools.convert.common.data_types import FloatTensorType
    inputs, feeds = _dense(sample)
    return inputs, feeds, [("float_input", FloatTensorType([None, len(sample.columns)]))]


def _xgboost(model: Any, sample: Sample, name: str) -> Converted:
    xgboost = _require("xgboost", "xgboost")
    onnxmltools = _require("onnxmltools", "xgboost")
    inputs, feeds, initial = _mltools_types(sample)
    kind = type(model).__name__
    booster = kind == "Booster"
    if booster:
        objective = _xgb_objective(model)
        clf = objective.startswith(("binary:", "multi:"))
        if objective not in ("binary:logistic", "multi:softprob", "reg:squarederror", "reg:absoluteerror",
                             "reg:pseudohubererror", "reg:logistic", "count:poisson", "reg:gamma", "reg:tweedie"):
            raise UnsupportedModelError(f"xgboost Booster with objective {objective} is not supported by onnxmltools "
                                        "(use binary:logistic, multi:softprob or a reg: objective)")
    else:
        clf = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    # onnxmltools reads features as f0, f1, …: convert a copy without the names (the model itself is left alone).
    if booster:
        unnamed = model.copy()
        unnamed.feature_names = None
    else:
        unnamed = copy.deepcopy(model)
        unnamed.get_booster().feature_names = None
    try:
        onx = onnxmltools.convert_xgboost(unnamed, initial_types=initial, target_opset=MLTOOLS_OPSET)
    except Exception as e:
        raise UnsupportedModelError(f"onnxmltools cannot convert this xgboost {kind}: {e}") from e
    def booster_raw() -> np.ndarray:
        return np.asarray(model.predict(xgboost.DMatrix(sample.frame.to_numpy(dtype=np.float32, na_value=np.nan),
                                             feature_names=model.feature_names)))
    return _tree_result(model, sample, name, onx, inputs, feeds, clf=clf, framework="xgboost", lib=xgboost,
                        converter=f"onnxmltools {onnxmltools.__version__}", booster_raw=booster_raw if booster else None)


def _xgb_objective(booster: Any) -> str:
    return str(json.loads(booster.save_config())["learner"]["objective"]["name"])


def _lightgbm(model: Any, sample: Sample, name: str) -> Converted:
    lightgbm = _require("lightgbm", "lightgbm")
    onnxmltools = _require("onnxmltools", "lightgbm")
    inputs, feeds, initial = _mltools_types(sample)
    kind = type(model).__name__
    booster = kind == "Booster"
    if booster:
        objective = str(model.params.get("objective", "regression"))
        clf = objective in ("binary", "multiclass", "softmax", "multiclassova")
    else:
        clf = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    try:
        onx = onnxmltools.convert_lightgbm(model, initial_types=initial, target_opset=MLTOOLS_OPSET, zipmap=False)
    except Exception as e:
        raise UnsupportedModelError(f"onnxmltools cannot convert this lightgbm {kind}: {e}") from e
    def booster_raw() -> np.ndarray:
        return np.asarray(model.predict(sample.frame.to_numpy(dtype=np.float64, na_value=np.nan)))
    return _tree_result(model, sample, name, onx, inputs, feeds, clf=clf, framework="lightgbm", lib=lightgbm,
                        converter=f"onnxmltools {onnxmltools.__version__}", booster_raw=booster_raw if booster else None)


def _tree_result(model: Any, sample: Sample, name: str, onx: onnx.ModelProto, inputs: list[tuple[str, list[Column]]],
                 feeds: dict[str, np.ndarray], *, clf: bool, framework: str, lib: Any, converter: str,
                 booster_raw: Callable[[], np.ndarray] | None) -> Converted:
    """The library's outputs for a booster library's model (sklearn API, or a Booster whose raw predict gives the
    values or class probabilities), and the Converted around its ONNX graph."""
    # the library predicts on the values as given (float64), never on the float32 copy fed to ONNX
    X = sample.original if isinstance(sample.original, (np.ndarray, pd.DataFrame)) else sample.frame
    out = onx.graph.output[0].name
    classes: list[Any] | None = None
    if booster_raw is not None:
        raw = np.asarray(booster_raw(), dtype=np.float64)
        if clf:
            proba = raw if raw.ndim == 2 else np.stack([1 - raw, raw], axis=1)
            expected = {"label": proba.argmax(axis=1), "probabilities": proba}
            classes = list(range(proba.shape[1]))
        else:
            expected = {out: raw.reshape(-1)}
    elif clf:
        expected, classes = _classification(model, X, model.predict_proba, model.classes_)
    else:
        expected = {out: np.asarray(model.predict(X), dtype=np.float64).reshape(-1)}
    return Converted(
        onnx_model=_normalize(onx, name, MLTOOLS_OPSET), inputs=inputs, feeds=feeds,
        task="classification" if clf else "regression", expected=expected, classes=classes, framework=framework,
        framework_version=lib.__version__, estimator=type(model).__name__, converter=converter,
        produced_by=f"{framework} {lib.__version__} {'predict/predict_proba' if clf else 'predict'}",
        label_output="label" if clf else None)


def _strip_zipmap(onx: onnx.ModelProto, classes: int) -> onnx.ModelProto:
    """Replaces a ZipMap output by the probability tensor it reads (the Node runtime returns tensors only)."""
    for node in list(onx.graph.node):
        if node.op_type != "ZipMap":
            continue
        src, out = node.input[0], node.output[0]
        onx.graph.node.remove(node)
        for o in list(onx.graph.output):
            if o.name == out:
                onx.graph.output.remove(o)
                onx.graph.output.append(onnx.helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, [None, classes]))
        # rename the tensor the ZipMap read to the output's name
        for n in onx.graph.node:
            for i, x in enumerate(n.output):
                if x == src:
                    n.output[i] = out
    return onx


def _catboost(model: Any, sample: Sample, name: str) -> Converted:
    catboost = _require("catboost", "catboost")
    inputs, feeds = _dense(sample)
    kind = type(model).__name__
    if kind not in ("CatBoostClassifier", "CatBoostRegressor"):
        raise UnsupportedModelError(f"catboost {kind} is not supported; use CatBoostClassifier or CatBoostRegressor")
    if model.get_cat_feature_indices():
        raise UnsupportedModelError("catboost cannot export models with cat_features to ONNX; encode the categories "
                                    "as numbers, or use a scikit-learn Pipeline")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        model.save_model(path, format="onnx", export_parameters={"onnx_graph_name": name})
        onx = onnx.load(path)
    clf = kind == "CatBoostClassifier"
    if clf:
        onx = _strip_zipmap(onx, len(model.classes_))
    else:
        # the regressor's output is [N, 1] though declared [N]
        out = onx.graph.output[0]
        onx.graph.output.remove(out)
        onx.graph.output.append(onnx.helper.make_tensor_value_info(out.name, onnx.TensorProto.FLOAT, [None, 1]))
    # CatBoost names its one input "features": keep the project's name for a dense input.
    old = onx.graph.input[0].name
    onx.graph.input[0].name = "float_input"
    for n in onx.graph.node:
        for i, x in enumerate(n.input):
            if x == old:
                n.input[i] = "float_input"
    return _tree_result(model, sample, name, onx, inputs, feeds, clf=clf, framework="catboost", lib=catboost,
                        converter=f"catboost {catboost.__version__}", booster_raw=None)
