// 10,000 seeded random bodies POSTed to infer over keep-alive sockets: never a 5xx, always {"error"} on a
// refusal, the server still answers a valid request afterwards, and the heap stays bounded.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Tensor } from "../../../src/protocol/types.ts";
import { prng } from "../../helpers/random.ts"; // seeded: a failing run replays with MLSHIP_FUZZ_SEED
import {
	binaryBody,
	goldenTensors,
	jsonInput,
	type RestHarness,
	startRest,
} from "../../helpers/server.ts";

const SEED = Number(process.env.MLSHIP_FUZZ_SEED ?? 20240611);
const COUNT = 10_000;
const CONCURRENCY = 16;
const HEADER = "inference-header-content-length";

/** A full GC, where V8 lets us ask for one (node:test runs without --expose-gc). */
function gcFn(): () => void {
	setFlagsFromString("--expose-gc");
	return runInNewContext("gc") as () => void;
}

interface Case {
	path: string;
	body: Buffer | string;
	headers: Record<string, string>;
}

function generator(
	rand: () => number,
	iris: Tensor[],
	ridge: Tensor[],
): () => Case {
	const int = (n: number) => Math.floor(rand() * n);
	const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
	const DATATYPES = [
		"BOOL",
		"UINT8",
		"UINT16",
		"UINT32",
		"UINT64",
		"INT8",
		"INT16",
		"INT32",
		"INT64",
		"FP16",
		"FP32",
		"FP64",
		"BYTES",
		"FLOAT",
		"",
		"fp32",
	];
	const KEYS = [
		"inputs",
		"outputs",
		"name",
		"shape",
		"datatype",
		"data",
		"parameters",
		"id",
		"binary_data_size",
		"binary_data",
		"binary_data_output",
		"timeout",
		"__proto__",
		"constructor",
	];
	const scalar = (): unknown =>
		pick([
			() => null,
			() => rand() < 0.5,
			() => int(10) - 3,
			() => (rand() - 0.5) * 10 ** int(12),
			() => pick([1e308, -1e308, 5e-324, 2 ** 53 + 1, -0]),
			() =>
				pick([
					"",
					"float_input",
					"sex",
					"FP32",
					"é\u0000\ud83d",
					"x".repeat(int(300)),
				]),
		])();
	const value = (depth: number): unknown => {
		if (depth <= 0 || rand() < 0.35) return scalar();
		if (rand() < 0.5)
			return Array.from({ length: int(6) }, () => value(depth - 1));
		const o: Record<string, unknown> = {};
		for (let i = int(5); i > 0; i--) o[pick(KEYS)] = value(depth - 1);
		return o;
	};
	const validIris = () => ({
		inputs: iris.map((t) => jsonInput(t, rand() < 0.5)),
	});
	/** A valid request with one to three random edits somewhere inside it. */
	const mutated = () => {
		const req = JSON.parse(JSON.stringify(validIris())) as Record<
			string,
			unknown
		>;
		if (rand() < 0.3)
			req.outputs = [
				{ name: pick(["label", "probabilities", "x"]), parameters: value(2) },
			];
		if (rand() < 0.3) req.parameters = value(2);
		for (let k = 1 + int(3); k > 0; k--) {
			const first = Array.isArray(req.inputs) ? req.inputs[0] : undefined;
			const input = (
				first !== null && typeof first === "object" ? first : {}
			) as Record<string, unknown>;
			switch (int(7)) {
				case 0:
					input.datatype = pick(DATATYPES);
					break;
				case 1:
					input.shape = pick([
						[int(5), 4],
						[-1, 4],
						[2 ** 31, 2 ** 31],
						[1.5, 4],
						[],
						"2,4",
						[int(3), int(3), int(3)],
						value(2),
					]);
					break;
				case 2:
					if (Array.isArray(input.data)) input.data[int(10)] = value(2);
					break;
				case 3:
					delete input[pick(["name", "shape", "datatype", "data"])];
					break;
				case 4:
					input.name = value(1);
					break;
				case 5:
					input.parameters = pick([{ binary_data_size: int(64) }, value(2)]);
					break;
				default:
					req[pick(KEYS)] = value(3);
			}
		}
		return req;
	};
	const binary = (): Case => {
		const useRidge = rand() < 0.4;
		const ts = useRidge ? ridge.slice(0, 1 + int(ridge.length)) : iris;
		const { body, headerLength } = binaryBody(
			rand() < 0.5 ? { parameters: { binary_data_output: rand() < 0.5 } } : {},
			ts.map((t) => {
				const u =
					rand() < 0.2
						? {
								...t,
								datatype: pick([
									"FP16",
									"BOOL",
									"INT64",
									"BYTES",
									"UINT8",
								] as const),
							}
						: t;
				// A declared shape out of all proportion to the bytes sent (issue 11.26: it used to be allocated first).
				return rand() < 0.1
					? {
							...u,
							shape: pick([
								[2 ** int(41)],
								[1e9, 1e9],
								[30_000_000],
								[int(100), int(100)],
							]),
						}
					: u;
			}),
		);
		let b = body;
		if (rand() < 0.3) b = b.subarray(0, int(b.length + 1));
		if (rand() < 0.2) {
			b = Buffer.from(b);
			for (let k = int(8); k >= 0; k--) b[int(b.length)] = int(256);
		}
		const header = pick([
			() => String(headerLength),
			() => String(headerLength + int(20) - 10),
			() => String(int(b.length * 2 + 1)),
			() =>
				pick(["-1", "", "abc", "1e3", " 12 ", "99999999999999999999", "0x10"]),
		])();
		return {
			path: `/v2/models/${useRidge ? "ridge" : "iris"}/infer`,
			body: b,
			headers: {
				"content-type": pick(["application/octet-stream", "application/json"]),
				[HEADER]: header,
			},
		};
	};
	return () => {
		const path = pick([
			"/v2/models/iris/infer",
			"/v2/models/iris/versions/1/infer",
			"/v2/models/ridge/infer",
			"/v2/models/nope/infer",
		]);
		const headers: Record<string, string> = {
			"content-type": pick([
				"application/json",
				"text/plain",
				"application/octet-stream",
			]),
		};
		switch (int(7)) {
			case 0:
				return { path, body: JSON.stringify(value(5)) ?? "null", headers };
			case 1:
			case 2:
				return { path, body: JSON.stringify(mutated()), headers };
			case 3: {
				const text = JSON.stringify(rand() < 0.5 ? validIris() : mutated());
				return { path, body: text.slice(0, int(text.length)), headers };
			}
			case 4: {
				const bytes = Buffer.alloc(int(2048));
				for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
				return { path, body: bytes, headers };
			}
			case 5:
				return binary();
			default: {
				// Hostile structure: deep nesting, huge element counts, many inputs.
				const deep = 1 + int(50_000);
				return pick([
					() => ({
						path,
						headers,
						body: `{"inputs":[{"name":"float_input","datatype":"FP32","shape":[1,4],"data":${"[".repeat(deep)}1${"]".repeat(deep)}}]}`,
					}),
					() => ({
						path,
						headers,
						body: JSON.stringify({
							inputs: [
								{
									name: "float_input",
									datatype: pick(DATATYPES),
									shape: [2 ** int(40), 4],
									data: [],
								},
							],
						}),
					}),
					() => ({
						path,
						headers,
						body: JSON.stringify({
							inputs: Array.from({ length: int(500) }, (_, i) => ({
								name: `in${i}`,
								datatype: "FP32",
								shape: [1],
								data: [i],
							})),
						}),
					}),
				])();
			}
		}
	};
}

describe("fuzzing the infer route", () => {
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
		ridge = (await goldenTensors("diabetes-sex-ridge")).map((t) => ({
			...t,
			shape: [3, 1],
			data: t.data.slice(0, 3) as Float32Array,
		}));
	});
	after(() => s.close());

	it(`${COUNT} random bodies (seed ${SEED}): no 5xx, every refusal is {"error"}, heap bounded, still serving`, {
		timeout: 120_000,
	}, async () => {
		const gc = gcFn();
		const next = generator(prng(SEED), iris, ridge);
		const statuses = new Map<number, number>();
		const messages = new Map<string, number>();
		const failures: string[] = [];
		const run = async (n: number) => {
			let i = 0;
			const worker = async () => {
				while (i < n) {
					i++;
					const c = next();
					const res = await fetch(`${s.url}${c.path}`, {
						method: "POST",
						body: c.body,
						headers: c.headers,
					});
					const body = Buffer.from(await res.arrayBuffer());
					statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
					if (res.status >= 500 || (res.status !== 200 && res.status < 400))
						failures.push(
							`${res.status} ${c.path} ${body.toString().slice(0, 200)} ← ${String(c.body).slice(0, 300)}`,
						);
					else if (res.status !== 200) {
						const err = (JSON.parse(body.toString()) as { error?: unknown })
							.error;
						if (typeof err !== "string")
							failures.push(
								`no error message: ${body.toString().slice(0, 200)}`,
							);
						else {
							const key = err.replace(/[0-9]+/g, "N").slice(0, 60);
							messages.set(key, (messages.get(key) ?? 0) + 1);
						}
					} else {
						const len = res.headers.get(HEADER);
						JSON.parse(
							body.toString(
								"utf8",
								0,
								len === null ? body.length : Number(len),
							),
						);
					}
				}
			};
			await Promise.all(Array.from({ length: CONCURRENCY }, worker));
		};

		await run(500); // warm up: JIT, lazily allocated pools, socket buffers
		statuses.clear();
		messages.clear();
		gc();
		const before = process.memoryUsage().heapUsed;
		const started = performance.now();
		await run(COUNT);
		const seconds = (performance.now() - started) / 1000;
		gc();
		const grown = process.memoryUsage().heapUsed - before;

		assert.deepEqual(
			failures.slice(0, 5),
			[],
			`${failures.length} bad answers`,
		);
		assert.ok(seconds < 60, `took ${seconds.toFixed(1)} s`);
		assert.ok(
			grown < 64 * 1024 * 1024,
			`heap grew by ${(grown / 2 ** 20).toFixed(1)} MiB`,
		);
		// The fuzz reaches deep into validation, not only the JSON parser.
		assert.ok((statuses.get(200) ?? 0) > 100, `200s: ${statuses.get(200)}`);
		for (const re of [
			/^malformed JSON/,
			/datatype/,
			/shape/,
			/binary_data_size|binary data|BYTES/,
			/of BYTES needs at least/,
			/Inference-Header-Content-Length/,
			/unknown model/,
			/element N/,
		])
			assert.ok(
				[...messages.keys()].some((m) => re.test(m)),
				`no refusal matched ${re}: ${[...messages.keys()].join(" | ")}`,
			);

		const ok = await fetch(`${s.url}/v2/models/iris/infer`, {
			method: "POST",
			body: JSON.stringify({ inputs: iris.map((t) => jsonInput(t)) }),
		});
		assert.equal(ok.status, 200);
		process.stderr.write(
			`fuzz: ${COUNT} requests in ${seconds.toFixed(1)} s, heap ${grown >= 0 ? "+" : ""}${(grown / 2 ** 20).toFixed(1)} MiB, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${messages.size} distinct refusals\n`,
		);
	});
});
