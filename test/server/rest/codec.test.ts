// The REST codec on its own, for every OIP datatype (the fixtures only use FP32, BYTES and INT64):
// binary tensor bytes both ways, JSON output encoding, and request decoding edge cases.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
	DATATYPES,
	type Datatype,
	floatToHalf,
	type TensorData,
} from "../../../src/protocol/datatypes.ts";
import { MlshipError } from "../../../src/protocol/errors.ts";
import type { Tensor } from "../../../src/protocol/types.ts";
import { dataFromBytes, tensorBytes } from "../../../src/server/rest/binary.ts";
import { decodeInfer } from "../../../src/server/rest/infer-request.ts";
import {
	encodeInferResponse,
	jsonData,
} from "../../../src/server/rest/infer-response.ts";
import { binaryBody, decodeInferResponse } from "../../helpers/server.ts";

/** Three sample values of each datatype, as typed data and as the JSON the response must carry. */
const SAMPLES: Record<Datatype, { data: TensorData; json: unknown[] }> = {
	BOOL: { data: Uint8Array.of(1, 0, 1), json: [true, false, true] },
	UINT8: { data: Uint8Array.of(0, 7, 255), json: [0, 7, 255] },
	UINT16: { data: Uint16Array.of(0, 7, 65535), json: [0, 7, 65535] },
	UINT32: { data: Uint32Array.of(0, 7, 4294967295), json: [0, 7, 4294967295] },
	UINT64: { data: BigUint64Array.of(0n, 7n, 2n ** 53n), json: [0, 7, 2 ** 53] },
	INT8: { data: Int8Array.of(-128, 0, 127), json: [-128, 0, 127] },
	INT16: { data: Int16Array.of(-32768, 0, 32767), json: [-32768, 0, 32767] },
	INT32: {
		data: Int32Array.of(-(2 ** 31), 0, 2 ** 31 - 1),
		json: [-(2 ** 31), 0, 2 ** 31 - 1],
	},
	INT64: {
		data: BigInt64Array.of(-(2n ** 40n), 0n, 2n ** 40n),
		json: [-(2 ** 40), 0, 2 ** 40],
	},
	FP16: {
		data: Uint16Array.of(floatToHalf(1.5), floatToHalf(-2), floatToHalf(0.25)),
		json: [1.5, -2, 0.25],
	},
	FP32: {
		data: Float32Array.of(0.5, -1e-7, 3e38),
		json: [0.5, Math.fround(-1e-7), Math.fround(3e38)],
	},
	FP64: {
		data: Float64Array.of(0.1, -1e300, 5e-324),
		json: [0.1, -1e300, 5e-324],
	},
	BYTES: { data: ["", "héllo", "a\u0000b"], json: ["", "héllo", "a\u0000b"] },
};

const tensor = (datatype: Datatype): Tensor => ({
	name: `t_${datatype}`,
	datatype,
	shape: [3],
	data: SAMPLES[datatype].data,
});

describe("REST codec", () => {
	for (const dt of DATATYPES) {
		it(`${dt}: raw bytes round-trip, and JSON output data is exact`, () => {
			const t = tensor(dt);
			const bytes = tensorBytes(t);
			assert.deepEqual(dataFromBytes(t.name, dt, t.shape, 3, bytes), t.data);
			assert.deepEqual(JSON.parse(jsonData(t)), SAMPLES[dt].json);
		});

		it(`${dt}: a binary request decodes to the same tensor; a binary response carries the same bytes`, () => {
			const t = tensor(dt);
			const { body, headerLength } = binaryBody({ id: "x" }, [t]);
			const { request } = decodeInfer(body, String(headerLength));
			assert.deepEqual(request.inputs, [t]);
			const enc = encodeInferResponse(
				{ model_name: "m", outputs: [t] },
				"x",
				() => true,
			);
			assert.ok(Buffer.isBuffer(enc.body));
			const d = decodeInferResponse(enc.body, String(enc.headerLength));
			assert.deepEqual(d.binary, [t.name]);
			if (dt === "BYTES") assert.deepEqual(d.outputs[0]?.data, t.data);
			else
				assert.deepEqual(
					Buffer.from(
						tensorBytes({ ...t, data: d.outputs[0]?.data as TensorData }),
					),
					Buffer.from(tensorBytes(t)),
				);
		});
	}

	it("non-finite floats become null in JSON, as JSON.stringify would write them", () => {
		const t: Tensor = {
			name: "f",
			datatype: "FP32",
			shape: [4],
			data: Float32Array.of(1, Number.NaN, Number.POSITIVE_INFINITY, -0),
		};
		assert.equal(jsonData(t), "[1,null,null,0]");
		// Large arrays take the JSON.stringify path: same text.
		const big = new Float64Array(10_000).map((_, i) => i / 7);
		big[9_999] = Number.NaN;
		const text = jsonData({
			name: "b",
			datatype: "FP64",
			shape: [10_000],
			data: big,
		});
		assert.deepEqual(JSON.parse(text), [
			...Array.from(big.subarray(0, 9_999)),
			null,
		]);
		const small = big.subarray(0, 100);
		assert.equal(
			jsonData({ name: "s", datatype: "FP64", shape: [100], data: small }),
			JSON.stringify(Array.from(small)),
		);
	});

	it("INT64 beyond 2^53 is written with every digit", () => {
		const t: Tensor = {
			name: "i",
			datatype: "INT64",
			shape: [1],
			data: BigInt64Array.of(2n ** 62n + 1n),
		};
		assert.equal(jsonData(t), `[${2n ** 62n + 1n}]`);
	});

	it("a response mixes JSON and binary outputs; id, version and parameters are kept", () => {
		const enc = encodeInferResponse(
			{
				model_name: "m",
				model_version: "3",
				parameters: { p: 1 },
				outputs: [
					tensor("FP32"),
					{ ...tensor("INT32"), parameters: { q: "r" } },
				],
			},
			"id-1",
			(name) => name === "t_INT32",
		);
		const d = decodeInferResponse(enc.body as Buffer, String(enc.headerLength));
		assert.equal(d.json.model_version, "3");
		assert.equal(d.json.id, "id-1");
		assert.deepEqual(d.json.parameters, { p: 1 });
		assert.deepEqual(d.binary, ["t_INT32"]);
		assert.deepEqual(
			(d.json.outputs as { parameters: unknown }[])[1]?.parameters,
			{ q: "r", binary_data_size: 12 },
		);
		const all = encodeInferResponse(
			{ model_name: "m", outputs: [tensor("BOOL")] },
			"i",
			() => false,
		);
		assert.equal(typeof all.body, "string");
		assert.equal(all.headerLength, undefined);
	});

	it("binary_data_size is removed from the tensor's parameters; other parameters pass through", () => {
		const t = tensor("FP64");
		const raw = Buffer.from(tensorBytes(t));
		const header = Buffer.from(
			JSON.stringify({
				inputs: [
					{
						name: "a",
						datatype: "FP64",
						shape: [3],
						parameters: { binary_data_size: 24, k: "v" },
					},
				],
			}),
		);
		const { request } = decodeInfer(
			Buffer.concat([header, raw]),
			String(header.length),
		);
		assert.deepEqual(request.inputs[0]?.parameters, { k: "v" });
	});

	it("binary BOOL bytes other than 0/1 and broken BYTES lengths are refused naming the input", () => {
		const refuse = (f: () => unknown, re: RegExp) =>
			assert.throws(
				f,
				(e: unknown) =>
					e instanceof MlshipError && e.status === 400 && re.test(e.message),
			);
		refuse(
			() => dataFromBytes("b", "BOOL", [2], 2, Uint8Array.of(1, 2)),
			/input 'b': BOOL element 1 is the byte 2/,
		);
		refuse(
			() => dataFromBytes("s", "BYTES", [1], 1, Uint8Array.of(5, 0, 0, 0, 1)),
			/input 's': BYTES element 0 says 5 bytes but only 1 remain/,
		);
		refuse(
			() => dataFromBytes("s", "BYTES", [1], 1, Uint8Array.of(1, 0)),
			/input 's': shape \[1\] of BYTES needs at least 4 bytes per element \(1 × 4\), but binary_data_size is 2/,
		);
		refuse(
			() =>
				dataFromBytes(
					"s",
					"BYTES",
					[2],
					2,
					Uint8Array.of(3, 0, 0, 0, 97, 98, 99, 1, 0),
				),
			/BYTES element 1: 2 bytes left, too few for its 4-byte length/,
		);
		refuse(
			() =>
				dataFromBytes(
					"s",
					"BYTES",
					[1],
					1,
					Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0),
				),
			/more than the 1 elements/,
		);
	});

	it("which outputs go binary: binary_data on an output beats binary_data_output", () => {
		const body = Buffer.from(
			JSON.stringify({
				parameters: { binary_data_output: true },
				inputs: [{ name: "a", datatype: "FP32", shape: [1], data: [1] }],
				outputs: [
					{ name: "x", parameters: { binary_data: false } },
					{ name: "y" },
				],
			}),
		);
		const d = decodeInfer(body, undefined);
		assert.equal(d.binaryOutput("x"), false);
		assert.equal(d.binaryOutput("y"), true);
		assert.equal(d.binaryOutput("z"), true);
		assert.deepEqual(d.request.outputs, [{ name: "x" }, { name: "y" }]);
	});

	it("parameters.timeout (µs) becomes timeoutMs; 0 means none", () => {
		const req = (timeout: number) =>
			Buffer.from(
				JSON.stringify({
					parameters: { timeout },
					inputs: [{ name: "a", datatype: "FP32", shape: [1], data: [1] }],
				}),
			);
		assert.equal(decodeInfer(req(2500), undefined).timeoutMs, 2.5);
		assert.equal(decodeInfer(req(0), undefined).timeoutMs, undefined);
	});
});
