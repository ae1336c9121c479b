"""mlship.save(..., reference=df): profile.json in the published format, equal to what `mlship bundle init --reference`
computes from the same rows (Node), its sha256 in mlship.yaml; `bundle verify` and Node's parseProfile accept it."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import mlship
from conftest import REPO, bundle_verify, mlship_cli, node_env, NODE_BIN
from mlship.errors import SampleMismatchError

NODE_READ = """
import { readFileSync } from "node:fs";
import { parseProfile } from "%(repo)s/src/monitor/profile/format.ts";
import { quantileOf } from "%(repo)s/src/monitor/profile/build.ts";
const out = {};
for (const path of process.argv.slice(1)) {
  const p = parseProfile(readFileSync(path), path);
  const q = {};
  for (const [group, cols] of [["features", p.features], ["outputs", p.outputs]])
    for (const [name, c] of Object.entries(cols))
      if (c.kind === "numeric") q[`${group}.${name}`] = [0.1, 0.5, 0.9].map((x) => quantileOf(c, x));
  out[path] = q;
}
console.log(JSON.stringify(out));
"""


def node_quantiles(*paths: Path) -> dict[str, dict[str, list[float]]]:
    """Node's parseProfile on each profile, then the sketch's quantiles of every numeric column (decodes the sketch)."""
    import subprocess
    r = subprocess.run([str(NODE_BIN / "node"), "--input-type=module", "-e", NODE_READ % {"repo": REPO},
                        *map(str, paths)], capture_output=True, text=True, env=node_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def without_sketch(cols: dict[str, Any]) -> dict[str, Any]:
    return {k: {f: v for f, v in c.items() if f != "sketch"} for k, c in cols.items()}


def test_reference_profile_equals_bundle_init_reference(tmp_path: Path) -> None:
    from test_roundtrip import mixed
    model, df, kw = mixed()
    ref = df.copy()
    ref["target"] = 1  # a column that is not a feature is ignored, as bundle init does
    p = mlship.save(model, tmp_path / "py", sample=df, reference=ref, **kw)

    manifest = yaml.safe_load((p / "mlship.yaml").read_text())
    raw = (p / "profile.json").read_bytes()
    assert manifest["profile"] == {"path": "profile.json", "sha256": hashlib.sha256(raw).hexdigest()}
    assert bundle_verify(p)["ok"] is True
    mine = json.loads(raw)
    assert mine["format"] == "mlship.profile" and mine["version"] == 1 and mine["rows"] == len(df)
    assert list(mine["features"]) == [f["name"] for f in manifest["features"]]
    assert mine["features"]["sex"]["kind"] == "categorical" and mine["features"]["band"]["kind"] == "categorical"
    assert mine["features"]["bmi"]["nulls"] == int(df["bmi"].isna().sum()) > 0
    assert len(mine["features"]["s1"]["histogram"]["edges"]) > 50  # > 100 distinct values: quantile edges
    assert mine["features"]["s1"]["distinct"] is None and mine["features"]["sex"]["top"][0][1] > 200
    assert set(mine["outputs"]) == {"label", "probabilities_low", "probabilities_high"}
    assert {v for v, _ in mine["outputs"]["label"]["top"]} == {"low", "high"}

    # The same rows through Node: bundle init refreshes a copy of the bundle and profiles a Parquet file of them.
    node_dir = shutil.copytree(p, tmp_path / "node")
    (node_dir / "profile.json").unlink()
    ref.to_parquet(tmp_path / "ref.parquet")
    mlship_cli("bundle", "init", str(node_dir / "model.onnx"), "--reference", str(tmp_path / "ref.parquet"))
    theirs = json.loads((node_dir / "profile.json").read_text())
    assert theirs["rows"] == mine["rows"]
    assert without_sketch(mine["features"]) == without_sketch(theirs["features"])
    assert list(mine["outputs"]) == list(theirs["outputs"])
    for name, c in mine["outputs"].items():
        t = theirs["outputs"][name]
        if c["kind"] == "categorical":
            assert c == t
            continue
        for f in ("count", "nulls"):
            assert c[f] == t[f]
        for f in ("min", "max", "sum", "sum_squares"):
            assert c[f] == pytest.approx(t[f], rel=1e-5, abs=1e-6), f"outputs.{name}.{f}"
        np.testing.assert_allclose(c["histogram"]["edges"], t["histogram"]["edges"], rtol=1e-5, atol=1e-6)

    q = node_quantiles(p / "profile.json", node_dir / "profile.json")
    qa, qb = q[str(p / "profile.json")], q[str(node_dir / "profile.json")]
    assert set(qa) == set(qb) and "features.s1" in qa and "outputs.probabilities_high" in qa
    for k in qa:
        np.testing.assert_allclose(qa[k], qb[k], rtol=0.02, err_msg=k)
    s1 = np.sort(df["s1"].to_numpy())
    assert qa["features.s1"][1] == pytest.approx(s1[int(0.5 * (len(s1) - 1))], rel=0.01)

    # registered through the Node CLI, `models show` summarises it (counts, and quantiles from the sketch)
    reg = f"sqlite:{tmp_path / 'r.db'}"
    mlship_cli("models", "register", str(p), "--registry", reg)
    shown = json.loads(mlship_cli("models", "show", p.name, "--registry", reg, "--json").stdout)["profile_summary"]
    assert shown["rows"] == len(df)
    bmi = next(f for f in shown["features"] if f["name"] == "bmi")
    assert bmi["count"] == mine["features"]["bmi"]["count"] and bmi["nulls"] == mine["features"]["bmi"]["nulls"]
    assert bmi["p50"] == pytest.approx(float(df["bmi"].median()), rel=0.02)


def test_a_reference_without_every_feature_raises_and_writes_nothing(tmp_path: Path) -> None:
    from test_roundtrip import mixed
    model, df, kw = mixed()
    with pytest.raises(SampleMismatchError, match=r"reference has no columns 'bmi', 'band' for the model's features"):
        mlship.save(model, tmp_path / "b", sample=df, reference=df.drop(columns=["bmi", "band"]), **kw)
    assert not (tmp_path / "b").exists()
    with pytest.raises(SampleMismatchError, match="reference has no rows"):
        mlship.save(model, tmp_path / "b", sample=df, reference=df.head(0), **kw)
    with pytest.raises(SampleMismatchError, match="reference= must be a pandas or polars DataFrame"):
        mlship.save(model, tmp_path / "b", sample=df, reference=df.to_dict(), **kw)
    assert not (tmp_path / "b").exists()


def test_a_reference_row_the_model_cannot_score_is_profiled_as_a_feature_only(tmp_path: Path) -> None:
    from test_roundtrip import mixed
    model, df, kw = mixed()
    ref = df.copy()
    ref["sex"] = ref["sex"].astype(object)
    ref.loc[ref.index[0], "sex"] = "unknown"  # not a category of the strict encoder: the server refuses the row
    p = mlship.save(model, tmp_path / "b", sample=df, reference=ref, **kw)
    prof = json.loads((p / "profile.json").read_text())
    assert prof["rows"] == len(df) and prof["features"]["sex"]["count"] == len(df)
    assert ["unknown", 1] in prof["features"]["sex"]["top"]
    assert prof["outputs"]["label"]["count"] == len(df) - 1
    # Node leaves the same row out
    node_dir = shutil.copytree(p, tmp_path / "node")
    ref.to_parquet(tmp_path / "ref.parquet")
    mlship_cli("bundle", "init", str(node_dir / "model.onnx"), "--reference", str(tmp_path / "ref.parquet"))
    theirs = json.loads((node_dir / "profile.json").read_text())
    assert theirs["outputs"]["label"] == prof["outputs"]["label"]
    assert without_sketch(theirs["features"]) == without_sketch(prof["features"])


def test_values_are_read_as_nodes_numeric_value_and_category_value() -> None:
    """The same raw values through build.ts's numericValue/categoryValue (Node) and the SDK's."""
    import subprocess
    from mlship._profile import category_value, numeric_value
    values: list[Any] = [1, 2.5, -0.0, 3.0, 1e-7, 1.5e-7, 1e21, 123456789012.5, 1e300, None, float("nan"), True,
                         False, "4.5", " 7 ", "", "abc", "1_000", "0x1f", "inf", "Infinity", "-Infinity", "1e3", "é"]
    script = (f'import {{ numericValue, categoryValue }} from "{REPO}/src/monitor/profile/build.ts";'
              'const vs = JSON.parse(process.argv[1]).map((v) => v === "__nan__" ? NaN : v);'
              'console.log(JSON.stringify(vs.map((v) => [numericValue(v), categoryValue(v)])));')
    arg = json.dumps(["__nan__" if isinstance(v, float) and v != v else v for v in values])
    r = subprocess.run([str(NODE_BIN / "node"), "--input-type=module", "-e", script, arg], capture_output=True,
                       text=True, env=node_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    node = json.loads(r.stdout)
    assert [[numeric_value(v), category_value(v)] for v in values] == node
