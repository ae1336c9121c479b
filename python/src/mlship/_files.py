"""Byte-stable writers of mlship.yaml and golden.json, in the format the Node side reads (src/bundle/manifest.ts)."""
from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import yaml

# Manifest keys in the order they are written (the zod schema in src/bundle/manifest.ts is the truth).
MANIFEST_ORDER = ["mlship", "name", "description", "runtime", "task", "artifact", "reference", "profile", "signature",
                  "features", "labels", "batching", "executor", "examples", "metadata"]
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_YAML_WORDS = ("true", "false", "null", "yes", "no", "on", "off", "y", "n", "~")


def yscalar(v: Any) -> str:
    """One value in YAML flow style: plain words unquoted, everything else as JSON (valid YAML)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"non-finite number {v} cannot be written to mlship.yaml")
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(yscalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{yscalar(str(k))}: {yscalar(x)}" for k, x in v.items()) + "}"
    s = str(v)
    if _PLAIN.fullmatch(s) and s.lower() not in _YAML_WORDS:
        return s
    return json.dumps(s)


def manifest_text(m: dict[str, Any]) -> str:
    """mlship.yaml text: one line per tensor, feature, example and metadata key; checked to parse back to ``m``."""
    unknown = set(m) - set(MANIFEST_ORDER)
    if unknown:
        raise ValueError(f"unknown manifest keys: {sorted(unknown)}")
    lines: list[str] = []
    for key in MANIFEST_ORDER:
        if key not in m:
            continue
        v = m[key]
        if key == "description":
            lines.append(f"description: {json.dumps(v)}")
        elif key in ("artifact", "reference", "profile"):
            # path and sha256 as they are (the round-trip check below refuses one YAML would read otherwise)
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {x}" for k, x in v.items())
        elif key in ("batching", "executor"):
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {yscalar(x)}" for k, x in v.items())
        elif key == "signature":
            lines.append("signature:")
            for part in ("inputs", "outputs"):
                lines.append(f"  {part}:")
                lines.extend(f"    - {yscalar(t)}" for t in v[part])
        elif key in ("features", "examples"):
            lines.append(f"{key}:")
            lines.extend(f"  - {yscalar(x)}" for x in v)
        elif key == "metadata":
            lines.append("metadata:")
            for k, x in v.items():
                # a version such as 3.10 must stay a string
                lines.append(f"  {yscalar(str(k))}: {json.dumps(x) if isinstance(x, str) and k.endswith('_version') else yscalar(x)}")
        else:
            lines.append(f"{key}: {yscalar(v)}")
    text = "\n".join(lines) + "\n"
    parsed = yaml.safe_load(text)
    if parsed != m:
        raise ValueError(f"manifest YAML round-trip mismatch for {m.get('name')}:\n{parsed}\n!=\n{m}")
    return text


def clean(v: Any) -> Any:
    """numpy → plain JSON types; NaN and None become null (a missing value)."""
    if v is None:
        return None
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.str_):
        return str(v)
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


def golden_text(g: dict[str, Any]) -> str:
    """golden.json text: pretty but compact, one record / one output row per line; checked to parse back."""
    def c(v: Any) -> str:
        return json.dumps(v, separators=(", ", ": "), allow_nan=False)

    def rows(items: list[Any], ind: str) -> str:
        return ",\n".join(ind + c(x) for x in items)

    out = ["{", f'  "model": {c(g["model"])},', f'  "produced_by": {c(g["produced_by"])},',
           '  "records": [', rows(g["records"], "    "), "  ],", '  "expected": {']
    exp = []
    for k, v in g["expected"].items():
        if v and isinstance(v[0], list):
            exp.append(f"    {c(k)}: [\n" + rows(v, "      ") + "\n    ]")
        else:
            exp.append(f"    {c(k)}: {c(v)}")
    out.append(",\n".join(exp))
    out.append("  },")
    extra = [k for k in g if k not in ("model", "produced_by", "records", "expected")]
    out.append(",\n".join(f"  {c(k)}: {c(g[k])}" for k in extra))
    out.append("}")
    text = "\n".join(out) + "\n"
    if json.loads(text) != g:
        raise ValueError("golden.json round-trip mismatch")
    return text
