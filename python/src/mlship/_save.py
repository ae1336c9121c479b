"""mlship.save: model → ONNX → verified against the library on the sample → bundle directory (all or nothing)."""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from ._convert import Converted, check_sample, convert, model_feature_names
from ._files import clean, golden_text, manifest_text
from ._frame import Column, Sample, read_sample, record_value
from ._profile import (PROFILE_FORMAT, PROFILE_VERSION, category_value, column_profile, feature_kind, numeric_value,
                       output_kind, profile_text, reference_frame)
from .errors import ConversionMismatchError, MlshipError, SampleMismatchError

# The project's fixture tolerance (tools/fixtures/train.py), ONNX float32 vs the library's float64:
#   |onnx - library| <= REL_TOL * |library| + ABS_TOL
REL_TOL = 1e-4
ABS_TOL = 1e-6
ABS_FLOOR = 1e-6  # rel diff reported = |onnx - library| / max(|library|, ABS_FLOOR)
GOLDEN_ROWS = 1000
WORST_ROWS = 5

_ONNX_TO_OIP = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.DOUBLE: "FP64",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.STRING: "BYTES",
}


def _signature(m: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    def tensors(values: Any) -> list[dict[str, Any]]:
        res = []
        for v in values:
            tt = v.type.tensor_type
            if v.type.WhichOneof("value") != "tensor_type" or tt.elem_type not in _ONNX_TO_OIP:
                raise MlshipError(f"ONNX value '{v.name}' is not a tensor mlship can serve ({v.type})")
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tt.shape.dim]
            res.append({"name": v.name, "datatype": _ONNX_TO_OIP[tt.elem_type], "shape": dims})
        return res
    init = {i.name for i in m.graph.initializer}
    return {"inputs": tensors([i for i in m.graph.input if i.name not in init]), "outputs": tensors(m.graph.output)}


def _sanitize_name(s: str) -> str:
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", s).lstrip("._-")
    return out or "model"


def _sci(x: float) -> float:
    return float(f"{x:.3g}")


def _verify(conv: Converted, blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, float]]:
    """Runs the ONNX model on the sample and compares with the library; raises with the worst rows on a mismatch."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    try:
        sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        results = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, conv.feeds)))
    except Exception as e:
        raise ConversionMismatchError(f"onnxruntime cannot run the exported model on the sample: {e}; nothing was written",
                                      []) from e
    abs_d: dict[str, float] = {}
    rel_d: dict[str, float] = {}
    for oname, ref in conv.expected.items():
        if oname not in results:
            raise ConversionMismatchError(f"the exported model has no output '{oname}' (outputs: {list(results)})", [])
        got = np.asarray(results[oname])
        n = len(ref)
        if oname == conv.label_output:
            g = got.reshape(-1)
            r = np.asarray(ref).reshape(-1)
            same = (g.astype(np.int64) == r.astype(np.int64)) if (np.issubdtype(g.dtype, np.number) and np.issubdtype(
                r.dtype, np.number)) else (g.astype(str) == r.astype(str))
            wrong = np.nonzero(~same)[0]
            if len(wrong):
                worst = [{"row": int(i), "output": oname, "library": clean(r[i].item() if hasattr(r[i], "item") else r[i]),
                          "onnx": clean(g[i].item() if hasattr(g[i], "item") else g[i])} for i in wrong[:WORST_ROWS]]
                raise ConversionMismatchError(
                    f"the ONNX export gives another {oname} than the library on {len(wrong)} of {n} sample rows; "
                    f"nothing was written. Worst rows:\n" + "\n".join(f"  row {w['row']}: library {w['library']!r}, "
                                                                         f"onnx {w['onnx']!r}" for w in worst), worst)
            continue
        g2 = got.astype(np.float64).reshape(n, -1)
        r2 = np.asarray(ref, dtype=np.float64).reshape(n, -1)
        if g2.shape != r2.shape:
            raise ConversionMismatchError(
                f"output '{oname}' has shape {g2.shape} in ONNX but {r2.shape} from the library; nothing was written", [])
        ad = np.abs(g2 - r2)
        excess = ad - (REL_TOL * np.abs(r2) + ABS_TOL)
        per_row = excess.max(axis=1)
        if per_row.max() > 0 or not np.all(np.isfinite(g2) == np.isfinite(r2)):
            order = np.argsort(-per_row)[:WORST_ROWS]
            worst = [{"row": int(i), "output": oname, "library": [float(x) for x in r2[i]],
                      "onnx": [float(x) for x in g2[i]], "excess": float(per_row[i])} for i in order if per_row[i] > 0]
            bad = int((per_row > 0).sum())
            raise ConversionMismatchError(
                f"the ONNX export of output '{oname}' differs from the library beyond |d| <= {REL_TOL}*|library| + "
                f"{ABS_TOL} on {bad} of {n} sample rows (max |d| {float(ad.max()):.3e}); nothing was written. "
                "Worst rows:\n" + "\n".join(f"  row {w['row']}: library {w['library']}, onnx {w['onnx']}"
                                            for w in worst), worst)
        abs_d[oname] = _sci(float(ad.max()))
        rel_d[oname] = _sci(float((ad / np.maximum(np.abs(r2), ABS_FLOOR)).max()))
    return results, abs_d, rel_d


def _encoder_categories(model: Any) -> dict[str, list[Any]]:
    """Categories of columns that a strict encoder (handle_unknown='error') of a fitted ColumnTransformer reads alone."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
    except ImportError:
        return {}
    out: dict[str, list[Any]] = {}

    def walk(m: Any) -> None:
        if isinstance(m, Pipeline):
            for _, s in m.steps:
                walk(s)
        elif isinstance(m, ColumnTransformer) and hasattr(m, "transformers_"):
            for _, t, cols in m.transformers_:
                if isinstance(t, (OneHotEncoder, OrdinalEncoder)) and getattr(t, "handle_unknown", "") == "error" \
                        and isinstance(cols, (list, tuple)) and all(isinstance(c, str) for c in cols):
                    for c, cats in zip(cols, t.categories_):
                        out[c] = [x.item() if hasattr(x, "item") else x for x in cats]
    walk(model)
    return out


def _features(conv: Converted, model: Any, ranges: bool) -> list[dict[str, Any]]:
    strict = _encoder_categories(model)
    feats: list[dict[str, Any]] = []
    for input_name, cols in conv.inputs:
        for c in cols:
            f: dict[str, Any] = {"name": c.name, "input": input_name, "datatype": c.datatype}
            cats = strict.get(c.name, c.categories)
            if cats is not None and c.datatype in ("BYTES", "INT64"):
                f["categories"] = [str(x) if c.datatype == "BYTES" else int(x) for x in cats]
            if ranges and c.min is not None and c.max is not None and c.datatype != "BYTES":
                f["min"], f["max"] = c.min, c.max
            if c.missing:
                f["allow_missing"] = True
            feats.append(f)
    return feats


def _labels(conv: Converted, labels: Sequence[str] | None) -> tuple[list[str] | None, dict[str, Any]]:
    """Manifest labels (probability-column order) and metadata for classes that are not 0..k-1."""
    if conv.classes is None:
        if labels is not None:
            raise SampleMismatchError("labels= is for classifiers; this model is a regressor")
        return None, {}
    classes = conv.classes
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != len(classes):
            raise SampleMismatchError(f"labels= has {len(labels)} names but the model has {len(classes)} classes {classes}")
    is_index = all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in classes) and \
        [int(c) for c in classes] == list(range(len(classes)))
    if is_index:
        return labels or [str(c) for c in classes], {}
    if all(isinstance(c, (str, np.str_)) for c in classes):
        # the label output holds the class names themselves; labels name the probability columns
        return labels or [str(c) for c in classes], {}
    # integer classes other than 0..k-1: the label output holds the class value, not an index
    return None, {"classes": [clean(c.item() if hasattr(c, "item") else c) for c in classes]}


PROFILE_FILE = "profile.json"


def _scoring_value(f: dict[str, Any], v: Any) -> tuple[bool, Any]:
    """A reference value as the server's encoder takes it: (ok, value); not ok leaves the row out of the outputs."""
    if f["datatype"] == "BYTES":
        c = category_value(v)
        ok = c is not None and ("categories" not in f or c in f["categories"])
        return ok, c
    x = numeric_value(v)
    if x is None:
        return bool(f.get("allow_missing")), float("nan")
    if f["datatype"] == "INT64" and x != int(x):
        return False, x
    if "categories" in f and int(x) not in f["categories"]:
        return False, x
    if ("min" in f and x < f["min"]) or ("max" in f and x > f["max"]):
        return False, x
    return True, x


def _reference_profile(reference: Any, blob: bytes, sig: dict[str, list[dict[str, Any]]],
                       features: list[dict[str, Any]], labels: list[str] | None, task: str) -> dict[str, Any]:
    """The reference profile as ``bundle init --reference`` computes it: every feature column, and the outputs of the
    model (this ONNX model, as the server runs it) on the rows it accepts, as ``mlship predict`` writes them."""
    frame = reference_frame(reference, features)
    n = len(frame)
    columns = {f["name"]: frame[f["name"]].tolist() for f in features}
    ok = np.ones(n, dtype=bool)
    values: dict[str, list[Any]] = {}
    for f in features:
        vals = []
        for r, v in enumerate(columns[f["name"]]):
            good, x = _scoring_value(f, v)
            ok[r] &= good
            vals.append(x)
        values[f["name"]] = vals
    keep = np.nonzero(ok)[0]
    outputs: dict[str, list[Any]] = {}
    if len(keep) > 0:
        feeds: dict[str, np.ndarray] = {}
        for t in sig["inputs"]:
            cols = [f["name"] for f in features if f["input"] == t["name"]]
            if t["datatype"] == "BYTES":
                feeds[t["name"]] = np.array([[values[c][r] for c in cols] for r in keep], dtype=object)
            else:
                dt = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}[t["datatype"]]
                feeds[t["name"]] = np.array([[values[c][r] for c in cols] for r in keep], dtype=np.float64).astype(dt)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        for name, arr in zip(names, sess.run(None, feeds)):
            a = np.asarray(arr).reshape(len(keep), -1)
            width = a.shape[1]
            as_label = labels is not None and width == 1 and a.dtype.kind in ("i", "u")
            for j in range(width):
                col = [x.item() if hasattr(x, "item") else x for x in a[:, j]]
                if as_label:
                    assert labels is not None
                    col = [labels[int(x)] if 0 <= int(x) < len(labels) else x for x in col]
                col_name = name if width == 1 else f"{name}_{labels[j] if labels and len(labels) == width else j}"
                outputs[col_name] = col
    return {
        "format": PROFILE_FORMAT, "version": PROFILE_VERSION, "rows": n,
        "features": {f["name"]: column_profile(feature_kind(f), columns[f["name"]]) for f in features},
        "outputs": {k: column_profile(output_kind(task, k, v), v) for k, v in outputs.items()},
    }


def _records(sample: Sample, n: int) -> list[dict[str, Any]]:
    cols = sample.columns
    out = []
    for row in sample.frame.head(n).itertuples(index=False, name=None):
        out.append({c.name: record_value(c, v) for c, v in zip(cols, row)})
    return out


def save(model: Any, path: str | Path, sample: Any = None, *, name: str | None = None,
         labels: Sequence[str] | None = None, reference: Any = None, examples: int = 10,
         metadata: dict[str, Any] | None = None, description: str | None = None, ranges: bool = False,
         feature_names: Sequence[str] | None = None, overwrite: bool = False) -> Path:
    """Saves a trained model as a verified mlship bundle directory: ``model.onnx``, ``mlship.yaml``, ``golden.json``.

    The model is converted to ONNX (no ZipMap; string inputs for string columns; one input per column for mixed
    frames), run with onnxruntime on ``sample`` and compared with the library's own predict/predict_proba at the
    project's tolerance (``|d| <= 1e-4*|library| + 1e-6``, labels exact). On a mismatch nothing is written and
    :class:`~mlship.errors.ConversionMismatchError` shows the worst rows.

    ``sample``: a few training rows (pandas or polars DataFrame, or a 2-D numpy array): feature names, datatypes,
    categories (pandas categoricals and strict encoders) and ranges come from it. ``labels``: class names in
    probability-column order. ``examples``: rows written to the manifest (servers warm up with them; 0 = none).
    ``metadata``: merged into the manifest's metadata (e.g. ``{"metrics": {"accuracy": 0.97}}``). ``ranges=True``
    writes the sample's min/max per numeric feature, which servers then enforce. ``feature_names`` names a numpy
    sample's columns (default: the names the model was fitted with, else ``f0``, ``f1``, …). ``overwrite=True``
    replaces an existing bundle directory. ``reference``: the training data (pandas or polars DataFrame with every
    feature column, others ignored, or a 2-D numpy array like the sample; at most 1,000,000 rows) profiled as the
    drift reference: ``profile.json`` in the published format (docs/monitoring.md), its sha256 in the manifest,
    computed as ``mlship bundle init --reference`` does (rows the model cannot score are left out of the outputs'
    profile).

    Example::

        import mlship
        mlship.save(clf, "iris-bundle", sample=X_test, labels=["setosa", "versicolor", "virginica"])
    """
    if not isinstance(examples, int) or examples < 0 or examples > 64:
        raise SampleMismatchError(f"examples must be a whole number from 0 to 64, got {examples!r}")
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise MlshipError(f"{target} exists and is not a directory; give a directory path for the bundle")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise MlshipError(f"{target} already holds files; pass overwrite=True to replace the bundle there")
    bundle_name = _sanitize_name(name or target.resolve().name)
    if name is not None and bundle_name != name:
        raise MlshipError(f"invalid name {name!r}: use letters, digits, '.', '_' or '-', starting with a letter or digit")

    fitted = model_feature_names(model)
    if feature_names is not None:
        feature_names = [str(n) for n in feature_names]
        if fitted is not None and fitted != feature_names:
            raise SampleMismatchError(f"feature_names= {feature_names} differ from the names the model was fitted "
                                      f"with {fitted}")
        if not isinstance(sample, np.ndarray):
            raise SampleMismatchError("feature_names= names the columns of a numpy sample; a DataFrame has its own")
    smp = read_sample(sample, feature_names or fitted)
    check_sample(model, smp)
    conv = convert(model, smp, bundle_name)
    onnx.checker.check_model(conv.onnx_model, full_check=True)
    blob = conv.onnx_model.SerializeToString()
    _, abs_d, rel_d = _verify(conv, blob)

    manifest_labels, label_meta = _labels(conv, labels)
    sig = _signature(conv.onnx_model)
    opsets = {o.domain: o.version for o in conv.onnx_model.opset_import}
    meta: dict[str, Any] = {
        "framework": conv.framework, "framework_version": conv.framework_version, "estimator": conv.estimator,
        "converter": conv.converter, "onnx_opset": int(opsets.get("", opsets.get("ai.onnx", 0))), **label_meta,
    }
    meta.update(metadata or {})
    manifest: dict[str, Any] = {
        "mlship": 1, "name": bundle_name,
    }
    if description is not None:
        manifest["description"] = description
    manifest.update({
        "runtime": "onnx", "task": conv.task,
        "artifact": {"path": "model.onnx", "sha256": hashlib.sha256(blob).hexdigest()},
        "signature": sig, "features": _features(conv, model, ranges),
    })
    profile_json: str | None = None
    if reference is not None:
        profile_json = profile_text(_reference_profile(reference, blob, sig, manifest["features"], manifest_labels,
                                                       conv.task))
        manifest["profile"] = {"path": PROFILE_FILE,
                               "sha256": hashlib.sha256(profile_json.encode("utf-8")).hexdigest()}
    if manifest_labels is not None:
        manifest["labels"] = manifest_labels
    if examples > 0:
        manifest["examples"] = _records(smp, examples)
    manifest["metadata"] = {k: clean(v) for k, v in meta.items()}
    yaml_text = manifest_text(manifest)

    n = min(len(smp.frame), GOLDEN_ROWS)
    golden = {
        "model": bundle_name, "produced_by": conv.produced_by, "records": _records(smp, n),
        "expected": {k: [clean(x) for x in np.asarray(v)[:n].tolist()] for k, v in conv.expected.items()},
        "onnxruntime_python_max_abs_diff": abs_d, "onnxruntime_python_max_rel_diff": rel_d,
    }
    golden_json = golden_text(golden)

    # All or nothing: written next to the target, then moved into place.
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bundle_name}.", dir=target.parent))
    try:
        (tmp / "model.onnx").write_bytes(blob)
        (tmp / "mlship.yaml").write_text(yaml_text)
        (tmp / "golden.json").write_text(golden_json)
        if profile_json is not None:
            (tmp / PROFILE_FILE).write_bytes(profile_json.encode("utf-8"))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


