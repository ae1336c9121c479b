// Every OIP datatype through protobuf and back over a real socket (echo data plane): typed contents and raw
// bytes decode into the right typed arrays, INT64/UINT64 keep full precision, parameters map both ways.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { floatToHalf } from "../../../src/protocol/datatypes.ts";
import {
	type GrpcServer,
	startGrpcServer,
} from "../../../src/server/grpc/index.ts";
import {
	InferenceClient,
	outputValues,
	rejectsWith,
	toContents,
	toRaw,
} from "./client.ts";
import { type EchoPlane, echoPlane } from "./stub.ts";

/** Values per datatype, including each type's extremes; the typed array the data plane must receive. */
const CASES: { datatype: string; values: unknown[]; array: string }[] = [
	{ datatype: "BOOL", values: [1, 0, 1, 1], array: "Uint8Array" },
	{ datatype: "INT8", values: [-128, 127, 0, -1], array: "Int8Array" },
	{ datatype: "INT16", values: [-32768, 32767, 5, -5], array: "Int16Array" },
	{
		datatype: "INT32",
		values: [-2147483648, 2147483647, 0, 1],
		array: "Int32Array",
	},
	{
		datatype: "INT64",
		values: [
			-9223372036854775808n,
			9223372036854775807n,
			9007199254740993n,
			-1n,
		],
		array: "BigInt64Array",
	},
	{ datatype: "UINT8", values: [0, 255, 1, 2], array: "Uint8Array" },
	{ datatype: "UINT16", values: [0, 65535, 1, 2], array: "Uint16Array" },
	{ datatype: "UINT32", values: [0, 4294967295, 1, 2], array: "Uint32Array" },
	{
		datatype: "UINT64",
		values: [0n, 18446744073709551615n, 9007199254740993n, 1n],
		array: "BigUint64Array",
	},
	{
		datatype: "FP32",
		values: Array.from(Float32Array.of(1.5, -0.25, 3.4e38, 1e-45)),
		array: "Float32Array",
	},
	{
		datatype: "FP64",
		values: [Math.PI, -1e308, 5e-324, 0.1],
		array: "Float64Array",
	},
	{
		datatype: "BYTES",
		values: ["", "héllo", "a\u0000b", "😀"],
		array: "Array",
	},
];

let plane: EchoPlane;
let server: GrpcServer;
let client: InferenceClient;

before(async () => {
	plane = echoPlane();
	server = await startGrpcServer(plane, { port: 0 });
	client = new InferenceClient(server.port);
});

after(async () => {
	client.close();
	await server.close();
});

function lastSeen() {
	const s = plane.seen.at(-1);
	assert.ok(s, "the data plane was called");
	return s;
}

describe("datatypes round-trip", () => {
	for (const c of CASES) {
		test(`${c.datatype}: typed contents`, async () => {
			const res = await client.infer({
				model_name: "echo",
				inputs: [
					{
						name: "x",
						datatype: c.datatype,
						shape: [2, 2],
						contents: toContents(c.datatype, c.values),
					},
				],
			});
			const t = lastSeen().request.inputs[0];
			assert.ok(t);
			assert.equal(t.data.constructor.name, c.array);
			assert.deepEqual(Array.from(t.data as ArrayLike<unknown>), c.values);
			assert.deepEqual(t.shape, [2, 2]);
			assert.deepEqual(res.raw_output_contents, []);
			const o = res.outputs[0];
			assert.equal(o?.datatype, c.datatype);
			assert.deepEqual(o?.shape, ["2", "2"]);
			const got = outputValues(res, 0);
			const want =
				c.datatype === "BOOL"
					? c.values.map((v) => v === 1)
					: c.datatype === "INT64" || c.datatype === "UINT64"
						? c.values.map(String)
						: c.datatype === "BYTES"
							? c.values.map((v) => Buffer.from(v as string))
							: c.values;
			assert.deepEqual(got, want);
		});

		test(`${c.datatype}: raw bytes`, async () => {
			const res = await client.infer({
				model_name: "echo",
				inputs: [{ name: "x", datatype: c.datatype, shape: [4] }],
				raw_input_contents: [toRaw(c.datatype, c.values)],
			});
			const t = lastSeen().request.inputs[0];
			assert.ok(t);
			assert.equal(t.data.constructor.name, c.array);
			assert.deepEqual(Array.from(t.data as ArrayLike<unknown>), c.values);
			assert.equal(res.outputs[0]?.contents, null);
			assert.deepEqual(res.raw_output_contents[0], toRaw(c.datatype, c.values));
		});
	}

	test("FP16 travels raw both ways, even when the request used contents for other inputs", async () => {
		const bits = [1, -2, 0.5, 65504].map(floatToHalf);
		const raw = await client.infer({
			model_name: "echo",
			inputs: [{ name: "h", datatype: "FP16", shape: [4] }],
			raw_input_contents: [toRaw("FP16", bits)],
		});
		const t = lastSeen().request.inputs[0];
		assert.equal(t?.data.constructor.name, "Uint16Array");
		assert.deepEqual(Array.from(t?.data as Uint16Array), bits);
		assert.deepEqual(raw.raw_output_contents[0], toRaw("FP16", bits));

		// An FP16 output with typed inputs: the response switches to raw for every output.
		plane.fail = undefined;
		const mixed = await client.infer({
			model_name: "echo",
			inputs: [
				{
					name: "a",
					datatype: "FP32",
					shape: [1],
					contents: { fp32_contents: [2] },
				},
				{ name: "h", datatype: "FP16", shape: [0] },
			],
		});
		assert.equal(mixed.raw_output_contents.length, 2);
		assert.deepEqual(mixed.raw_output_contents[0], toRaw("FP32", [2]));
	});

	test("FP16 in contents is refused", async () => {
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [
					{
						name: "h",
						datatype: "FP16",
						shape: [1],
						contents: { fp32_contents: [1] },
					},
				],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 'h': FP16 data must be sent in raw_input_contents/,
		);
	});

	test("values out of the datatype's range are refused", async () => {
		for (const [datatype, v] of [
			["INT8", 128],
			["INT16", -32769],
			["UINT8", 256],
			["UINT16", 65536],
		] as const)
			await rejectsWith(
				client.infer({
					model_name: "echo",
					inputs: [
						{
							name: "x",
							datatype,
							shape: [1],
							contents: toContents(datatype, [v]),
						},
					],
				}),
				grpc.status.INVALID_ARGUMENT,
				new RegExp(
					`input 'x': element 0: ${v} is out of range for ${datatype}`,
				),
			);
	});

	test("raw BOOL bytes other than 0/1 are refused", async () => {
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [{ name: "b", datatype: "BOOL", shape: [2] }],
				raw_input_contents: [Buffer.from([1, 2])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 'b': element 1: BOOL bytes must be 0 or 1, got 2/,
		);
	});

	test("raw BYTES: element count and truncated prefixes are checked", async () => {
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [{ name: "s", datatype: "BYTES", shape: [3] }],
				raw_input_contents: [toRaw("BYTES", ["a", "b"])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 's'.*needs 3 BYTES elements, raw_input_contents holds 2/,
		);
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [{ name: "s", datatype: "BYTES", shape: [1] }],
				raw_input_contents: [toRaw("BYTES", ["a", "b"])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 's'.*holds more/,
		);
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [{ name: "s", datatype: "BYTES", shape: [2] }],
				raw_input_contents: [
					Buffer.concat([toRaw("BYTES", ["a"]), Buffer.from([1, 0])]),
				],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 's': raw BYTES element 1: truncated 4-byte length prefix/,
		);
	});

	test("a huge declared shape is refused without allocating it", async () => {
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [
					{ name: "x", datatype: "FP32", shape: ["4000000000", "4000000000"] },
				],
				raw_input_contents: [Buffer.alloc(16)],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 'x': raw_input_contents has 16 bytes/,
		);
		await rejectsWith(
			client.infer({
				model_name: "echo",
				inputs: [{ name: "s", datatype: "BYTES", shape: ["9000000000000"] }],
				raw_input_contents: [toRaw("BYTES", ["a"])],
			}),
			grpc.status.INVALID_ARGUMENT,
			/input 's'/,
		);
	});

	test("zero elements are passed through (the data plane decides about empty batches)", async () => {
		await client.infer({
			model_name: "echo",
			inputs: [{ name: "x", datatype: "FP32", shape: [0, 4] }],
		});
		assert.deepEqual(lastSeen().request.inputs[0]?.shape, [0, 4]);
		assert.equal(lastSeen().request.inputs[0]?.data.length, 0);
	});
});

describe("request fields", () => {
	test("parameters: bool, int64 (full precision), string, double, uint64 in; echoed back", async () => {
		const res = await client.infer({
			model_name: "echo",
			id: "p1",
			parameters: {
				b: { bool_param: true },
				f: { bool_param: false },
				i: { int64_param: "-42" },
				big: { int64_param: "9223372036854775807" },
				s: { string_param: "hello" },
				d: { double_param: 0.5 },
				u: { uint64_param: "18446744073709551615" },
				empty: {},
			},
			inputs: [
				{
					name: "x",
					datatype: "FP32",
					shape: [1],
					parameters: { tag: { string_param: "in" } },
					contents: { fp32_contents: [1] },
				},
			],
		});
		const seen = lastSeen().request;
		assert.deepEqual(seen.parameters, {
			b: true,
			f: false,
			i: -42,
			big: "9223372036854775807",
			s: "hello",
			d: 0.5,
			u: "18446744073709551615",
		});
		assert.deepEqual(seen.inputs[0]?.parameters, { tag: "in" });
		assert.equal(seen.id, "p1");
		assert.equal(res.id, "p1");
		const back = Object.fromEntries(
			Object.entries(res.parameters).map(([k, v]) => [
				k,
				v[v.parameter_choice as string],
			]),
		);
		assert.deepEqual(back, {
			b: true,
			f: false,
			i: "-42",
			big: "9223372036854775807",
			s: "hello",
			d: 0.5,
			u: "18446744073709551615",
		});
		assert.equal(res.parameters.i?.parameter_choice, "int64_param");
		assert.equal(res.parameters.d?.parameter_choice, "double_param");
		assert.deepEqual(res.outputs[0]?.parameters, {
			tag: { string_param: "in", parameter_choice: "string_param" },
		});
	});

	test("model_version and requested outputs reach the data plane", async () => {
		const res = await client.infer({
			model_name: "echo",
			model_version: "1",
			inputs: [
				{
					name: "a",
					datatype: "INT32",
					shape: [1],
					contents: { int_contents: [1] },
				},
				{
					name: "b",
					datatype: "INT32",
					shape: [1],
					contents: { int_contents: [2] },
				},
			],
			outputs: [
				{ name: "b", parameters: { binary_data: { bool_param: true } } },
			],
		});
		const s = lastSeen();
		assert.equal(s.version, "1");
		assert.deepEqual(s.request.outputs, [
			{ name: "b", parameters: { binary_data: true } },
		]);
		assert.deepEqual(
			res.outputs.map((o) => o.name),
			["b"],
		);
		const none = await client.infer({
			model_name: "echo",
			inputs: [
				{
					name: "a",
					datatype: "INT32",
					shape: [1],
					contents: { int_contents: [1] },
				},
			],
		});
		assert.equal(lastSeen().version, undefined);
		assert.equal(lastSeen().request.outputs, undefined);
		assert.equal(lastSeen().request.id, undefined);
		// No id from the client: the answer carries a generated one (so feedback can refer to it).
		assert.match(none.id, /^[0-9a-f-]{36}$/);
	});

	test("the call's deadline becomes the data plane's timeout", async () => {
		await client.infer(
			{
				model_name: "echo",
				inputs: [
					{
						name: "a",
						datatype: "INT32",
						shape: [1],
						contents: { int_contents: [1] },
					},
				],
			},
			{ deadline: Date.now() + 5000 },
		);
		const t = lastSeen().timeoutMs;
		assert.ok(t !== undefined && t > 3000 && t <= 5000, `timeoutMs ${t}`);
		await client.infer({
			model_name: "echo",
			inputs: [
				{
					name: "a",
					datatype: "INT32",
					shape: [1],
					contents: { int_contents: [1] },
				},
			],
		});
		assert.equal(lastSeen().timeoutMs, undefined);
	});
});
