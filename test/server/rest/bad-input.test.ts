// Bad requests over real sockets: each answered 4xx with {"error"} saying what was wrong, and the server keeps serving.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { MlshipError } from "../../../src/protocol/errors.ts";
import type { Tensor } from "../../../src/protocol/types.ts";
import { describeError } from "../../../src/server/rest/errors.ts";
import {
	binaryBody,
	goldenTensors,
	jsonInput,
	post,
	type RestHarness,
	startRest,
} from "../../helpers/server.ts";

const HEADER = "inference-header-content-length";

/** Asserts a 4xx (default 400) JSON error whose message matches `pattern`. */
function assertError(
	r: { status: number; headers: Headers; body: Buffer },
	pattern: RegExp,
	status = 400,
): void {
	const text = r.body.toString();
	assert.equal(r.status, status, text);
	assert.match(r.headers.get("content-type") ?? "", /application\/json/);
	const body = JSON.parse(text) as { error: unknown };
	assert.deepEqual(Object.keys(body), ["error"]);
	assert.equal(typeof body.error, "string");
	assert.match(body.error as string, pattern);
	assert.doesNotMatch(body.error as string, /\n\s+at /, "no stack trace");
}

describe("bad input is refused with a useful 4xx, and the server keeps serving", () => {
	let s: RestHarness;
	let iris: Tensor[];
	let ridge: Tensor[];
	before(async () => {
		s = await startRest(
			{ "iris-logreg": "iris", "diabetes-sex-ridge": "ridge" },
			{},
			{ load: { workers: 1 } },
		);
		iris = (await goldenTensors("iris-logreg")).map((t) => ({
			...t,
			shape: [2, 4],
			data: (t.data as Float32Array).slice(0, 8),
		}));
		ridge = await goldenTensors("diabetes-sex-ridge");
	});
	after(() => s.close());
	afterEach(async () => {
		const r = await post(`${s.url}/v2/models/iris/infer`, irisRequest());
		assert.equal(r.status, 200, `still serving: ${r.body.toString()}`);
	});
	const infer = (m = "iris") => `${s.url}/v2/models/${m}/infer`;
	const irisInput = () => jsonInput(iris[0] as Tensor);
	const irisRequest = () => ({ inputs: [irisInput()] });

	it("malformed JSON → 400 malformed JSON with the parser's reason", async () => {
		assertError(
			await post(infer(), '{"inputs": [{"name": "float_input",'),
			/^malformed JSON: .*position 35/,
		);
		assertError(
			await post(infer(), "not json at all"),
			/^malformed JSON: Unexpected token/,
		);
	});

	it("a body that is not an inference request → 400 saying what is expected", async () => {
		assertError(
			await post(infer(), "[1,2]"),
			/must be a JSON object, got a list/,
		);
		assertError(
			await post(infer(), { inputs: [] }),
			/inputs must be a non-empty list/,
		);
		assertError(
			await post(infer(), { input: [] }),
			/inputs must be a non-empty list, got nothing/,
		);
		assertError(await post(infer(), ""), /body is empty/);
		assertError(
			await post(infer(), {
				inputs: [{ shape: [1], datatype: "FP32", data: [1] }],
			}),
			/input 0: name is required/,
		);
		assertError(
			await post(infer(), {
				inputs: [{ name: "float_input", shape: [2, 4], data: [] }],
			}),
			/input 'float_input': datatype is required/,
		);
		assertError(
			await post(infer(), {
				inputs: [
					{ name: "float_input", datatype: "FP32", shape: [2, -4], data: [] },
				],
			}),
			/input 'float_input': shape must be a list of non-negative integers, got \[2,-4\]/,
		);
		assertError(
			await post(infer(), { inputs: [{ ...irisInput(), data: undefined }] }),
			/input 'float_input': data is required/,
		);
		assertError(
			await post(infer(), { id: 7, inputs: [irisInput()] }),
			/id must be a string, got number 7/,
		);
		assertError(
			await post(infer(), { parameters: { a: [1] }, inputs: [irisInput()] }),
			/parameters\.a must be a string, number or boolean, got a list/,
		);
		assertError(
			await post(infer(), {
				inputs: [irisInput()],
				outputs: [{ nam: "label" }],
			}),
			/output 0: name is required/,
		);
	});

	it("wrong datatype → 400 naming the input, expected and received datatype", async () => {
		assertError(
			await post(infer(), { inputs: [{ ...irisInput(), datatype: "FP64" }] }),
			/input 'float_input': expected datatype FP32, got FP64/,
		);
		assertError(
			await post(infer(), { inputs: [{ ...irisInput(), datatype: "FLOAT" }] }),
			/input 'float_input': unknown datatype "FLOAT" \(expected one of BOOL/,
		);
	});

	it("shape/data length mismatch → 400 with needed and given element counts", async () => {
		const i = irisInput();
		assertError(
			await post(infer(), {
				inputs: [{ ...i, data: (i.data as number[]).slice(0, 7) }],
			}),
			/input 'float_input': shape \[2,4\] needs 8 elements, data has 7/,
		);
		assertError(
			await post(infer(), {
				inputs: [
					{ ...i, shape: [2, 3], data: (i.data as number[]).slice(0, 6) },
				],
			}),
			/input 'float_input': expected shape \[-1,4\] \(-1 = any\), got \[2,3\]/,
		);
		// A shape far larger than any body could fill is refused before anything is allocated for it.
		assertError(
			await post(infer(), { inputs: [{ ...i, shape: [1e9, 1e6] }] }),
			/input 'float_input': shape \[1000000000,1000000\] needs 1000000000000000 elements/,
		);
	});

	it("unknown input name → 400 listing the inputs the model takes", async () => {
		assertError(
			await post(infer(), { inputs: [{ ...irisInput(), name: "features" }] }),
			/unknown input 'features'; the model takes 'float_input'/,
		);
	});

	it("missing input → 400 naming it with its datatype and shape", async () => {
		const some = ridge.filter((t) => t.name !== "bmi");
		assertError(
			await post(infer("ridge"), { inputs: some.map((t) => jsonInput(t)) }),
			/missing input 'bmi' \(FP32 \[-1,1\]\)/,
		);
	});

	it("BYTES where FP32 is expected → 400 (as declared datatype, and as string data)", async () => {
		const i = irisInput();
		const strings = (i.data as number[]).map(String);
		assertError(
			await post(infer(), {
				inputs: [{ ...i, datatype: "BYTES", data: strings }],
			}),
			/input 'float_input': expected datatype FP32, got BYTES/,
		);
		assertError(
			await post(infer(), { inputs: [{ ...i, data: strings }] }),
			/input 'float_input': element 0: expected a number \(FP32\), got "4.4/,
		);
	});

	it("unknown output → 400 listing the model's outputs", async () => {
		assertError(
			await post(infer(), { ...irisRequest(), outputs: [{ name: "proba" }] }),
			/unknown output 'proba'; the model has 'label', 'probabilities'/,
		);
	});

	it("binary header length larger than the body → 400 with both sizes", async () => {
		const { body } = binaryBody({}, iris);
		assertError(
			await post(infer(), body, {
				"content-type": "application/octet-stream",
				[HEADER]: String(body.length + 10),
			}),
			new RegExp(
				`Inference-Header-Content-Length is ${body.length + 10} but the body has only ${body.length} bytes`,
			),
		);
		assertError(
			await post(infer(), body, { [HEADER]: "12abc" }),
			/Inference-Header-Content-Length must be a byte count, got "12abc"/,
		);
	});

	it("binary size mismatch → 400 naming the input and the bytes its shape needs", async () => {
		const t = iris[0] as Tensor;
		const raw = Buffer.from((t.data as Float32Array).buffer).subarray(0, 28);
		const header = Buffer.from(
			JSON.stringify({
				inputs: [
					{
						name: t.name,
						datatype: "FP32",
						shape: [2, 4],
						parameters: { binary_data_size: 28 },
					},
				],
			}),
		);
		assertError(
			await post(infer(), Buffer.concat([header, raw]), {
				"content-type": "application/octet-stream",
				[HEADER]: String(header.length),
			}),
			/input 'float_input': binary_data_size is 28 bytes but shape \[2,4\] of FP32 needs 8 × 4 = 32 bytes/,
		);
		// Declared sizes that do not add up to the bytes after the header.
		const { body, headerLength } = binaryBody({}, iris);
		assertError(
			await post(infer(), Buffer.concat([body, Buffer.alloc(3)]), {
				[HEADER]: String(headerLength),
			}),
			/body has 35 bytes after the JSON header but the inputs' binary_data_size add up to 32/,
		);
		assertError(
			await post(infer(), body.subarray(0, body.length - 4), {
				[HEADER]: String(headerLength),
			}),
			/input 'float_input': binary_data_size is 32 bytes but only 28 bytes of binary data remain/,
		);
		// binary_data_size without the header that says where the JSON ends.
		assertError(
			await post(infer(), JSON.parse(body.toString("utf8", 0, headerLength))),
			/has parameters.binary_data_size but the request has no Inference-Header-Content-Length/,
		);
	});

	it("binary BYTES elements that overrun their tensor → 400 naming the input", async () => {
		const sex = ridge.find((t) => t.name === "sex") as Tensor;
		const others = ridge.filter((t) => t.name !== "sex");
		const { body, headerLength } = binaryBody({}, [
			...others,
			{ ...sex, data: (sex.data as string[]).slice(0, -1) },
		]);
		assertError(
			await post(infer("ridge"), body, { [HEADER]: String(headerLength) }),
			/input 'sex': binary BYTES data holds 110 elements but its shape needs 111/,
		);
	});

	it("binary BYTES with a shape far larger than its bytes → 400 before anything is allocated (issue 11.26)", async () => {
		const others = ridge.filter((t) => t.name !== "sex");
		for (const [shape, size] of [
			[[30_000_000], 0],
			[[1e9, 1e9], 8],
			[[2 ** 40], 4],
		] as const) {
			const { body: rest, headerLength: restLength } = binaryBody({}, others);
			const header = JSON.parse(rest.toString("utf8", 0, restLength)) as {
				inputs: unknown[];
			};
			header.inputs.push({
				name: "sex",
				datatype: "BYTES",
				shape,
				parameters: { binary_data_size: size },
			});
			const json = Buffer.from(JSON.stringify(header));
			const body = Buffer.concat([
				json,
				rest.subarray(restLength),
				Buffer.alloc(size),
			]);
			const before = process.memoryUsage().rss;
			assertError(
				await post(infer("ridge"), body, { [HEADER]: String(json.length) }),
				new RegExp(
					`input 'sex': shape ${JSON.stringify(shape).replace(/[[\]]/g, "\\$&")} of BYTES needs at least 4 bytes per element .*binary_data_size is ${size}`,
				),
			);
			assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20);
		}
	});

	it("unknown model → 404; unknown version → 404", async () => {
		assertError(
			await post(infer("nope"), irisRequest()),
			/unknown model 'nope'/,
			404,
		);
		assertError(
			await post(`${s.url}/v2/models/iris/versions/7/infer`, irisRequest()),
			/model 'iris' has no version '7'/,
			404,
		);
		const meta = await fetch(`${s.url}/v2/models/nope`);
		assert.equal(meta.status, 404);
		assert.match(
			((await meta.json()) as { error: string }).error,
			/unknown model 'nope'/,
		);
		const ready = await fetch(`${s.url}/v2/models/nope/ready`);
		assert.equal(ready.status, 404);
		assert.match(
			((await ready.json()) as { error: string }).error,
			/unknown model 'nope'/,
		);
		const version = await fetch(`${s.url}/v2/models/iris/versions/7`);
		assert.equal(version.status, 404);
		assert.match(
			((await version.json()) as { error: string }).error,
			/no version '7'/,
		);
		const versionReady = await fetch(
			`${s.url}/v2/models/iris/versions/7/ready`,
		);
		assert.equal(versionReady.status, 404);
		assert.match(
			((await versionReady.json()) as { error: string }).error,
			/no version '7'/,
		);
		assertError(
			await post(`${s.url}/v2/models/nope/predict`, { instances: [{}] }),
			/unknown model 'nope'/,
			404,
		);
	});

	it("unknown route → 404 {error}; an unparsable Content-Type → 415 {error}", async () => {
		assertError(
			await post(`${s.url}/v2/models/iris/transmogrify`, {}),
			/no route for POST \/v2\/models\/iris\/transmogrify/,
			404,
		);
		const r = await fetch(`${s.url}/v3`);
		assert.equal(r.status, 404);
		assert.match(
			((await r.json()) as { error: string }).error,
			/no route for GET \/v3/,
		);
		assertError(
			await post(infer(), irisRequest(), { "content-type": "no/t/a type" }),
			/unsupported Content-Type/,
			415,
		);
	});

	it("data nested absurdly deep → 400, not a stack overflow", async () => {
		const deep = `${"[".repeat(200_000)}1${"]".repeat(200_000)}`;
		const body = `{"inputs":[{"name":"float_input","datatype":"FP32","shape":[2,4],"data":${deep}}]}`;
		assertError(
			await post(infer(), body),
			/input 'float_input': data is nested deeper than its shape \[2,4\]/,
		);
	});

	it("'__proto__' in parameters → 400", async () => {
		assertError(
			await post(
				infer(),
				`{"parameters":{"__proto__":{"x":1}},"inputs":[${JSON.stringify(irisInput())}]}`,
			),
			/parameters: '__proto__' is not allowed/,
		);
	});

	it("predict: bad records and columns → 400 saying which row and column", async () => {
		const url = `${s.url}/v2/models/iris/predict`;
		assertError(
			await post(url, { instances: [] }),
			/instances must be a non-empty list/,
		);
		assertError(
			await post(url, { instances: [1] }),
			/instances\[0\] must be an object/,
		);
		assertError(await post(url, { rows: [] }), /must be \{"instances"/);
		assertError(
			await post(url, {
				instances: [{ sepal_length: 1, sepal_width: 2, petal_length: 3 }],
			}),
			/row 1, column 'petal_width'/,
		);
		assertError(
			await post(url, { columns: { sepal_length: 1 } }),
			/columns.sepal_length must be a list/,
		);
	});

	it("repository: a body that is not {ready: bool} → 400", async () => {
		assertError(
			await post(`${s.url}/v2/repository/index`, { ready: "yes" }),
			/ready must be a boolean/,
		);
		assertError(
			await post(`${s.url}/v2/repository/index`, "{"),
			/malformed JSON/,
		);
	});

	it("timeouts that are not numbers → 400", async () => {
		assertError(
			await post(infer(), { parameters: { timeout: -5 }, ...irisRequest() }),
			/parameters.timeout must be a whole number of microseconds/,
		);
		assertError(
			await post(infer(), irisRequest(), { "x-request-timeout-ms": "soon" }),
			/x-request-timeout-ms must be a number of milliseconds/,
		);
	});
});

describe("body over the limit", () => {
	let s: RestHarness;
	before(async () => {
		s = await startRest(
			{ "iris-logreg": "iris" },
			{ bodyLimit: 1024 },
			{ load: { workers: 1 } },
		);
	});
	after(() => s.close());

	it("→ 413 {error} naming the limit, JSON and binary alike; small requests still served", async () => {
		const iris = await goldenTensors("iris-logreg"); // 38 rows: ~3 KiB of JSON
		const url = `${s.url}/v2/models/iris/infer`;
		assertError(
			await post(url, { inputs: iris.map((t) => jsonInput(t)) }),
			/request body is larger than the limit of 1024 bytes/,
			413,
		);
		const big = Buffer.alloc(1 << 20, 0x20);
		assertError(
			await post(url, big, { [HEADER]: "10" }),
			/larger than the limit/,
			413,
		);
		const small = iris.map((t) => ({
			...t,
			shape: [1, 4],
			data: (t.data as Float32Array).slice(0, 4),
		}));
		const ok = await post(url, { inputs: small.map((t) => jsonInput(t)) });
		assert.equal(ok.status, 200, ok.body.toString());
	});
});

describe("error mapping", () => {
	const opts = { bodyLimit: 10, retryAfterSeconds: 1 };
	it("an unexpected error becomes 500 with a generic message: no internals leak", () => {
		assert.deepEqual(
			describeError(
				new TypeError("x.y is undefined at /src/secret.ts:1"),
				opts,
			),
			{
				status: 500,
				message: "internal server error",
			},
		);
		assert.deepEqual(
			describeError(
				new MlshipError("MLSHIP_INTERNAL", "onnxruntime: bad alloc in /opt/x"),
				opts,
			),
			{ status: 500, message: "internal server error" },
		);
	});
	it("typed errors keep their status and message (503 overloaded, 504 timeout)", () => {
		assert.deepEqual(
			describeError(new MlshipError("MLSHIP_OVERLOADED", "queue full"), opts),
			{
				status: 503,
				message: "queue full",
			},
		);
		assert.deepEqual(
			describeError(new MlshipError("MLSHIP_TIMEOUT", "took too long"), opts),
			{
				status: 504,
				message: "took too long",
			},
		);
	});
});
