// OIP JSON tensors ↔ typed arrays for every datatype, with the errors bad data must produce.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
	tensorFromJson,
	tensorToJson,
	validateInputs,
} from "../../src/codec/tensor.ts";
import {
	DATATYPES,
	floatToHalf,
	halfToFloat,
} from "../../src/protocol/datatypes.ts";
import { MlshipError } from "../../src/protocol/errors.ts";

const SAMPLES: Record<string, { data: unknown[]; ctor: string }> = {
	BOOL: { data: [true, false, true, false], ctor: "Uint8Array" },
	UINT8: { data: [0, 1, 254, 255], ctor: "Uint8Array" },
	UINT16: { data: [0, 1, 65534, 65535], ctor: "Uint16Array" },
	UINT32: { data: [0, 1, 4294967294, 4294967295], ctor: "Uint32Array" },
	UINT64: { data: [0, 1, 2 ** 40, 2 ** 53 - 1], ctor: "BigUint64Array" },
	INT8: { data: [-128, -1, 0, 127], ctor: "Int8Array" },
	INT16: { data: [-32768, -1, 0, 32767], ctor: "Int16Array" },
	INT32: { data: [-2147483648, -1, 0, 2147483647], ctor: "Int32Array" },
	INT64: { data: [-(2 ** 53 - 1), -1, 0, 2 ** 53 - 1], ctor: "BigInt64Array" },
	FP16: { data: [0, -2, 0.5, 65504], ctor: "Uint16Array" },
	FP32: { data: [0, -1.5, 3.25, 2 ** 100], ctor: "Float32Array" },
	FP64: { data: [0, -1.5, Math.PI, 1e300], ctor: "Float64Array" },
	BYTES: { data: ["a", "", "ü", "x,y"], ctor: "Array" },
};

const err = (re: RegExp) => (e: unknown) => {
	assert.ok(
		e instanceof MlshipError && e.code === "MLSHIP_INVALID_INPUT",
		String(e),
	);
	assert.match(e.message, re);
	return true;
};

describe("OIP JSON tensors", () => {
	for (const dt of DATATYPES) {
		it(`${dt}: nested and flat data round-trip through the typed container`, () => {
			const s = SAMPLES[dt];
			assert.ok(s, `sample for ${dt}`);
			const nested = tensorFromJson({
				name: "x",
				datatype: dt,
				shape: [2, 2],
				data: [s.data.slice(0, 2), s.data.slice(2)],
			});
			const flat = tensorFromJson({
				name: "x",
				datatype: dt,
				shape: [2, 2],
				data: s.data,
			});
			assert.equal(nested.data.constructor.name, s.ctor);
			assert.deepEqual(nested.data, flat.data);
			assert.deepEqual(tensorToJson(flat).data, s.data);
		});
	}

	it("integers out of range, fractions for ints, strings for numbers, numbers for BYTES are refused by index", () => {
		assert.throws(
			() =>
				tensorFromJson({
					name: "a",
					datatype: "UINT8",
					shape: [2],
					data: [1, 256],
				}),
			err(/input 'a': element 1: 256 is out of range for UINT8/),
		);
		assert.throws(
			() =>
				tensorFromJson({
					name: "a",
					datatype: "INT32",
					shape: [1],
					data: [1.5],
				}),
			err(/expected an integer \(INT32\), got 1\.5/),
		);
		assert.throws(
			() =>
				tensorFromJson({
					name: "a",
					datatype: "FP32",
					shape: [1],
					data: ["1"],
				}),
			err(/expected a number \(FP32\), got "1"/),
		);
		assert.throws(
			() =>
				tensorFromJson({ name: "a", datatype: "BYTES", shape: [1], data: [1] }),
			err(/expected a string \(BYTES\), got 1/),
		);
		assert.throws(
			() =>
				tensorFromJson({ name: "a", datatype: "BOOL", shape: [1], data: [2] }),
			err(/expected a boolean/),
		);
		assert.throws(
			() =>
				tensorFromJson({
					name: "a",
					datatype: "INT64",
					shape: [1],
					data: [2 ** 64],
				}),
			err(/out of range for INT64/),
		);
	});

	it("shape and data length must agree; unknown datatypes and bad shapes are named", () => {
		assert.throws(
			() =>
				tensorFromJson({
					name: "a",
					datatype: "FP32",
					shape: [2, 2],
					data: [1, 2, 3],
				}),
			err(/shape \[2,2\] needs 4 elements, data has 3/),
		);
		assert.throws(
			() =>
				tensorFromJson({
					name: "a",
					datatype: "FP32",
					shape: [1],
					data: [1, 2],
				}),
			err(/needs 1 elements, data has 2/),
		);
		assert.throws(
			() =>
				tensorFromJson({ name: "a", datatype: "FLOAT", shape: [1], data: [1] }),
			err(/unknown datatype "FLOAT"/),
		);
		assert.throws(
			() =>
				tensorFromJson({ name: "a", datatype: "FP32", shape: [-1], data: [1] }),
			err(/shape must be a list of non-negative integers/),
		);
	});

	it("FP16 conversion is exact for representable values and rounds to nearest even", () => {
		for (const v of [0, 1, -1, 0.5, 65504, 2 ** -14, 2 ** -24])
			assert.equal(halfToFloat(floatToHalf(v)), v);
		assert.equal(halfToFloat(floatToHalf(1 + 2 ** -11)), 1); // tie → even
		assert.equal(halfToFloat(floatToHalf(1e6)), Number.POSITIVE_INFINITY);
		assert.ok(Number.isNaN(halfToFloat(floatToHalf(Number.NaN))));
	});

	it("validateInputs: one batch size across inputs, empty batch refused", () => {
		const sig = {
			inputs: [
				{ name: "a", datatype: "FP32" as const, shape: [-1, 1] },
				{ name: "b", datatype: "BYTES" as const, shape: [-1, 1] },
			],
			outputs: [],
		};
		const a = {
			name: "a",
			datatype: "FP32" as const,
			shape: [2, 1],
			data: new Float32Array(2),
		};
		assert.equal(
			validateInputs(sig, [
				a,
				{ name: "b", datatype: "BYTES", shape: [2, 1], data: ["x", "y"] },
			]),
			2,
		);
		assert.throws(
			() =>
				validateInputs(sig, [
					a,
					{
						name: "b",
						datatype: "BYTES",
						shape: [3, 1],
						data: ["x", "y", "z"],
					},
				]),
			err(/batch size 3 differs from the other inputs' 2/),
		);
		assert.throws(() => validateInputs(sig, [a, a]), err(/given twice/));
		assert.throws(
			() =>
				validateInputs(sig, [
					{ ...a, shape: [0, 1], data: new Float32Array(0) },
					{ name: "b", datatype: "BYTES", shape: [0, 1], data: [] },
				]),
			err(/empty input/),
		);
	});
});
