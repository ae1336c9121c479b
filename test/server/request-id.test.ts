// Every answer carries a request id (the client's, else a generated one) and the version that served it, and predict
// hooks (payload logs, feedback) see that id, the entity, the caller and the latency of each call.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { PredictCall } from "../../src/dataplane/instance.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import {
	type GrpcServer,
	startGrpcServer,
} from "../../src/server/grpc/index.ts";
import { createRestServer } from "../../src/server/rest/index.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";
import { InferenceClient, toContents } from "./grpc/client.ts";

const UUID =
	/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const seen: PredictCall[] = [];
let dp: DataPlane;
let url: string;
let closeRest: () => Promise<void>;
let grpcServer: GrpcServer;
let client: InferenceClient;
const rows = golden("iris-logreg").records.slice(0, 2);
const tensor = {
	name: "float_input",
	datatype: "FP32",
	shape: [1, 4],
	data: [5.1, 3.5, 1.4, 0.2],
};

before(async () => {
	dp = await createDataPlane({
		models: [{ name: "iris", source: bundleDir("iris-logreg") }],
		processMetrics: false,
		hooks: [(c) => seen.push(c)],
	});
	const app = createRestServer(dp);
	await app.listen({ host: "127.0.0.1", port: 0 });
	const addr = app.server.address();
	assert.ok(addr !== null && typeof addr === "object");
	url = `http://127.0.0.1:${addr.port}`;
	closeRest = () => app.close();
	grpcServer = await startGrpcServer(dp, { host: "127.0.0.1", port: 0 });
	client = new InferenceClient(grpcServer.port);
});

after(async () => {
	client?.close();
	await grpcServer?.close();
	await closeRest?.();
	await dp?.close();
});

function post(
	path: string,
	body: unknown,
	headers: Record<string, string> = {},
) {
	return fetch(`${url}${path}`, {
		method: "POST",
		headers: { "content-type": "application/json", ...headers },
		body: JSON.stringify(body),
	});
}

describe("REST", () => {
	it("infer without an id: a generated UUID in the body, the header and the hook, and the version header", async () => {
		seen.length = 0;
		const res = await post("/v2/models/iris/infer", { inputs: [tensor] });
		assert.equal(res.status, 200);
		const body = (await res.json()) as { id: string; model_version: string };
		assert.match(body.id, UUID);
		assert.equal(res.headers.get("x-request-id"), body.id);
		assert.equal(res.headers.get("mlship-model-version"), body.model_version);
		assert.equal(seen.length, 1);
		assert.equal(seen[0]?.requestId, body.id);
		assert.equal(seen[0]?.model, "iris");
		assert.ok((seen[0]?.seconds ?? -1) >= 0);
	});

	it("infer: the body's id wins over the header; the header is used when the body has none", async () => {
		const a = await post(
			"/v2/models/iris/infer",
			{ id: "body-1", inputs: [tensor] },
			{ "x-request-id": "header-1" },
		);
		assert.equal(((await a.json()) as { id: string }).id, "body-1");
		assert.equal(a.headers.get("x-request-id"), "body-1");
		const b = await post(
			"/v2/models/iris/infer",
			{ inputs: [tensor] },
			{ "x-request-id": "header-2" },
		);
		assert.equal(((await b.json()) as { id: string }).id, "header-2");
		assert.equal(seen.at(-1)?.requestId, "header-2");
	});

	it("predict: the id is in the body and the header, and the hook sees it", async () => {
		seen.length = 0;
		const res = await post(
			"/v2/models/iris/predict",
			{ instances: rows },
			{ "x-request-id": "order-42" },
		);
		assert.equal(res.status, 200);
		const body = (await res.json()) as { id: string; model_version: string };
		assert.equal(body.id, "order-42");
		assert.equal(res.headers.get("x-request-id"), "order-42");
		assert.equal(res.headers.get("mlship-model-version"), body.model_version);
		assert.equal(seen[0]?.requestId, "order-42");
		assert.equal(seen[0]?.inputs[0]?.shape[0], 2);
		const gen = await post("/v2/models/iris/predict", { instances: rows });
		assert.match(((await gen.json()) as { id: string }).id, UUID);
	});

	it("refuses an id that is too long or not printable ASCII, naming it, and nothing is predicted", async () => {
		seen.length = 0;
		for (const bad of ["x".repeat(257), "tab\there", "ünïcode"]) {
			const res = await post("/v2/models/iris/infer", {
				id: bad,
				inputs: [tensor],
			});
			assert.equal(res.status, 400, bad);
			assert.match(
				((await res.json()) as { error: string }).error,
				/request id/,
			);
		}
		assert.equal(seen.length, 0);
	});
});

describe("gRPC", () => {
	const req = (extra: object = {}) => ({
		model_name: "iris",
		inputs: [
			{
				name: tensor.name,
				datatype: tensor.datatype,
				shape: tensor.shape,
				contents: toContents("FP32", tensor.data),
			},
		],
		...extra,
	});

	it("ModelInfer without an id gets a generated one, also given to the hook", async () => {
		seen.length = 0;
		const res = await client.infer(req());
		assert.match(res.id, UUID);
		assert.equal(seen[0]?.requestId, res.id);
	});

	it("ModelInfer takes the request's id, else metadata x-request-id", async () => {
		assert.equal(
			(await client.infer(req({ id: "g-1" }), {}, { "x-request-id": "m-1" }))
				.id,
			"g-1",
		);
		assert.equal(
			(await client.infer(req(), {}, { "x-request-id": "m-2" })).id,
			"m-2",
		);
	});
});

describe("embedded and hooks", () => {
	it("a call without a context still reaches hooks, with its latency and no id", async () => {
		const m = await import("../../src/model.ts");
		const model = await m.loadModel(bundleDir("iris-logreg"));
		try {
			const calls: PredictCall[] = [];
			model.addHook((c) => calls.push(c));
			await model.predict(rows);
			assert.equal(calls.length, 1);
			assert.equal(calls[0]?.requestId, undefined);
			assert.ok((calls[0]?.seconds ?? -1) >= 0);
		} finally {
			await model.close();
		}
	});
});
