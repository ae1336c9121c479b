"""Client.feedback/quality and Client.explain against the session's real `mlship serve`: truths joined by request id
show in live quality; TreeSHAP contributions of a trees-runtime XGBoost model add up to XGBoost's own raw margin."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

import mlship
from conftest import mlship_cli
from mlship.errors import MlshipError, ServerError

NAMES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module")
def iris_served(tmp_path_factory: pytest.TempPathFactory, server: str) -> tuple[LogisticRegression, pd.DataFrame, np.ndarray]:
    ds = load_iris(as_frame=True)
    X = ds.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    m = LogisticRegression(max_iter=200).fit(X, ds.target)  # not perfect on its training data: accuracy < 1
    path = mlship.save(m, tmp_path_factory.mktemp("fb") / "b", sample=X, name="fb-iris", labels=NAMES)
    mlship.register(path, server=server)
    return m, X, ds.target.to_numpy()


def test_truths_by_request_id_show_in_live_quality(server: str, iris_served: tuple[LogisticRegression, pd.DataFrame,
                                                                                     np.ndarray]) -> None:
    m, X, y = iris_served
    c = mlship.Client(server, model="fb-iris")
    p = c.predict(X, request_id="py-truth-1")
    assert p.attrs["id"] == "py-truth-1" and p.attrs["model_version"] == "1"
    truth = [NAMES[k] for k in y]
    assert c.feedback(p.attrs["id"], truth=truth) == {"accepted": 1, "joined": 1, "byVersion": 0}

    q = c.quality()
    assert q["model_name"] == "fb-iris"
    (v,) = q["versions"]
    assert v["version"] == "1" and v["task"] == "classification"
    assert v["window"]["rows"] == 150 and v["cumulative"]["rows"] == 150
    want = accuracy_score(y, m.predict(X))
    assert want < 1 and v["window"]["accuracy"] == pytest.approx(want, abs=1e-12)

    # an answer without a client id carries the server's; a reward joins by it
    p2 = c.predict(X.head(2))
    assert isinstance(p2.attrs["id"], str) and len(p2.attrs["id"]) >= 16
    assert c.feedback(p2.attrs["id"], reward=0.5, version=p2.attrs["model_version"])["joined"] == 1
    assert c.quality()["versions"][0]["rewards"] == {"count": 1, "sum": 0.5}

    with pytest.raises(ServerError, match="already received feedback") as again:
        c.feedback("py-truth-1", truth=truth)
    assert again.value.status == 409
    with pytest.raises(ServerError, match="no answer of model 'fb-iris' with request id 'nope'") as unknown:
        c.feedback("nope", truth="setosa")
    assert unknown.value.status == 404


def test_feedback_refuses_bad_arguments_before_sending(server: str) -> None:
    c = mlship.Client(server, model="fb-iris")
    with pytest.raises(MlshipError, match="exactly one"):
        c.feedback("a", truth="setosa", reward=1.0)
    with pytest.raises(MlshipError, match="finite"):
        c.feedback("a", reward=float("nan"))
    with pytest.raises(MlshipError, match="printable ASCII"):
        c.feedback("é", reward=1.0)
    with pytest.raises(MlshipError, match="printable ASCII"):
        c.predict(pd.DataFrame({"x": [1.0]}), request_id="")


def test_explain_contributions_add_up_to_xgboost_raw_margin(tmp_path: Path, server: str) -> None:
    # An XGBoost model as users save it (Booster.save_model JSON) and `mlship bundle init` makes it a trees bundle.
    import xgboost
    from sklearn.datasets import load_wine
    ds = load_wine(as_frame=True)
    features = list(ds.data.columns)
    clf = xgboost.XGBClassifier(n_estimators=15, max_depth=3, n_jobs=1, random_state=0).fit(ds.data, ds.target)
    bundle = tmp_path / "xgb-trees"
    bundle.mkdir()
    clf.get_booster().save_model(str(bundle / "m.json"))
    mlship_cli("bundle", "init", str(bundle / "m.json"), "--features", ",".join(features),
               "--labels", ",".join(ds.target_names))
    mlship.register(bundle, server=server)
    df = ds.data.iloc[::15].copy()
    df.index = [f"r{i}" for i in range(len(df))]
    c = mlship.Client(server)
    e = c.explain(df, model="xgb-trees", top=3)
    assert e.attrs["method"] == "tree_path_dependent"
    assert list(e.columns) == ["row", "target", "base", "output", *features, "top"]
    assert len(e) == 3 * len(df) and list(e.index[:3]) == ["r0", "r0", "r0"]
    assert e["target"].tolist()[:3] == list(ds.target_names)

    margin = clf.predict(df.astype(np.float32), output_margin=True)
    assert margin.shape == (len(df), 3)
    got = (e["base"] + e[features].sum(axis=1)).to_numpy().reshape(len(df), 3)
    np.testing.assert_allclose(got, margin, rtol=0, atol=1e-4)
    for _, r in e.iterrows():
        by_size = sorted(((f, r[f]) for f in features), key=lambda fv: -abs(fv[1]))[:3]
        assert [f for f, _ in r["top"]] == [f for f, _ in by_size]
        assert [v for _, v in r["top"]] == pytest.approx([v for _, v in by_size], abs=1e-12)


def test_explain_of_an_onnx_model_is_the_servers_422(server: str, iris_served: tuple[LogisticRegression,
                                                                                     pd.DataFrame, np.ndarray]) -> None:
    _, X, _ = iris_served
    with pytest.raises(ServerError, match="runs on the onnx runtime, which cannot explain predictions") as err:
        mlship.Client(server).explain(X.head(2), model="fb-iris")
    assert err.value.status == 422
    with pytest.raises(MlshipError, match="top must be"):
        mlship.Client(server).explain(X.head(2), model="fb-iris", top=0)
