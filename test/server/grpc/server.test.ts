// gRPC conformance over real sockets: every RPC against the committed fixtures, golden outputs, bad input.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { readBundle } from "../../../src/bundle/bundle.ts";
import type { Manifest } from "../../../src/bundle/manifest.ts";
import { encodeRecords, planTable } from "../../../src/codec/table.ts";
import { createDataPlane } from "../../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../../src/dataplane/types.ts";
import type { Tensor } from "../../../src/protocol/types.ts";
import {
	type GrpcServer,
	startGrpcServer,
} from "../../../src/server/grpc/index.ts";
import {
	assertOutputMatches,
	bundleDir,
	FIXTURES,
	type Golden,
	golden,
} from "../../helpers/fixtures.ts";
import {
	InferenceClient,
	type InferResponse,
	outputValues,
	rejectsWith,
	toContents,
	toRaw,
} from "./client.ts";

interface Case {
	name: string;
	manifest: Manifest;
	golden: Golden;
	tensors: Tensor[];
}

const cases = new Map<string, Case>();
let dp: DataPlane;
let server: GrpcServer;
let client: InferenceClient;

before(async () => {
	for (const name of FIXTURES) {
		const { manifest } = await readBundle(bundleDir(name));
		const g = golden(name);
		const { tensors, errors } = encodeRecords(planTable(manifest), g.records);
		assert.deepEqual(errors, [], `${name}: golden records encode`);
		cases.set(name, { name, manifest, golden: g, tensors });
	}
	dp = await createDataPlane({
		models: FIXTURES.map((name) => ({ name, source: bundleDir(name) })),
	});
	server = await startGrpcServer(dp, { host: "127.0.0.1", port: 0 });
	client = new InferenceClient(server.port);
});

after(async () => {
	client?.close();
	await server?.close();
	await dp?.close();
});

function typedRequest(c: Case, extra: object = {}) {
	return {
		model_name: c.name,
		inputs: c.tensors.map((t) => ({
			name: t.name,
			datatype: t.datatype,
			shape: t.shape,
			contents: toContents(t.datatype, t.data),
		})),
		...extra,
	};
}

function rawRequest(c: Case, extra: object = {}) {
	return {
		model_name: c.name,
		inputs: c.tensors.map((t) => ({
			name: t.name,
			datatype: t.datatype,
			shape: t.shape,
		})),
		raw_input_contents: c.tensors.map((t) => toRaw(t.datatype, t.data)),
		...extra,
	};
}

function assertGolden(c: Case, res: InferResponse, outputs?: string[]): void {
	const want = outputs ?? Object.keys(c.golden.expected);
	const rows = c.golden.records.length;
	assert.equal(res.model_name, c.name);
	assert.deepEqual(
		res.outputs.map((o) => o.name).sort(),
		[...want].sort(),
		`${c.name}: output names`,
	);
	res.outputs.forEach((o, i) => {
		const spec = c.manifest.signature.outputs.find((s) => s.name === o.name);
		assert.ok(spec, `${c.name}: unexpected output ${o.name}`);
		assert.equal(o.datatype, spec.datatype, `${c.name}/${o.name}: datatype`);
		assert.equal(Number(o.shape[0]), rows, `${c.name}/${o.name}: batch`);
		assert.deepEqual(
			o.shape.slice(1).map(Number),
			spec.shape.slice(1),
			`${c.name}/${o.name}: shape`,
		);
		const expected = c.golden.expected[o.name];
		assert.ok(expected, `${c.name}: no golden values for ${o.name}`);
		assertOutputMatches(c.name, o.name, outputValues(res, i), expected);
	});
}

/** A valid request still succeeds: the server keeps serving after a bad one. */
async function stillServes(): Promise<void> {
	assert.deepEqual(await client.call("ServerLive"), { live: true });
	const c = cases.get("iris-logreg") as Case;
	assertGolden(c, await client.infer(rawRequest(c)));
}

describe("health and metadata", () => {
	test("ServerLive and ServerReady", async () => {
		assert.deepEqual(await client.call("ServerLive"), { live: true });
		assert.deepEqual(await client.call("ServerReady"), { ready: true });
	});

	test("ServerMetadata", async () => {
		const m = await client.call<{
			name: string;
			version: string;
			extensions: string[];
		}>("ServerMetadata");
		const want = dp.metadata();
		assert.equal(m.name, want.name);
		assert.equal(m.version, want.version);
		assert.deepEqual(m.extensions, want.extensions);
		assert.ok(m.name.length > 0);
	});

	test("ModelReady: every fixture, default and explicit version", async () => {
		for (const name of FIXTURES) {
			assert.deepEqual(await client.call("ModelReady", { name }), {
				ready: true,
			});
			const { version } = dp.modelMetadata(name);
			assert.deepEqual(await client.call("ModelReady", { name, version }), {
				ready: true,
			});
		}
	});

	test("ModelReady: unknown model is NOT_FOUND, empty name INVALID_ARGUMENT", async () => {
		await rejectsWith(
			client.call("ModelReady", { name: "no-such-model" }),
			grpc.status.NOT_FOUND,
			/no-such-model/,
		);
		await rejectsWith(
			client.call("ModelReady", { name: "" }),
			grpc.status.INVALID_ARGUMENT,
			/name is required/,
		);
	});

	test("ModelMetadata: name, versions, platform, tensors with int64 shapes", async () => {
		for (const c of cases.values()) {
			const m = await client.call<{
				name: string;
				versions: string[];
				platform: string;
				inputs: { name: string; datatype: string; shape: string[] }[];
				outputs: { name: string; datatype: string; shape: string[] }[];
			}>("ModelMetadata", { name: c.name });
			assert.equal(m.name, c.name);
			assert.equal(m.platform, "onnx_onnxv1");
			assert.ok(m.versions.length >= 1);
			const shapes = (ts: typeof m.inputs) =>
				ts.map((t) => ({
					name: t.name,
					datatype: t.datatype,
					shape: t.shape.map(Number),
				}));
			assert.deepEqual(shapes(m.inputs), c.manifest.signature.inputs);
			assert.deepEqual(shapes(m.outputs), c.manifest.signature.outputs);
		}
	});

	test("ModelMetadata: unknown model and unknown version are NOT_FOUND", async () => {
		await rejectsWith(
			client.call("ModelMetadata", { name: "nope" }),
			grpc.status.NOT_FOUND,
		);
		await rejectsWith(
			client.call("ModelMetadata", { name: "iris-logreg", version: "999" }),
			grpc.status.NOT_FOUND,
		);
	});
});

describe("ModelInfer: golden outputs", () => {
	for (const name of FIXTURES) {
		test(`${name}: typed contents in, typed contents out`, async () => {
			const c = cases.get(name) as Case;
			const res = await client.infer(typedRequest(c));
			assert.deepEqual(res.raw_output_contents, []);
			for (const o of res.outputs) assert.ok(o.contents, `${o.name}: contents`);
			assertGolden(c, res);
		});

		test(`${name}: raw_input_contents in, raw_output_contents out`, async () => {
			const c = cases.get(name) as Case;
			const res = await client.infer(rawRequest(c));
			assert.equal(res.raw_output_contents.length, res.outputs.length);
			for (const o of res.outputs) assert.equal(o.contents, null);
			assertGolden(c, res);
		});
	}

	test("explicit model_version", async () => {
		const c = cases.get("wine-xgb") as Case;
		const { version } = dp.modelMetadata(c.name);
		const res = await client.infer(rawRequest(c, { model_version: version }));
		assert.equal(res.model_version, version);
		assertGolden(c, res);
	});

	test("requested outputs: only those come back", async () => {
		const c = cases.get("iris-logreg") as Case;
		for (const raw of [false, true]) {
			const req = raw ? rawRequest(c) : typedRequest(c);
			const res = await client.infer({
				...req,
				outputs: [{ name: "probabilities" }],
			});
			assertGolden(c, res, ["probabilities"]);
			const label = await client.infer({
				...req,
				outputs: [{ name: "label" }],
			});
			assertGolden(c, label, ["label"]);
		}
	});

	test("id is echoed, model_name and model_version are set", async () => {
		const c = cases.get("breast-cancer-gbdt") as Case;
		const res = await client.infer(typedRequest(c, { id: "req-42" }));
		assert.equal(res.id, "req-42");
		assert.equal(res.model_name, c.name);
		assert.equal(res.model_version, dp.modelMetadata(c.name).version);
		const noId = await client.infer(rawRequest(c));
		assert.match(
			noId.id,
			/^[0-9a-f-]{36}$/,
			"a generated id when the client sent none",
		);
	});

	test("request parameters are accepted", async () => {
		const c = cases.get("iris-logreg") as Case;
		const res = await client.infer(
			rawRequest(c, {
				parameters: {
					flag: { bool_param: true },
					n: { int64_param: "7" },
					s: { string_param: "x" },
				},
			}),
		);
		assertGolden(c, res);
	});

	test("ModelStreamInfer: answers each request, errors in error_message", async () => {
		const c = cases.get("iris-logreg") as Case;
		const stream = client.stream();
		const got: Record<string, unknown>[] = [];
		const done = new Promise<void>((resolve, reject) => {
			stream.on("data", (m: Record<string, unknown>) => got.push(m));
			stream.on("end", resolve);
			stream.on("error", reject);
		});
		stream.write(rawRequest(c, { id: "a" }));
		stream.write({ ...rawRequest(c, { id: "bad" }), model_name: "nope" });
		stream.write(typedRequest(c, { id: "b" }));
		stream.end();
		await done;
		assert.equal(got.length, 3);
		const byId = new Map(
			got.map((m) => [(m.infer_response as InferResponse).id, m]),
		);
		for (const id of ["a", "b"]) {
			const m = byId.get(id);
			assert.ok(m, id);
			assert.equal(m.error_message, "");
			assertGolden(c, m.infer_response as InferResponse);
		}
		assert.match(String(byId.get("bad")?.error_message), /nope/);
	});
});

describe("ModelInfer: bad requests are INVALID_ARGUMENT or NOT_FOUND, and the server keeps serving", () => {
	const iris = () => cases.get("iris-logreg") as Case;
	const ridge = () => cases.get("diabetes-sex-ridge") as Case;

	test("unknown model → NOT_FOUND", async () => {
		await rejectsWith(
			client.infer({ ...rawRequest(iris()), model_name: "no-such-model" }),
			grpc.status.NOT_FOUND,
			/no-such-model/,
		);
		await stillServes();
	});

	test("unknown version → NOT_FOUND", async () => {
		await rejectsWith(
			client.infer(rawRequest(iris(), { model_version: "999" })),
			grpc.status.NOT_FOUND,
		);
		await stillServes();
	});

	test("empty model_name → INVALID_ARGUMENT", async () => {
		await rejectsWith(
			client.infer({ ...rawRequest(iris()), model_name: "" }),
			grpc.status.INVALID_ARGUMENT,
			/model_name/,
		);
		await stillServes();
	});

	test("wrong datatype (FP64 for an FP32 input)", async () => {
		const t = iris().tensors[0] as Tensor;
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [
					{
						name: t.name,
						datatype: "FP64",
						shape: t.shape,
						contents: toContents("FP64", t.data),
					},
				],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*FP32.*FP64/,
		);
		await stillServes();
	});

	test("BYTES where FP32 is expected", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [
					{
						name: "float_input",
						datatype: "BYTES",
						shape: [1, 4],
						contents: toContents("BYTES", ["a", "b", "c", "d"]),
					},
				],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input/,
		);
		await stillServes();
	});

	test("unknown datatype string", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [{ name: "float_input", datatype: "FLOAT", shape: [1, 4] }],
				raw_input_contents: [Buffer.alloc(16)],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*unknown datatype "FLOAT"/,
		);
		await stillServes();
	});

	test("shape mismatch with the model (wrong column count)", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [{ name: "float_input", datatype: "FP32", shape: [2, 5] }],
				raw_input_contents: [toRaw("FP32", new Float32Array(10))],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*shape/,
		);
		await stillServes();
	});

	test("contents length does not match the shape", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [
					{
						name: "float_input",
						datatype: "FP32",
						shape: [2, 4],
						contents: { fp32_contents: [1, 2, 3, 4, 5, 6, 7] },
					},
				],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*needs 8 elements.*has 7/,
		);
		await stillServes();
	});

	test("contents in the field of another datatype", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [
					{
						name: "float_input",
						datatype: "FP32",
						shape: [1, 4],
						contents: { int_contents: [1, 2, 3, 4] },
					},
				],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*fp32_contents.*int_contents/,
		);
		await stillServes();
	});

	test("negative shape", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [{ name: "float_input", datatype: "FP32", shape: [-1, 4] }],
				raw_input_contents: [Buffer.alloc(16)],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*non-negative/,
		);
		await stillServes();
	});

	test("unknown input name", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [{ name: "features", datatype: "FP32", shape: [1, 4] }],
				raw_input_contents: [toRaw("FP32", [1, 2, 3, 4])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/features/,
		);
		await stillServes();
	});

	test("missing input (BYTES 'sex' left out)", async () => {
		const c = ridge();
		const keep = c.tensors.filter((t) => t.name !== "sex");
		await rejectsWith(
			client.infer({
				model_name: c.name,
				inputs: keep.map((t) => ({
					name: t.name,
					datatype: t.datatype,
					shape: t.shape,
				})),
				raw_input_contents: keep.map((t) => toRaw(t.datatype, t.data)),
			}),
			grpc.status.INVALID_ARGUMENT,
			/missing input 'sex'/,
		);
		await stillServes();
	});

	test("raw length does not match shape × datatype size", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [{ name: "float_input", datatype: "FP32", shape: [2, 4] }],
				raw_input_contents: [Buffer.alloc(31)],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*31 bytes.*needs 32/,
		);
		await stillServes();
	});

	test("raw BYTES with a length prefix past the end", async () => {
		const c = ridge();
		const bad = Buffer.alloc(8);
		bad.writeUInt32LE(100, 0);
		await rejectsWith(
			client.infer({
				model_name: c.name,
				inputs: c.tensors.map((t) => ({
					name: t.name,
					datatype: t.datatype,
					shape: [1, 1],
				})),
				raw_input_contents: c.tensors.map((t) =>
					t.name === "sex" ? bad : toRaw(t.datatype, [0]),
				),
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 'sex'.*declares 100 bytes/,
		);
		await stillServes();
	});

	test("both contents and raw_input_contents", async () => {
		await rejectsWith(
			client.infer({
				model_name: "iris-logreg",
				inputs: [
					{
						name: "float_input",
						datatype: "FP32",
						shape: [1, 4],
						contents: { fp32_contents: [1, 2, 3, 4] },
					},
				],
				raw_input_contents: [toRaw("FP32", [1, 2, 3, 4])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/float_input.*both contents and raw_input_contents/,
		);
		await stillServes();
	});

	test("fewer raw_input_contents than inputs", async () => {
		const c = ridge();
		await rejectsWith(
			client.infer({
				...rawRequest(c),
				raw_input_contents: [toRaw("FP32", [0])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/raw_input_contents has 1 entries but the request has 10 inputs/,
		);
		await stillServes();
	});

	test("a category outside the bundle's categories → INVALID_ARGUMENT naming the input", async () => {
		const c = ridge();
		const req = rawRequest(c);
		const k = c.tensors.findIndex((t) => t.name === "sex");
		req.raw_input_contents[k] = toRaw(
			"BYTES",
			c.golden.records.map(() => "unknown"),
		);
		await rejectsWith(client.infer(req), grpc.status.INVALID_ARGUMENT, /sex/);
		await stillServes();
	});
});

describe("repository extension", () => {
	test("RepositoryIndex lists every fixture, READY", async () => {
		const { models } = await client.call<{
			models: {
				name: string;
				version: string;
				state: string;
				reason: string;
			}[];
		}>("RepositoryIndex", {});
		assert.deepEqual(models.map((m) => m.name).sort(), [...FIXTURES].sort());
		for (const m of models) {
			assert.equal(m.state, "READY", m.name);
			assert.ok(m.version.length > 0);
		}
		const ready = await client.call<{ models: unknown[] }>("RepositoryIndex", {
			ready: true,
		});
		assert.equal(ready.models.length, FIXTURES.length);
	});

	test("unload then load through RepositoryModelUnload/Load", async () => {
		const c = cases.get("digits-mlp") as Case;
		await client.call("RepositoryModelUnload", { model_name: c.name });
		assert.deepEqual(await client.call("ModelReady", { name: c.name }), {
			ready: false,
		});
		const { models } = await client.call<{
			models: { name: string; state: string }[];
		}>("RepositoryIndex", { ready: true });
		assert.ok(!models.some((m) => m.name === c.name));
		const err = await rejectsWith(
			client.infer(rawRequest(c)),
			grpc.status.UNAVAILABLE,
		);
		assert.match(err.details, /digits-mlp/);
		await stillServes();

		await client.call("RepositoryModelLoad", { model_name: c.name });
		assert.deepEqual(await client.call("ModelReady", { name: c.name }), {
			ready: true,
		});
		assertGolden(c, await client.infer(rawRequest(c)));
	});

	test("load/unload of an unknown model → NOT_FOUND; empty name → INVALID_ARGUMENT", async () => {
		await rejectsWith(
			client.call("RepositoryModelLoad", { model_name: "nope" }),
			grpc.status.NOT_FOUND,
		);
		await rejectsWith(
			client.call("RepositoryModelUnload", { model_name: "nope" }),
			grpc.status.NOT_FOUND,
		);
		await rejectsWith(
			client.call("RepositoryModelLoad", { model_name: "" }),
			grpc.status.INVALID_ARGUMENT,
		);
	});

	test("Triton load overrides (config / file:) are refused, not ignored", async () => {
		await rejectsWith(
			client.call("RepositoryModelLoad", {
				model_name: "iris-logreg",
				parameters: { config: { string_param: "{}" } },
			}),
			grpc.status.INVALID_ARGUMENT,
			/'config'/,
		);
		await stillServes();
	});
});
