"""FastAPI + scikit-learn baseline for bench/serve: the Open Inference Protocol v2 infer route,
written the way a team would write it by hand (no framework of its own).

  POST /v2/models/{name}/infer   {"inputs":[{"name","datatype","shape","data"}]}
       -> {"model_name","id","outputs":[label INT64 [n], probabilities FP64 [n, k]]}
  GET  /v2/health/ready, GET /v2/models/{name}/ready

Models: every bench/out/serve/models/<name>/model.joblib (written by train_models.py), or the
directory in BENCH_SERVE_MODELS. Started by run.ts as
  uvicorn fastapi_app:app --host 127.0.0.1 --port P --workers N --loop uvloop --http httptools
      --no-access-log --log-level warning
The handler is `async def` (predict runs inline on the event loop: for a single row that is
cheaper than FastAPI's threadpool hop), the body is parsed and the response serialised with
orjson, and the features go to numpy in the request's datatype (FP32 -> float32, like MLServer).
"""
from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
import orjson
from fastapi import FastAPI, Request, Response

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("BENCH_SERVE_MODELS", ROOT / "bench" / "out" / "serve" / "models"))
DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}

MODELS = {d.name: joblib.load(d / "model.joblib")
          for d in sorted(MODELS_DIR.iterdir()) if (d / "model.joblib").is_file()}

app = FastAPI()


def error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status,
                    media_type="application/json")


@app.get("/v2/health/ready")
async def ready() -> Response:
    return Response(b"", status_code=200)


@app.get("/v2/models/{name}/ready")
async def model_ready(name: str) -> Response:
    return Response(b"", status_code=200 if name in MODELS else 404)


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> Response:
    model = MODELS.get(name)
    if model is None:
        return error(404, f"model '{name}' is unknown")
    try:
        body = orjson.loads(await request.body())
        inp = body["inputs"][0]
        X = np.asarray(inp["data"], dtype=DTYPES[inp["datatype"]]).reshape(inp["shape"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as e:
        return error(400, f"bad request: {e}")
    proba = model.predict_proba(X)
    label = model.classes_[proba.argmax(axis=1)]
    out = {
        "model_name": name,
        "id": body.get("id", ""),
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [len(label)], "data": label.tolist()},
            {"name": "probabilities", "datatype": "FP64", "shape": list(proba.shape),
             "data": proba.ravel().tolist()},
        ],
    }
    return Response(orjson.dumps(out), media_type="application/json")
