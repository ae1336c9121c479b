// OIP infer with `parameters: {explain: true}` over REST and gRPC: the normal outputs unchanged, plus one BYTES
// output `explanation` (per row, the JSON the /explain endpoint gives for that row) and the method in the
// response parameters; bad parameters are a 400 / INVALID_ARGUMENT.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import type { Tensor } from "../../src/protocol/types.ts";
import {
	type GrpcServer,
	startGrpcServer,
} from "../../src/server/grpc/index.ts";
import { golden } from "../helpers/fixtures.ts";
import {
	goldenTensors,
	jsonInput,
	type RestHarness,
	startRest,
} from "../helpers/server.ts";
import {
	InferenceClient,
	outputValues,
	rejectsWith,
	toContents,
} from "../server/grpc/client.ts";

const F = "trees/wine-xgb-json";
const ROWS = 4;

interface OutJson {
	name: string;
	datatype: string;
	shape: number[];
	data: unknown[];
}

describe("infer with parameters.explain", () => {
	let srv: RestHarness;
	let grpcServer: GrpcServer;
	let client: InferenceClient;
	let inputs: Tensor[];
	before(async () => {
		srv = await startRest({ [F]: "wine", "wine-xgb": "wine-onnx" });
		grpcServer = await startGrpcServer(srv.dp, { host: "127.0.0.1", port: 0 });
		client = new InferenceClient(grpcServer.port);
		inputs = (await goldenTensors(F)).map((t) => {
			const width = t.data.length / (t.shape[0] as number);
			return {
				...t,
				shape: [ROWS, ...t.shape.slice(1)],
				data: t.data.slice(0, ROWS * width) as Tensor["data"],
			};
		});
	});
	after(async () => {
		client?.close();
		await grpcServer?.close();
		await srv?.close();
	});
	const post = async (path: string, body: unknown) => {
		const res = await fetch(`${srv.url}${path}`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
		});
		return {
			status: res.status,
			body: (await res.json()) as Record<string, unknown>,
		};
	};
	const explainEndpoint = async (top: number) =>
		(
			await post("/v2/models/wine/explain", {
				instances: golden(F).records.slice(0, ROWS),
				top,
			})
		).body.explanations as unknown[][];

	it("REST: outputs as without it, plus the explanation of every row (top from explain_top)", async () => {
		const body = { inputs: inputs.map((t) => jsonInput(t)) };
		const plain = await post("/v2/models/wine/infer", body);
		const res = await post("/v2/models/wine/infer", {
			...body,
			parameters: { explain: true, explain_top: 2 },
		});
		assert.equal(res.status, 200, JSON.stringify(res.body));
		const outs = res.body.outputs as OutJson[];
		assert.deepEqual(outs.slice(0, -1), plain.body.outputs);
		const x = outs.at(-1) as OutJson;
		assert.equal(x.name, "explanation");
		assert.equal(x.datatype, "BYTES");
		assert.deepEqual(x.shape, [ROWS]);
		const rows = x.data.map((s) => JSON.parse(s as string)) as {
			target: string;
			top: unknown[];
		}[][];
		assert.deepEqual(rows, await explainEndpoint(2));
		assert.deepEqual(
			rows[0]?.map((t) => t.target),
			["class_0", "class_1", "class_2"],
		);
		assert.equal(rows[0]?.[0]?.top.length, 2);
		assert.deepEqual(res.body.parameters, {
			explain_method: "tree_path_dependent",
			explain_space: "raw",
		});
		// Without the parameter nothing changes.
		assert.equal((plain.body.outputs as OutJson[]).length, 2);
		assert.equal(plain.body.parameters, undefined);
	});

	it("REST: a bad explain or explain_top is a 400; a model that cannot explain a 422 naming what to do", async () => {
		const body = { inputs: inputs.map((t) => jsonInput(t)) };
		const bad = await post("/v2/models/wine/infer", {
			...body,
			parameters: { explain: "yes" },
		});
		assert.equal(bad.status, 400);
		assert.match(
			String(bad.body.error),
			/parameters.explain must be true or false/,
		);
		const top = await post("/v2/models/wine/infer", {
			...body,
			parameters: { explain: true, explain_top: 0 },
		});
		assert.equal(top.status, 400);
		assert.match(
			String(top.body.error),
			/parameters.explain_top must be an integer/,
		);
		const onnxInputs = (await goldenTensors("wine-xgb")).map((t) =>
			jsonInput(t),
		);
		const onnx = await post("/v2/models/wine-onnx/infer", {
			inputs: onnxInputs,
			parameters: { explain: true },
		});
		assert.equal(onnx.status, 422);
		assert.match(String(onnx.body.error), /runtime: trees/);
	});

	it("gRPC: the same extra output and response parameters; a bad parameter is INVALID_ARGUMENT", async () => {
		const req = {
			model_name: "wine",
			inputs: inputs.map((t) => ({
				name: t.name,
				datatype: t.datatype,
				shape: t.shape.map(String),
				contents: toContents(t.datatype, t.data as ArrayLike<unknown>),
			})),
		};
		const plain = await client.infer(req);
		const res = await client.infer({
			...req,
			parameters: {
				explain: { bool_param: true },
				explain_top: { int64_param: "3" },
			},
		});
		assert.equal(res.outputs.length, plain.outputs.length + 1);
		plain.outputs.forEach((o, i) => {
			assert.equal(res.outputs[i]?.name, o.name);
			assert.deepEqual(outputValues(res, i), outputValues(plain, i));
		});
		const i = res.outputs.length - 1;
		assert.equal(res.outputs[i]?.name, "explanation");
		assert.equal(res.outputs[i]?.datatype, "BYTES");
		const rows = outputValues(res, i).map((b) =>
			JSON.parse((b as Buffer).toString("utf8")),
		);
		assert.deepEqual(rows, await explainEndpoint(3));
		assert.equal(
			res.parameters.explain_method?.string_param,
			"tree_path_dependent",
		);
		await rejectsWith(
			client.infer({
				...req,
				parameters: { explain: { string_param: "yes" } },
			}),
			grpc.status.INVALID_ARGUMENT,
			/parameters.explain must be true or false/,
		);
	});
});
