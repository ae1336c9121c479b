"""Calls an mlship server with Triton's own Python client (tritonclient), over HTTP (JSON and binary tensors)
and gRPC, and prints what came back as JSON lines. The test (test/server/tritonclient.test.ts) compares the
results with the original library's golden outputs.

usage: tritonclient_check.py HTTP_PORT GRPC_PORT CASES.json
CASES.json: [{"model": name, "inputs": [{"name", "datatype", "shape", "data"}], "outputs": [names]}]
"""
import json
import sys

import numpy as np
import tritonclient.grpc as tg
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

NP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_, "BYTES": np.object_}


def array(t):
    a = np.array(t["data"], dtype=NP[t["datatype"]])
    return a.reshape(t["shape"])


def main() -> None:
    http_port, grpc_port, cases_path = sys.argv[1], sys.argv[2], sys.argv[3]
    cases = json.load(open(cases_path))
    h = th.InferenceServerClient(f"127.0.0.1:{http_port}")
    g = tg.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    print(json.dumps({"check": "health", "http_live": h.is_server_live(), "http_ready": h.is_server_ready(),
                      "grpc_live": g.is_server_live(), "grpc_ready": g.is_server_ready(),
                      "extensions": h.get_server_metadata()["extensions"]}))
    for case in cases:
        m = case["model"]
        meta = h.get_model_metadata(m)
        gmeta = g.get_model_metadata(m)
        print(json.dumps({"check": "metadata", "model": m, "http_platform": meta["platform"],
                          "grpc_platform": gmeta.platform, "http_ready": h.is_model_ready(m), "grpc_ready": g.is_model_ready(m)}))
        for transport, binary in (("http-json", False), ("http-binary", True), ("grpc", None)):
            mod = tg if transport == "grpc" else th
            inputs = []
            for t in case["inputs"]:
                i = mod.InferInput(t["name"], t["shape"], t["datatype"])
                if binary is None:
                    i.set_data_from_numpy(array(t))
                else:
                    i.set_data_from_numpy(array(t), binary_data=binary)
                inputs.append(i)
            outs = [mod.InferRequestedOutput(o) if binary is None else mod.InferRequestedOutput(o, binary_data=binary)
                    for o in case["outputs"]]
            client = g if transport == "grpc" else h
            r = client.infer(m, inputs, outputs=outs, request_id=f"{m}-{transport}")
            got = {o: r.as_numpy(o).reshape(-1).tolist() for o in case["outputs"]}
            print(json.dumps({"check": "infer", "model": m, "transport": transport, "outputs": got}))
    for transport, client in (("http", h), ("grpc", g)):
        try:
            client.get_model_metadata("no-such-model")
            print(json.dumps({"check": "unknown", "transport": transport, "error": None}))
        except InferenceServerException as e:
            print(json.dumps({"check": "unknown", "transport": transport, "error": str(e)}))


if __name__ == "__main__":
    main()
