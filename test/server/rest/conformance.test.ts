// OIP v2 REST conformance over real sockets against the real data plane: every endpoint, JSON and binary
// tensor data for every fixture (results equal the golden outputs), the repository and predict routes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Tensor } from "../../../src/protocol/types.ts";
import {
	assertOutputMatches,
	FIXTURES,
	golden,
} from "../../helpers/fixtures.ts";
import {
	binaryBody,
	type DecodedOutput,
	decodeInferResponse,
	get,
	goldenTensors,
	jsonInput,
	post,
	type RestHarness,
	startRest,
} from "../../helpers/server.ts";

const HEADER = "inference-header-content-length";

function assertGolden(fixture: string, outputs: DecodedOutput[]): void {
	const want = golden(fixture).expected;
	assert.deepEqual(
		outputs.map((o) => o.name).sort(),
		Object.keys(want).sort(),
		`${fixture}: output names`,
	);
	for (const o of outputs)
		assertOutputMatches(fixture, o.name, o.data, want[o.name] as number[]);
}

describe("OIP v2 REST conformance", () => {
	let s: RestHarness;
	const tensors = new Map<string, Tensor[]>();
	before(async () => {
		s = await startRest(
			Object.fromEntries(FIXTURES.map((f) => [f, f])),
			{},
			{ load: { workers: 1 } },
		);
		for (const f of FIXTURES) tensors.set(f, await goldenTensors(f));
	});
	after(() => s.close());
	const infer = (m: string) => `${s.url}/v2/models/${m}/infer`;

	it("GET /v2: name, version, extensions incl. binary_tensor_data and model_repository", async () => {
		const r = await get(`${s.url}/v2`);
		assert.equal(r.status, 200);
		const m = r.json as { name: string; version: string; extensions: string[] };
		assert.equal(m.name, "mlship");
		assert.equal(typeof m.version, "string");
		assert.ok(m.extensions.includes("binary_tensor_data"));
		assert.ok(m.extensions.includes("model_repository"));
		assert.equal(new Set(m.extensions).size, m.extensions.length);
	});

	it("GET /v2/health/live and /v2/health/ready answer 200 with a body", async () => {
		const live = await get(`${s.url}/v2/health/live`);
		assert.equal(live.status, 200);
		assert.deepEqual(live.json, { live: true });
		const ready = await get(`${s.url}/v2/health/ready`);
		assert.equal(ready.status, 200);
		assert.deepEqual(ready.json, { ready: true });
		const head = await fetch(`${s.url}/v2/health/ready`, { method: "HEAD" });
		assert.equal(head.status, 200);
	});

	it("GET /v2/models/:m and /versions/:v: the OIP model metadata", async () => {
		const r = await get(`${s.url}/v2/models/iris-logreg`);
		assert.equal(r.status, 200);
		assert.deepEqual(r.json, {
			name: "iris-logreg",
			versions: ["1"],
			platform: "onnx_onnxv1",
			inputs: [{ name: "float_input", datatype: "FP32", shape: [-1, 4] }],
			outputs: [
				{ name: "label", datatype: "INT64", shape: [-1] },
				{ name: "probabilities", datatype: "FP32", shape: [-1, 3] },
			],
			parameters: {
				features: [
					{ name: "sepal_length", datatype: "FP32" },
					{ name: "sepal_width", datatype: "FP32" },
					{ name: "petal_length", datatype: "FP32" },
					{ name: "petal_width", datatype: "FP32" },
				],
				labels: ["setosa", "versicolor", "virginica"],
				task: "classification",
			},
		});
		const v = await get(`${s.url}/v2/models/iris-logreg/versions/1`);
		assert.equal(v.status, 200);
		assert.deepEqual(v.json, r.json);
		const ridge = await get(`${s.url}/v2/models/diabetes-sex-ridge`);
		const inputs = (ridge.json as { inputs: { datatype: string }[] }).inputs;
		assert.equal(inputs.length, 10);
		assert.ok(inputs.some((i) => i.datatype === "BYTES"));
	});

	it("GET /v2/models/:m[/versions/:v]/ready: 200 {name, ready: true}", async () => {
		for (const path of ["", "/versions/1"]) {
			const r = await get(`${s.url}/v2/models/wine-xgb${path}/ready`);
			assert.equal(r.status, 200);
			assert.deepEqual(r.json, { name: "wine-xgb", ready: true });
		}
	});

	for (const fixture of FIXTURES) {
		it(`${fixture}: infer with flat JSON data equals golden`, async () => {
			const ts = tensors.get(fixture) as Tensor[];
			const r = await post(infer(fixture), {
				inputs: ts.map((t) => jsonInput(t)),
			});
			assert.equal(r.status, 200, r.body.toString());
			assert.match(r.headers.get("content-type") ?? "", /application\/json/);
			const d = decodeInferResponse(r.body, r.headers.get(HEADER));
			assert.equal(d.json.model_name, fixture);
			assert.equal(d.json.model_version, "1");
			assert.equal(typeof d.json.id, "string");
			assert.deepEqual(d.binary, []);
			for (const o of d.outputs)
				assert.equal(o.shape[0], golden(fixture).records.length);
			assertGolden(fixture, d.outputs);
		});

		it(`${fixture}: infer with nested JSON data (versions path, id echoed) equals golden`, async () => {
			const ts = tensors.get(fixture) as Tensor[];
			const r = await post(`${s.url}/v2/models/${fixture}/versions/1/infer`, {
				id: `req-${fixture}`,
				inputs: ts.map((t) => jsonInput(t, true)),
			});
			assert.equal(r.status, 200, r.body.toString());
			const d = decodeInferResponse(r.body, r.headers.get(HEADER));
			assert.equal(d.json.id, `req-${fixture}`);
			assertGolden(fixture, d.outputs);
		});

		it(`${fixture}: infer with binary input tensors equals golden`, async () => {
			const ts = tensors.get(fixture) as Tensor[];
			const { body, headerLength } = binaryBody({ id: "bin-in" }, ts);
			const r = await post(infer(fixture), body, {
				"content-type": "application/octet-stream",
				[HEADER]: String(headerLength),
			});
			assert.equal(r.status, 200, r.body.toString());
			assert.equal(r.headers.get(HEADER), null, "JSON response by default");
			const d = decodeInferResponse(r.body, null);
			assert.equal(d.json.id, "bin-in");
			assertGolden(fixture, d.outputs);
		});

		it(`${fixture}: binary_data_output returns every output as binary, equal to golden`, async () => {
			const ts = tensors.get(fixture) as Tensor[];
			const { body, headerLength } = binaryBody(
				{ parameters: { binary_data_output: true } },
				ts,
			);
			const r = await post(infer(fixture), body, {
				"content-type": "application/octet-stream",
				[HEADER]: String(headerLength),
			});
			assert.equal(r.status, 200, r.body.toString());
			assert.equal(r.headers.get("content-type"), "application/octet-stream");
			const len = r.headers.get(HEADER);
			assert.ok(len !== null && Number(len) < r.body.length);
			const d = decodeInferResponse(r.body, len);
			assert.deepEqual(
				d.binary.sort(),
				Object.keys(golden(fixture).expected).sort(),
			);
			for (const o of d.json.outputs as { data?: unknown }[])
				assert.equal(o.data, undefined, "binary outputs carry no JSON data");
			assertGolden(fixture, d.outputs);
		});
	}

	it("a JSON request may ask for one output as binary (binary_data on the output)", async () => {
		const ts = tensors.get("iris-logreg") as Tensor[];
		const r = await post(infer("iris-logreg"), {
			inputs: ts.map((t) => jsonInput(t)),
			outputs: [
				{ name: "label" },
				{ name: "probabilities", parameters: { binary_data: true } },
			],
		});
		assert.equal(r.status, 200, r.body.toString());
		const d = decodeInferResponse(r.body, r.headers.get(HEADER));
		assert.deepEqual(d.binary, ["probabilities"]);
		assertGolden("iris-logreg", d.outputs);
		assert.ok(d.outputs[1]?.data instanceof Float32Array);
		// binary_data false on an output beats binary_data_output true on the request.
		const r2 = await post(infer("iris-logreg"), {
			parameters: { binary_data_output: true },
			inputs: ts.map((t) => jsonInput(t)),
			outputs: [
				{ name: "label", parameters: { binary_data: false } },
				{ name: "probabilities" },
			],
		});
		const d2 = decodeInferResponse(r2.body, r2.headers.get(HEADER));
		assert.deepEqual(d2.binary, ["probabilities"]);
		assertGolden("iris-logreg", d2.outputs);
	});

	it("concurrent one-row requests each get their own row back (batched inside the data plane)", async () => {
		const fixture = "breast-cancer-gbdt";
		const t = (tensors.get(fixture) as Tensor[])[0] as Tensor;
		const width = t.shape[1] as number;
		const rows = t.shape[0] as number;
		const want = golden(fixture).expected.label as number[];
		const results = await Promise.all(
			Array.from({ length: rows }, async (_, r) => {
				const data = (t.data as Float32Array).slice(r * width, (r + 1) * width);
				const res = await post(infer(fixture), {
					id: String(r),
					inputs: [jsonInput({ ...t, shape: [1, width], data })],
					outputs: [{ name: "label" }],
				});
				assert.equal(res.status, 200, res.body.toString());
				return decodeInferResponse(res.body, null);
			}),
		);
		results.forEach((d, r) => {
			assert.equal(d.json.id, String(r));
			assert.deepEqual(Array.from(d.outputs[0]?.data ?? []), [want[r]]);
		});
	});

	it("returns only the requested outputs", async () => {
		const ts = tensors.get("breast-cancer-gbdt") as Tensor[];
		const r = await post(infer("breast-cancer-gbdt"), {
			inputs: ts.map((t) => jsonInput(t)),
			outputs: [{ name: "probabilities" }],
		});
		assert.equal(r.status, 200, r.body.toString());
		const d = decodeInferResponse(r.body, null);
		assert.deepEqual(
			d.outputs.map((o) => o.name),
			["probabilities"],
		);
		assertOutputMatches(
			"breast-cancer-gbdt",
			"probabilities",
			d.outputs[0]?.data as ArrayLike<unknown>,
			golden("breast-cancer-gbdt").expected.probabilities as number[][],
		);
	});

	it("accepts a body without Content-Type, and a per-request timeout (parameters and header)", async () => {
		const ts = tensors.get("iris-logreg") as Tensor[];
		const body = JSON.stringify({
			parameters: { timeout: 30_000_000 },
			inputs: ts.map((t) => jsonInput(t)),
		});
		const res = await fetch(infer("iris-logreg"), {
			method: "POST",
			body: new Blob([body]),
			headers: { "x-request-timeout-ms": "30000" },
		});
		assert.equal(res.status, 200, await res.clone().text());
		const d = decodeInferResponse(Buffer.from(await res.arrayBuffer()), null);
		assertGolden("iris-logreg", d.outputs);
	});

	it("predict: records (instances) and columns give class names", async () => {
		const g = golden("iris-logreg");
		const labels = ["setosa", "versicolor", "virginica"];
		const want = (g.expected.label as number[]).map((i) => labels[i]);
		const r = await post(`${s.url}/v2/models/iris-logreg/predict`, {
			instances: g.records,
		});
		assert.equal(r.status, 200, r.body.toString());
		const p = JSON.parse(r.body.toString()) as {
			model_name: string;
			model_version: string;
			predictions: { label: string; probabilities: number[] }[];
		};
		assert.equal(p.model_name, "iris-logreg");
		assert.equal(p.model_version, "1");
		assert.deepEqual(
			p.predictions.map((x) => x.label),
			want,
		);
		assertOutputMatches(
			"iris-logreg",
			"probabilities",
			p.predictions.flatMap((x) => x.probabilities),
			g.expected.probabilities as number[][],
		);
		const features = Object.keys(g.records[0] ?? {});
		const columns = Object.fromEntries(
			features.map((f) => [f, g.records.map((rec) => rec[f])]),
		);
		for (const body of [{ columns }, { inputs: columns }]) {
			const c = await post(
				`${s.url}/v2/models/iris-logreg/versions/1/predict`,
				body,
			);
			assert.equal(c.status, 200, c.body.toString());
			const cp = JSON.parse(c.body.toString()) as {
				predictions: { label: string }[];
			};
			assert.deepEqual(
				cp.predictions.map((x) => x.label),
				want,
			);
		}
	});

	it("predict with a BYTES categorical column (diabetes-sex-ridge) equals golden", async () => {
		const g = golden("diabetes-sex-ridge");
		const r = await post(`${s.url}/v2/models/diabetes-sex-ridge/predict`, {
			instances: g.records,
		});
		assert.equal(r.status, 200, r.body.toString());
		const p = JSON.parse(r.body.toString()) as {
			predictions: { variable: number }[];
		};
		assertOutputMatches(
			"diabetes-sex-ridge",
			"variable",
			p.predictions.map((x) => x.variable),
			g.expected.variable as number[][],
		);
	});

	it("GET /metrics: Prometheus text with the requests served", async () => {
		const r = await get(`${s.url}/metrics`);
		assert.equal(r.status, 200);
		assert.match(r.headers.get("content-type") ?? "", /text\/plain/);
		assert.match(r.text, /iris-logreg/);
	});
});

describe("model repository extension", () => {
	let s: RestHarness;
	let ts: Tensor[];
	before(async () => {
		s = await startRest(
			{ "iris-logreg": "iris", "wine-xgb": "wine" },
			{},
			{ load: { workers: 1 } },
		);
		ts = await goldenTensors("iris-logreg");
	});
	after(() => s.close());
	const request = () => ({ inputs: ts.map((t) => jsonInput(t)) });

	it("index lists every model with version and state; {ready: true} filters", async () => {
		const all = await post(`${s.url}/v2/repository/index`, "", {});
		assert.equal(all.status, 200, all.body.toString());
		assert.deepEqual(JSON.parse(all.body.toString()), [
			{ name: "iris", version: "1", state: "READY", reason: "" },
			{ name: "wine", version: "1", state: "READY", reason: "" },
		]);
		const ready = await post(`${s.url}/v2/repository/index`, { ready: true });
		assert.equal(JSON.parse(ready.body.toString()).length, 2);
	});

	it("unload → not ready (model 503, server 503), infer refused; load → serving again", async () => {
		const un = await post(`${s.url}/v2/repository/models/wine/unload`, {});
		assert.equal(un.status, 200, un.body.toString());
		assert.deepEqual(JSON.parse(un.body.toString()), {});

		const ready = await get(`${s.url}/v2/models/wine/ready`);
		assert.equal(ready.status, 503);
		assert.deepEqual(ready.json, { name: "wine", ready: false });
		const server = await get(`${s.url}/v2/health/ready`);
		assert.equal(server.status, 503);
		assert.deepEqual(server.json, { ready: false });

		const wine = await goldenTensors("wine-xgb");
		const refused = await post(`${s.url}/v2/models/wine/infer`, {
			inputs: wine.map((t) => jsonInput(t)),
		});
		assert.equal(refused.status, 503);
		assert.ok(refused.headers.get("retry-after"));
		assert.match(JSON.parse(refused.body.toString()).error, /wine.*not ready/);
		const index = await post(`${s.url}/v2/repository/index`, { ready: true });
		assert.deepEqual(
			JSON.parse(index.body.toString()).map((e: { name: string }) => e.name),
			["iris"],
		);
		// The other model keeps serving.
		assert.equal(
			(await post(`${s.url}/v2/models/iris/infer`, request())).status,
			200,
		);

		const load = await post(`${s.url}/v2/repository/models/wine/load`, "");
		assert.equal(load.status, 200, load.body.toString());
		assert.deepEqual(JSON.parse(load.body.toString()), {});
		assert.equal((await get(`${s.url}/v2/models/wine/ready`)).status, 200);
		assert.equal((await get(`${s.url}/v2/health/ready`)).status, 200);
		const again = await post(`${s.url}/v2/models/wine/infer`, {
			inputs: wine.map((t) => jsonInput(t)),
		});
		assert.equal(again.status, 200, again.body.toString());
		assertGolden("wine-xgb", decodeInferResponse(again.body, null).outputs);
	});

	it("load/unload of an unknown model is 404 with a message", async () => {
		for (const op of ["load", "unload"]) {
			const r = await post(`${s.url}/v2/repository/models/nope/${op}`, {});
			assert.equal(r.status, 404);
			assert.match(JSON.parse(r.body.toString()).error, /unknown model 'nope'/);
		}
	});
});
