// FP16 conversions against Math.f16round (the ECMAScript reference), native and fallback.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
	floatToHalf,
	floatToHalfFallback,
	halfToFloat,
	halfToFloatFallback,
} from "../../src/protocol/datatypes.ts";
import { prng } from "../helpers/random.ts";

const f16round = (Math as { f16round?: (x: number) => number }).f16round;

/** 200,000 values over the whole half range: near ties, subnormals, overflow, and wide random doubles. */
function samples(): number[] {
	const r = prng(11_16);
	const out: number[] = [];
	for (let i = 0; i < 200_000; i++) {
		const h = Math.floor(r() * 0x7bff); // a finite half whose successor is finite too
		const lo = halfToFloatFallback(h);
		const hi = halfToFloatFallback(h + 1);
		let v: number;
		switch (i % 4) {
			case 0: // exactly between two halves, nudged by a tiny amount below float32 precision
				v = (lo + hi) / 2 + (r() - 0.5) * (hi - lo) * 2 ** -30;
				break;
			case 1: // exact tie
				v = (lo + hi) / 2;
				break;
			case 2: // anywhere between
				v = lo + r() * (hi - lo);
				break;
			default: // any magnitude from 2^-30 to 2^20
				v = 2 ** (r() * 50 - 30);
		}
		out.push(r() < 0.5 ? -v : v);
	}
	return out;
}

describe("FP16", () => {
	it("rounds once: 1 + 2^-11 + 2^-40 is 1.0009765625 (not 1)", () => {
		const v = 1 + 2 ** -11 + 2 ** -40;
		assert.equal(halfToFloat(floatToHalf(v)), 1.0009765625);
		assert.equal(halfToFloatFallback(floatToHalfFallback(v)), 1.0009765625);
	});

	it("Node 24 uses Math.f16round's rounding (Float16Array is present)", () => {
		assert.equal(typeof f16round, "function");
		assert.equal(
			typeof (globalThis as { Float16Array?: unknown }).Float16Array,
			"function",
		);
	});

	it("200,000 values: native and fallback equal Math.f16round, bit for bit", () => {
		const ref = f16round as (x: number) => number;
		let checked = 0;
		for (const v of samples()) {
			const want = ref(v);
			const native = floatToHalf(v);
			const fallback = floatToHalfFallback(v);
			assert.equal(halfToFloat(native), want, `native ${v}`);
			assert.equal(fallback, native, `fallback ${v}: ${fallback} vs ${native}`);
			assert.equal(halfToFloatFallback(fallback), want, `fallback ${v}`);
			checked++;
		}
		assert.equal(checked, 200_000);
	});

	it("edges: zeros, subnormals, largest finite, overflow, infinities, NaN", () => {
		const cases: [number, number][] = [
			[0, 0x0000],
			[-0, 0x8000],
			[2 ** -24, 0x0001],
			[2 ** -25, 0x0000], // tie between 0 and the smallest subnormal → even (0)
			[2 ** -25 + 2 ** -40, 0x0001],
			[2 ** -14 - 2 ** -25, 0x0400], // the largest subnormal's tie rounds up to the smallest normal
			[65504, 0x7bff],
			[65519.99, 0x7bff],
			[65520, 0x7c00],
			[Number.POSITIVE_INFINITY, 0x7c00],
			[Number.NEGATIVE_INFINITY, 0xfc00],
			[-1.5, 0xbe00],
		];
		for (const [v, bits] of cases) {
			assert.equal(floatToHalfFallback(v), bits, `fallback ${v}`);
			assert.equal(floatToHalf(v), bits, `native ${v}`);
		}
		assert.ok(
			Number.isNaN(halfToFloatFallback(floatToHalfFallback(Number.NaN))),
		);
		assert.ok(Number.isNaN(halfToFloat(floatToHalf(Number.NaN))));
		for (let h = 0; h < 0x10000; h++) {
			const a = halfToFloatFallback(h);
			const b = halfToFloat(h);
			assert.ok(
				Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)),
				`bits ${h}`,
			);
		}
	});
});
