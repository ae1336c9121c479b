"""The bundle's reference profile (``profile.json``) from a training sample, in the project's published format
(``docs/monitoring.md``, ``docs/profile.schema.json``), computed the way ``mlship bundle init --reference`` does
(``src/monitor/profile/build.ts``, ``src/cli/reference.ts``): the same kinds, histogram edges, caps and sketch."""
from __future__ import annotations

import base64
import bisect
import json
import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import SampleMismatchError

PROFILE_FORMAT = "mlship.profile"
PROFILE_VERSION = 1
MAX_BINS = 100
MAX_DISTINCT = 32
MAX_TOP = 100
SKETCH_ACCURACY = 0.01
#: reference rows profiled at most (as bundle init); a larger frame is refused rather than sampled differently
MAX_REFERENCE_ROWS = 1_000_000


def _js_number(x: float) -> str:
    """A number as JavaScript's ``String(x)`` writes it (integral values without '.0'; exponents as 1e-7, 1e+21)."""
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    r = repr(float(x))
    if "e" in r:
        mant, exp = r.split("e")
        e = int(exp)
        if -7 < e < 21:  # JS writes these positionally
            return np.format_float_positional(x, trim="-")
        return f"{mant}e{'+' if e > 0 else '-'}{abs(e)}"
    return r


def numeric_value(v: Any) -> float | None:
    """numericValue of build.ts: numbers (finite), booleans as 1/0, numeric text; anything else is missing."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return 1.0 if v else 0.0
    if isinstance(v, (int, np.integer)):
        return float(v)
    if isinstance(v, (float, np.floating)):
        x = float(v)
    elif isinstance(v, str) and v.strip() != "":
        t = v.strip()
        try:  # JavaScript's Number(): no '_' separators, 0x/0o/0b integers, no 'inf'/'nan' words
            if "_" in t:
                return None
            x = float(int(t, 0)) if t[:2].lower() in ("0x", "0o", "0b") else float(t)
        except ValueError:
            return None
        if math.isinf(x) and t.lstrip("+-") != "Infinity":
            return None
    else:
        return None
    return x if math.isfinite(x) else None


def category_value(v: Any) -> str | None:
    """categoryValue of build.ts: missing is None; numbers by their JavaScript text; booleans as true/false."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        return _js_number(x)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v
    return json.dumps(v)


def reference_edges(values: list[float]) -> list[float]:
    """referenceEdges of build.ts: the distinct values when ≤ MAX_BINS, else the distinct quantiles at b/MAX_BINS."""
    s = sorted(values)
    distinct: list[float] = []
    for x in s:
        if not distinct or distinct[-1] != x:
            distinct.append(x)
            if len(distinct) > MAX_BINS:
                break
    if len(distinct) <= MAX_BINS:
        return distinct if distinct else [0.0]
    edges: list[float] = []
    for b in range(MAX_BINS + 1):
        x = s[math.floor((b / MAX_BINS) * (len(s) - 1))]
        if not edges or edges[-1] < x:
            edges.append(x)
    return edges


def _sketch(values: list[float]) -> str:
    from ddsketch import DDSketch
    from ddsketch.pb.proto import DDSketchProto
    sk = DDSketch(relative_accuracy=SKETCH_ACCURACY)
    for x in values:
        sk.add(x)
    proto = DDSketchProto.to_proto(sk)  # type: ignore[no-untyped-call]
    return base64.b64encode(proto.SerializeToString()).decode("ascii")


def _number(x: float) -> float | int:
    """Integral values as JSON integers (as JSON.stringify writes them), others as floats."""
    return int(x) if x == int(x) and abs(x) < 2 ** 53 else x


def numeric_profile(raw: Iterable[Any]) -> dict[str, Any]:
    nums = [numeric_value(v) for v in raw]
    finite = [x for x in nums if x is not None]
    edges = reference_edges(finite)
    counts = [0] * (len(edges) + 1)
    total = 0.0
    squares = 0.0
    distinct: dict[float, int] | None = {}
    for x in finite:
        total += x
        squares += x * x
        counts[bisect.bisect_right(edges, x)] += 1
        if distinct is not None:
            distinct[x] = distinct.get(x, 0) + 1
            if len(distinct) > MAX_DISTINCT:
                distinct = None
    return {
        "kind": "numeric", "count": len(finite), "nulls": len(nums) - len(finite),
        "min": _number(min(finite)) if finite else None, "max": _number(max(finite)) if finite else None,
        "sum": _number(total), "sum_squares": _number(squares),
        "histogram": {"edges": [_number(e) for e in edges], "counts": counts},
        "distinct": [[_number(v), n] for v, n in sorted(distinct.items())] if distinct is not None else None,
        "sketch": _sketch(finite),
    }


def categorical_profile(raw: Iterable[Any]) -> dict[str, Any]:
    count = nulls = other = 0
    seen: dict[str, int] = {}
    for v in raw:
        c = category_value(v)
        if c is None:
            nulls += 1
            continue
        count += 1
        if c in seen:
            seen[c] += 1
        elif len(seen) < 4 * MAX_TOP:
            seen[c] = 1
        else:
            other += 1
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[:MAX_TOP]
    other += sum(n for _, n in ranked[MAX_TOP:])
    return {"kind": "categorical", "count": count, "nulls": nulls, "top": [[v, n] for v, n in top], "other": other}


def column_profile(kind: str, raw: Iterable[Any]) -> dict[str, Any]:
    return categorical_profile(raw) if kind == "categorical" else numeric_profile(raw)


def feature_kind(feature: dict[str, Any]) -> str:
    """columnKinds of kinds.ts: categorical when the feature lists categories or holds text or booleans."""
    return "categorical" if "categories" in feature or feature["datatype"] in ("BYTES", "BOOL") else "numeric"


def output_kind(task: str, name: str, values: list[Any]) -> str:
    if task == "classification" and name == "label":
        return "categorical"
    for v in values:
        if v is None:
            continue
        return "categorical" if isinstance(v, (str, bool, np.bool_)) else "numeric"
    return "numeric"


def reference_frame(reference: Any, features: list[dict[str, Any]]) -> pd.DataFrame:
    """The reference as a pandas frame with every feature column (others, such as the target, are ignored)."""
    names = [f["name"] for f in features]
    frame = reference.to_pandas() if type(reference).__module__.startswith("polars") else reference
    if isinstance(frame, np.ndarray):
        # as a numpy sample: its columns are the features in order
        if frame.ndim != 2 or frame.shape[1] != len(names):
            raise SampleMismatchError(f"a numpy reference must be 2-D with one column per feature ({len(names)}: "
                                      f"{names}), got shape {frame.shape}")
        frame = pd.DataFrame(frame, columns=names)
    if not isinstance(frame, pd.DataFrame):
        raise SampleMismatchError(f"reference= must be a pandas or polars DataFrame with the feature columns (or a "
                                  f"2-D numpy array like the sample), got {type(reference).__name__}")
    have = [str(c) for c in frame.columns]
    missing = [n for n in names if n not in have]
    if missing:
        raise SampleMismatchError(
            f"reference has no column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} for the "
            f"model's feature{'s' if len(missing) > 1 else ''}; its columns are {have} (rename them, or give a frame "
            f"with every feature: {names})")
    if len(frame) == 0:
        raise SampleMismatchError("reference has no rows; give the training data (or a sample of it)")
    if len(frame) > MAX_REFERENCE_ROWS:
        raise SampleMismatchError(f"reference has {len(frame)} rows, more than {MAX_REFERENCE_ROWS}; pass a sample "
                                  f"(e.g. df.sample({MAX_REFERENCE_ROWS}, random_state=0))")
    out = frame.copy()
    out.columns = have
    return out[names]


def profile_text(profile: dict[str, Any]) -> str:
    """profile.json's text: compact JSON and a newline (as stringifyProfile)."""
    return json.dumps(profile, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
